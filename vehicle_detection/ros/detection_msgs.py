# Copyright 2026 The vehicle_detection Authors
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.

"""Detections to and from ``vision_msgs/Detection2DArray``, and the annotated image."""

from __future__ import annotations

from typing import List

import cv2
import numpy as np
from std_msgs.msg import Header

from vehicle_detection.core.detection.detections import Detections
from vehicle_detection.core.events.vehicles import Sighting
from vision_msgs.msg import Detection2D, Detection2DArray, ObjectHypothesisWithPose


def to_detection_array(detections: Detections, header: Header) -> Detection2DArray:
    """Boxes as centre + size in source pixels, class name and score, track id in ``id``."""
    array = Detection2DArray(header=header)
    for box, score, name, track_id in zip(detections.boxes.tolist(),
                                          detections.scores.tolist(),
                                          detections.class_names,
                                          detections.track_ids.tolist()):
        item = Detection2D(header=header, id=str(track_id) if track_id >= 0 else '')
        item.bbox.center.position.x = (box[0] + box[2]) / 2.0
        item.bbox.center.position.y = (box[1] + box[3]) / 2.0
        item.bbox.size_x = box[2] - box[0]
        item.bbox.size_y = box[3] - box[1]
        hypothesis = ObjectHypothesisWithPose()
        hypothesis.hypothesis.class_id = name
        hypothesis.hypothesis.score = float(score)
        item.results.append(hypothesis)
        array.detections.append(item)
    return array


def annotate(image: np.ndarray, detections: Detections) -> np.ndarray:
    """Return a copy of ``image`` with boxes, classes, scores and track ids drawn."""
    canvas = image.copy()
    for box, score, name, track_id in zip(detections.boxes.astype(int).tolist(),
                                          detections.scores.tolist(), detections.class_names,
                                          detections.track_ids.tolist()):
        color = (0, 200, 255) if track_id < 0 else (
            (37 * track_id) % 255, (17 * track_id + 100) % 255, (91 * track_id + 50) % 255)
        cv2.rectangle(canvas, (box[0], box[1]), (box[2], box[3]), color, 2)
        label = f'{name} {score:.2f}' + (f' #{track_id}' if track_id >= 0 else '')
        cv2.putText(canvas, label, (box[0], max(12, box[1] - 4)), cv2.FONT_HERSHEY_SIMPLEX,
                    0.5, color, 1, cv2.LINE_AA)
    return canvas


def to_sightings(msg: Detection2DArray) -> List[Sighting]:
    """Turn a Detection2DArray back into sightings (what the event rules and counting take)."""
    sightings = []
    for detection in msg.detections:
        if not detection.results:
            continue
        hypothesis = detection.results[0].hypothesis
        box = detection.bbox
        half_w, half_h = box.size_x / 2, box.size_y / 2
        centre = box.center.position
        track = int(detection.id) if detection.id.lstrip('-').isdigit() else -1
        sightings.append(Sighting(track, hypothesis.class_id, float(hypothesis.score),
                                  (centre.x - half_w, centre.y - half_h,
                                   centre.x + half_w, centre.y + half_h)))
    return sightings
