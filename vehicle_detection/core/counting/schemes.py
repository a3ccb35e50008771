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
Vehicle classes in an operator's scheme, from the detector's label and the box.

A COCO detector knows car, truck, bus and motorcycle; a road operator counts
motorcycle, car, van, bus, rigid and articulated lorry (``uk6``). The label
alone is wrong in known ways (vans are "car", a long lorry or a pickup with a
trailer is "bus"), so the scheme also looks at the vehicle's size: its
length in metres when the camera is calibrated (the ``length_m`` argument),
else its box against the usual car box at the same place in the picture
(learnt from the cars that pass: on a tilted camera a vehicle's box shrinks
with distance, so only boxes at the same image row compare). Where neither
says enough the vehicle is ``unclassified``: a guess would bias the heavy
share an operator designs pavements with.

``coco`` keeps the detector's labels as they are.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
import math
import statistics
from typing import Dict, Optional, OrderedDict, Tuple

from vehicle_detection.core.events.vehicles import Box, Sighting

UNCLASSIFIED = 'unclassified'
UK6_CLASSES = ('motorcycle', 'car', 'van', 'bus', 'rigid_lorry', 'articulated_lorry',
               UNCLASSIFIED)
SCHEMES = ('uk6', 'coco')

BANDS = 12  # image rows are compared in this many horizontal bands
MIN_REFERENCE = 5  # cars seen in a band before its usual size is trusted
REFERENCE_SIZE = 100  # cars kept per band (the recent ones: light and weather change)


@dataclass(frozen=True)
class SizeLimits:
    """
    Where one class ends and the next begins, by length or by size against a car.

    Lengths are in metres (a calibrated camera); ``*_ratio`` are a box's
    square root of area over the usual car box's at the same image row.
    """

    van_length_m: float = 5.3  # longer than the longest common car (estate, large SUV)
    rigid_length_m: float = 7.0  # longer than a long-wheelbase van (3.5 t)
    articulated_length_m: float = 12.5  # longer than the longest rigid lorry (UK: 12 m)
    bus_length_m: float = 8.0  # a "bus" shorter than this is a minibus: van
    van_ratio: float = 1.3  # a "car" this much bigger than the usual car is a van
    rigid_ratio: float = 1.55  # a "truck" this much bigger than the usual car is a lorry
    articulated_ratio: float = 2.6
    bus_ratio: float = 2.0  # a "bus" smaller is not one (a pickup + trailer, a lorry)


class CarReference:
    """The usual car box per image row band, learnt from the cars that pass."""

    def __init__(self) -> None:
        # Per band: each car's size there (its last box), one entry per car, so that a car
        # that stands or crawls weighs no more than one that passes quickly.
        self._sizes: Dict[int, OrderedDict[int, float]] = collections.defaultdict(
            collections.OrderedDict)
        self._height = 0.0

    def observe(self, box: Box, height: float, track_id: int) -> None:
        """Note one car box (``height``: the image's, in pixels; ``track_id``: the car)."""
        self._height = height
        sizes = self._sizes[self._band(box)]
        sizes[track_id] = _size(box)
        sizes.move_to_end(track_id)
        if len(sizes) > REFERENCE_SIZE:
            sizes.popitem(last=False)

    def ratio(self, box: Box, height: float) -> Optional[float]:
        """Return how much bigger ``box`` is than the usual car at its row (None: unknown)."""
        self._height = height or self._height
        band = self._band(box)
        for near in (band, band - 1, band + 1):  # a band with few cars borrows its neighbour's
            sizes = self._sizes.get(near)
            if sizes is not None and len(sizes) >= MIN_REFERENCE:
                return _size(box) / max(1.0, statistics.median(sizes.values()))
        return None

    def _band(self, box: Box) -> int:
        if self._height <= 0:
            return 0
        return min(BANDS - 1, max(0, int(box[3] / self._height * BANDS)))


class ClassScheme:
    """One camera's mapping from detector labels (and sizes) to a scheme's classes."""

    def __init__(self, name: str = 'uk6', limits: SizeLimits = SizeLimits()) -> None:
        if name not in SCHEMES:
            raise ValueError(f'class scheme {name!r} is not one of {", ".join(SCHEMES)}')
        self.name = name
        self.limits = limits
        self.cars = CarReference()

    def observe(self, sighting: Sighting, height: float) -> None:
        """Learn from one sighting of any vehicle (every frame): cars set the usual size."""
        if sighting.class_name == 'car':
            self.cars.observe(sighting.bbox, height, sighting.track_id)

    def classify(self, label: str, box: Box, height: float,
                 length_m: Optional[float] = None) -> str:
        """
        Return the scheme's class of a vehicle: its detector label and box.

        ``length_m``: the vehicle's length on the road where a calibration
        gives it (None: unknown, the box's size against a car's is used).
        """
        if self.name == 'coco':
            return label
        if length_m is not None and not (math.isfinite(length_m) and length_m > 0):
            length_m = None
        return _uk6(label, length_m, self.cars.ratio(box, height), self.limits)


def _uk6(label: str, length_m: Optional[float], ratio: Optional[float],
         limits: SizeLimits) -> str:
    """Map one vehicle to uk6 from its label, length (metres) and size against a car."""
    if label in ('motorcycle', 'bicycle'):
        return 'motorcycle' if label == 'motorcycle' else UNCLASSIFIED
    if length_m is not None:
        return _by_length(label, length_m, limits)
    if ratio is None:  # nothing to judge size by yet: only a plain car is sure
        return 'car' if label == 'car' else UNCLASSIFIED
    if label == 'car':
        return 'van' if ratio >= limits.van_ratio else 'car'
    if label == 'bus':
        return 'bus' if ratio >= limits.bus_ratio else UNCLASSIFIED
    if label == 'truck':
        if ratio >= limits.articulated_ratio:
            return 'articulated_lorry'
        return 'rigid_lorry' if ratio >= limits.rigid_ratio else 'van'
    return UNCLASSIFIED


def _by_length(label: str, length_m: float, limits: SizeLimits) -> str:
    if label == 'bus':
        return 'bus' if length_m >= limits.bus_length_m else 'van'
    if length_m >= limits.articulated_length_m:
        return 'articulated_lorry'
    if length_m >= limits.rigid_length_m:
        return 'rigid_lorry'
    if length_m >= limits.van_length_m or label == 'truck':
        return 'van'
    return 'car' if label == 'car' else UNCLASSIFIED


def _size(box: Box) -> float:
    return math.sqrt(max(1.0, (box[2] - box[0]) * (box[3] - box[1])))


def scheme_classes(name: str) -> Tuple[str, ...]:
    """Return the classes a scheme counts in (``coco``: the detector's vehicle labels)."""
    return UK6_CLASSES if name == 'uk6' else ('car', 'truck', 'bus', 'motorcycle', 'bicycle')
