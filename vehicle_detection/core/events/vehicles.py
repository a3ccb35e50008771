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
The vocabulary of every vehicle decision: boxes, sightings and how boxes relate.

Boxes are ``(x1, y1, x2, y2)`` in source-image pixels, y growing downwards.
A :class:`Sighting` is one tracked vehicle in one frame, as ``/detections``
carries it; the tracker, the counter and the event rules all speak it.
"""

from __future__ import annotations

from dataclasses import dataclass
import math
from typing import Tuple

Box = Tuple[float, float, float, float]
Point = Tuple[float, float]
NO_TRACK = -1  # the track id of a sighting no tracker followed


@dataclass(frozen=True)
class Sighting:
    """One tracked detection in one frame."""

    track_id: int  # NO_TRACK without a tracker
    class_name: str
    confidence: float
    bbox: Box  # x1, y1, x2, y2 in source pixels


def area(box: Box) -> float:
    """Return the area of a box (0 for an empty or inverted box)."""
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


def intersection(a: Box, b: Box) -> float:
    """Return the area two boxes share."""
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    return width * height if width > 0 and height > 0 else 0.0


def iou(a: Box, b: Box) -> float:
    """Return the intersection over union of two boxes."""
    inter = intersection(a, b)
    union = area(a) + area(b) - inter
    return inter / union if union > 0 else 0.0


def contained(a: Box, b: Box) -> float:
    """Return the share of the smaller of two boxes that lies within the other."""
    smaller = min(area(a), area(b))
    return intersection(a, b) / smaller if smaller > 0 else 0.0


def centre(box: Box) -> Point:
    """Return a box's centre."""
    return ((box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0)


def diagonal(box: Box) -> float:
    """Return the diagonal of a box (at least one pixel)."""
    return max(1.0, math.hypot(box[2] - box[0], box[3] - box[1]))


def ground_point(box: Box) -> Point:
    """Return where a vehicle's box touches the road: its bottom centre."""
    return ((box[0] + box[2]) / 2.0, box[3])


def view_quality(sighting: Sighting) -> float:
    """Score a view of a vehicle: larger and more confident is better."""
    return area(sighting.bbox) * sighting.confidence
