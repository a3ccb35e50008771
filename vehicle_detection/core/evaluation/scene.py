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
Generated road traffic with exact ground truth (pure Python, seeded).

A straight road is seen by a camera above it, looking along it: a point at
lateral offset ``u`` and distance ``d`` (metres) appears at
``x = cx + f u / d``, ``y = horizon + f h / d``. Vehicles drive in lanes, in
both directions (towards the camera: they enter far and small and leave near
and large, cut by the bottom edge; away: the reverse), follow one another,
overtake, stop in queues and park on the shoulder. Every frame has each
vehicle's box and the share of it left visible by nearer vehicles, so a
tracker, an alert policy or the whole detector can be scored against it.

Rigs are vehicles a detector finds as more than one box (:data:`RIGS`): an
articulated lorry as its cab and the whole, a pickup towing a trailer as a
car, a trailer and the whole, a car as its front and its rear. Their truth
is one vehicle with the boxes of those parts beside its own.

Scenes are built by :func:`vehicle_detection.core.evaluation.scenarios.scenario`
from a name and a seed; the same name and seed always give the same scene.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import math
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from vehicle_detection.core.events.vehicles import Box

# Sizes in metres: width, length, height.
# No motorcycles: the samples hold no picture of one seen from behind and
# above, and a side view squeezed into such a box is nothing a detector knows.
SIZES = {'car': (1.8, 4.5, 1.5), 'truck': (2.5, 12.0, 3.8), 'bus': (2.55, 12.0, 3.2),
         'articulated': (2.55, 16.5, 4.0), 'pickup_trailer': (1.9, 10.0, 1.9),
         'split_car': (1.8, 4.5, 1.5)}
# The class a detector gives each kind's whole box.
CLASS_OF = {'car': 'car', 'truck': 'truck', 'bus': 'bus', 'articulated': 'truck',
            'pickup_trailer': 'truck', 'split_car': 'car'}
# Parts a detector also finds of a rig: class, and where the part lies along the
# vehicle as fractions of its length from the front.
RIGS: Dict[str, Tuple[Tuple[str, float, float], ...]] = {
    'articulated': (('truck', 0.0, 0.16),),  # the cab (hidden by the trailer from behind)
    'pickup_trailer': (('car', 0.0, 0.55), ('truck', 0.6, 1.0)),  # the pickup, the trailer
    'split_car': (('car', 0.0, 0.5), ('car', 0.5, 1.0)),  # its front and its rear
}
LANE_WIDTH = 3.6


@dataclass(frozen=True)
class Camera:
    """Image size and a pinhole camera above the road, looking along it."""

    width: int = 640
    height: int = 360
    focal: float = 520.0  # pixels
    mount_height: float = 9.0  # metres above the road
    horizon: float = 40.0  # image row of the horizon
    centre_offset: float = 0.0  # metres: lateral position of the camera

    @property
    def near(self) -> float:
        """Return the distance seen at the bottom row."""
        return self.focal * self.mount_height / (self.height - self.horizon)

    def box(self, lateral: float, distance: float, size: Tuple[float, float, float]) -> Box:
        """Return the image box of a vehicle whose rear (nearest) end is at ``distance``."""
        width, length, height = size
        near, far = max(distance, 0.5), max(distance, 0.5) + length
        cx = self.width / 2
        x1 = cx + self.focal * (lateral - self.centre_offset - width / 2) / near
        x2 = cx + self.focal * (lateral - self.centre_offset + width / 2) / near
        bottom = self.horizon + self.focal * self.mount_height / near
        top = self.horizon + self.focal * (self.mount_height - height) / far
        return (x1, min(top, bottom - 1.0), x2, bottom)


@dataclass
class Vehicle:
    """One vehicle: where it drives and how fast, as a function of time."""

    vehicle_id: int
    kind: str
    lateral: float  # lane centre, metres
    position: Callable[[float], Optional[float]]  # time -> distance of its near end (None: absent)
    sprite: int = 0  # which picture of its kind the renderer uses
    heading: int = 0  # 1 driving away from the camera, -1 towards it, 0 parked

    @property
    def size(self) -> Tuple[float, float, float]:
        """Return width, length, height in metres."""
        return SIZES[self.kind]

    @property
    def wrong_way(self) -> bool:
        """Tell whether it drives against its lane (lanes left of the middle come towards)."""
        return self.heading != 0 and self.heading != (1 if self.lateral > 0 else -1)

    def box(self, camera: 'Camera', distance: float) -> Box:
        """Return its image box; a rig's spans its parts (seen at their own distances)."""
        box = camera.box(self.lateral, distance, self.size)
        for _, part in self._parts(camera, distance, hidden=True):
            box = (min(box[0], part[0]), min(box[1], part[1]), max(box[2], part[2]),
                   max(box[3], part[3]))
        return box

    def part_boxes(self, camera: 'Camera', distance: float) -> Tuple[Tuple[str, Box], ...]:
        """Return the class and image box of each part a detector finds of this rig."""
        return tuple(self._parts(camera, distance, hidden=False))

    def _parts(self, camera: 'Camera', distance: float,
               hidden: bool) -> List[Tuple[str, Box]]:
        width, length, height = self.size
        boxes = []
        for name, front, back in RIGS.get(self.kind, ()):
            if not hidden and self.kind == 'articulated' and self.heading > 0:
                continue  # a lorry's cab is hidden behind its trailer from behind
            # The near end is the rear of a vehicle driving away, the front of one coming.
            near = distance + length * ((1.0 - back) if self.heading > 0 else front)
            boxes.append((name, camera.box(self.lateral, near,
                                           (width, length * (back - front), height))))
        return boxes


