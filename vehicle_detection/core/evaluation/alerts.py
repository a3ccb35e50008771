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

"""
Scoring alerts against ground truth, as a user counts them.

An alert is matched to the vehicle whose true box in the alert's own frame
overlaps its box most (IoU >= ``MATCH_IOU``). Then, over the vehicles a user
expects an alert for: recall (vehicles alerted at least once), duplicates
(alerts beyond the first of a vehicle) and alerts with no vehicle, both per
100 vehicles.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from vehicle_detection.core.detection.detections import Detections
from vehicle_detection.core.evaluation.scene import CLASS_OF, Truth
from vehicle_detection.core.events.event import FrameInfo, Rule, VehicleEvent
from vehicle_detection.core.events.vehicles import iou

MATCH_IOU = 0.3


@dataclass(frozen=True)
class AlertScore:
    """What a user sees of the alerts of one scene."""

    vehicles: int
    alerted: int
    duplicates: int
    no_vehicle: int
    alerts: int

    @property
    def recall(self) -> float:
        """Return the share of vehicles alerted at least once."""
        return self.alerted / self.vehicles if self.vehicles else 1.0

    def per_100(self, count: int) -> float:
        """Return ``count`` per 100 vehicles."""
        return 100.0 * count / self.vehicles if self.vehicles else 0.0

    def as_dict(self) -> Dict[str, float]:
        """Return the figures a report prints."""
        return {'vehicles': self.vehicles, 'alerts': self.alerts,
                'alert_recall': round(self.recall, 4),
                'duplicates_per_100': round(self.per_100(self.duplicates), 2),
                'no_vehicle_per_100': round(self.per_100(self.no_vehicle), 2)}


def match_alert(alert: VehicleEvent, frame_truth: Sequence[Truth]) -> int:
    """Return the vehicle id an alert shows (-1: none)."""
    best, best_iou = -1, MATCH_IOU
    for truth in frame_truth:
        overlap = iou(alert.sighting.bbox, truth.box)
        if overlap >= best_iou:
            best, best_iou = truth.vehicle_id, overlap
    return best


def score_alerts(alerts: Sequence[VehicleEvent], truth: Sequence[Sequence[Truth]],
                 expected: Mapping[int, str]) -> AlertScore:
    """
    Score alerts whose ``frame`` is a frame index of ``truth``.

    ``expected`` holds the vehicles a user wants an alert for; an alert of a
    vehicle outside it (one only ever seen far away or half hidden) is neither
    counted as a duplicate nor as an alert with no vehicle.
    """
    per_vehicle: Dict[int, int] = {}
    no_vehicle = 0
    for alert in alerts:
        vehicle = match_alert(alert, truth[alert.frame])
        if vehicle < 0:
            no_vehicle += 1
        else:
            per_vehicle[vehicle] = per_vehicle.get(vehicle, 0) + 1
    alerted = sum(1 for v in expected if per_vehicle.get(v, 0) > 0)
    duplicates = sum(n - 1 for v, n in per_vehicle.items() if n > 1)
    return AlertScore(len(expected), alerted, duplicates, no_vehicle, len(alerts))


def run_policy(frames: Sequence[Detections], fps: float, rule: Rule,
               size: Optional[Tuple[int, int]] = None) -> List[VehicleEvent]:
    """Feed tracked detections, one list per frame, to ``rule``; frame keys are indices."""
    events: List[VehicleEvent] = []
    for index, detections in enumerate(frames):
        events.extend(rule.update(detections.sightings(), FrameInfo(index / fps, index, size)))
    return events + rule.flush()


def truth_as_detections(frame_truth: Sequence[Truth], rng: np.random.Generator,
                        min_visible: float = 0.4, jitter: float = 0.04,
                        min_size: float = 8.0, part_rate: float = 0.7) -> Detections:
    """
    Return what a good detector would see: visible vehicles, boxes jittered.

    Each box side moves by ``jitter`` of the box size (normal); scores fall
    with occlusion; boxes under ``min_size`` pixels are missed. A rig's parts
    (its cab, its trailer, a car's front and rear) are found too, each in
    ``part_rate`` of the frames, as a detector finds them beside the whole.
    For tracker tests without rendering or a model.
    """
    seen = [t for t in frame_truth if t.visible >= min_visible
            and t.box[2] - t.box[0] >= min_size and t.box[3] - t.box[1] >= min_size]
    boxes = np.array([t.box for t in seen], np.float32).reshape(-1, 4)
    sizes = np.tile(boxes[:, 2:] - boxes[:, :2], 2)  # w, h, w, h: one per side
    boxes += (rng.normal(0, jitter, boxes.shape) * sizes).astype(np.float32)
    scores = [0.55 + 0.4 * t.visible for t in seen]
    names = [CLASS_OF[t.kind] for t in seen]
    parts = [(name, box, 0.45 + 0.3 * t.visible) for t in seen if t.parts
             for name, box in t.parts if box[2] - box[0] >= min_size
             and box[3] - box[1] >= min_size]
    if parts:  # only rigs draw more numbers: scenes without them stay as they were
        found = rng.random(len(parts)) < part_rate
        part_boxes = np.array([box for _, box, _ in parts], np.float32)[found]
        part_sizes = np.tile(part_boxes[:, 2:] - part_boxes[:, :2], 2)
        part_boxes += (rng.normal(0, jitter, part_boxes.shape) * part_sizes).astype(np.float32)
        boxes = np.concatenate([boxes, part_boxes])
        kept = [part for part, keep in zip(parts, found) if keep]
        scores += [score for _, _, score in kept]
        names += [name for name, _, _ in kept]
    return Detections(boxes, np.array(scores, np.float32), np.full(len(names), 2, np.int64),
                      names, np.full(len(names), -1, np.int64))
