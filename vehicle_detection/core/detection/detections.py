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

"""Value types shared by the detection modules."""

from __future__ import annotations

from dataclasses import dataclass
from typing import List

import numpy as np

from vehicle_detection.core.events.vehicles import Sighting


@dataclass
class Detections:
    """
    Detections of one frame, as parallel arrays (no per-box Python objects).

    ``boxes`` are ``[x1, y1, x2, y2]`` in source-image pixels; ``track_ids``
    is -1 where no tracker ran.
    """

    boxes: np.ndarray  # (N, 4) float32
    scores: np.ndarray  # (N,) float32
    class_ids: np.ndarray  # (N,) int64
    class_names: List[str]
    track_ids: np.ndarray  # (N,) int64

    def __len__(self) -> int:
        return len(self.scores)

    def select(self, mask: np.ndarray) -> 'Detections':
        """Return the detections where ``mask`` (boolean or index array) selects."""
        index = np.flatnonzero(mask) if mask.dtype == bool else mask
        return Detections(self.boxes[index], self.scores[index], self.class_ids[index],
                          [self.class_names[i] for i in index], self.track_ids[index])

    def to_records(self) -> List[dict]:
        """Return JSON-ready dictionaries, one per detection."""
        return [{'class_name': name, 'class_id': int(cid), 'score': round(float(score), 4),
                 'bbox': [round(float(v), 1) for v in box], 'track_id': int(tid)}
                for box, score, cid, name, tid in zip(self.boxes, self.scores, self.class_ids,
                                                      self.class_names, self.track_ids)]

    def sightings(self) -> List[Sighting]:
        """Return one :class:`Sighting` per detection (what the event rules take)."""
        return [Sighting(int(tid), name, float(score), (box[0], box[1], box[2], box[3]))
                for box, score, name, tid in zip(self.boxes.tolist(), self.scores.tolist(),
                                                 self.class_names, self.track_ids.tolist())]