@dataclass(frozen=True)
class Truth:
    """One vehicle in one frame."""

    vehicle_id: int
    kind: str
    box: Box  # clipped to the image
    visible: float  # share of the box not hidden by nearer vehicles or the image edge
    distance: float
    parts: Tuple[Tuple[str, Box], ...] = ()  # a rig's parts a detector also finds (clipped)


@dataclass
class Scene:
    """A generated scene: camera, vehicles, frame rate and length."""

    name: str
    camera: Camera
    vehicles: List[Vehicle]
    fps: float
    seconds: float
    truth: List[List[Truth]] = field(default_factory=list)

    @property
    def frame_count(self) -> int:
        """Return the number of frames."""
        return round(self.seconds * self.fps)

    def frame_truth(self, index: int) -> List[Truth]:
        """Return the ground truth of frame ``index``, far vehicles first (drawing order)."""
        return truth_at(self.camera, self.vehicles, index / self.fps)


def truth_at(camera: Camera, vehicles: List[Vehicle], t: float) -> List[Truth]:
    """Return every vehicle in view at time ``t`` with its box and visible share."""
    placed = []
    for vehicle in vehicles:
        distance = vehicle.position(t)
        if distance is None or distance + vehicle.size[1] < camera.near * 0.5 \
                or distance > 130:
            continue
        box = vehicle.box(camera, distance)
        if box[2] <= 0 or box[0] >= camera.width or box[3] <= camera.horizon:
            continue
        placed.append((distance, vehicle, box))
    placed.sort(key=lambda item: -item[0])  # far first
    scale = 4  # the visibility mask at a quarter of the resolution
    cover = np.zeros((camera.height // scale + 1, camera.width // scale + 1), np.int32)
    for order, (_, _, box) in enumerate(placed):
        x1, y1, x2, y2 = (round(max(v, 0) / scale) for v in box)
        cover[y1:y2, x1:x2] = order + 1  # nearer vehicles paint over farther ones
    result = []
    for order, (distance, vehicle, box) in enumerate(placed):
        full = max(1.0, (box[2] - box[0]) * (box[3] - box[1]))
        clipped = _clip(box, camera)
        x1, y1, x2, y2 = (round(v / scale) for v in clipped)
        own = float((cover[y1:y2, x1:x2] == order + 1).sum()) * scale * scale
        parts = tuple((name, _clip(part, camera))
                      for name, part in vehicle.part_boxes(camera, distance))
        result.append(Truth(vehicle.vehicle_id, vehicle.kind, clipped,
                            min(1.0, own / full), distance, parts))
    return result


def build_truth(scene: Scene) -> Scene:
    """Fill ``scene.truth`` for every frame and return the scene."""
    scene.truth = [scene.frame_truth(i) for i in range(scene.frame_count)]
    return scene


def visible_vehicles(scene: Scene, min_height: float = 16.0, min_visible: float = 0.6,
                     min_frames_s: float = 0.5) -> Dict[int, str]:
    """
    Return the vehicles a user expects an alert for, with their kind.

    Those clearly in view (at least ``min_height`` px high, ``min_visible``
    of the box unhidden) for ``min_frames_s`` seconds of the scene.
    """
    needed = max(1, math.ceil(min_frames_s * scene.fps))
    counts: Dict[int, int] = {}
    kinds: Dict[int, str] = {}
    for frame in scene.truth:
        for truth in frame:
            if truth.box[3] - truth.box[1] >= min_height and truth.visible >= min_visible:
                counts[truth.vehicle_id] = counts.get(truth.vehicle_id, 0) + 1
                kinds[truth.vehicle_id] = truth.kind
    return {v: kinds[v] for v, n in counts.items() if n >= needed}


def _clip(box: Box, camera: Camera) -> Box:
    return (max(box[0], 0.0), max(box[1], 0.0), min(box[2], float(camera.width)),
            min(box[3], float(camera.height)))
