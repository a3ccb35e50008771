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

Scenes are built by :func:`scenario` from a name and a seed; the same name
and seed always give the same scene.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import math
import random
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

Box = Tuple[float, float, float, float]

# Sizes in metres: width, length, height.
# No motorcycles: the samples hold no picture of one seen from behind and
# above, and a side view squeezed into such a box is nothing a detector knows.
SIZES = {'car': (1.8, 4.5, 1.5), 'truck': (2.5, 12.0, 3.8), 'bus': (2.55, 12.0, 3.2)}
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

    @property
    def size(self) -> Tuple[float, float, float]:
        """Return width, length, height in metres."""
        return SIZES[self.kind]


@dataclass(frozen=True)
class Truth:
    """One vehicle in one frame."""

    vehicle_id: int
    kind: str
    box: Box  # clipped to the image
    visible: float  # share of the box not hidden by nearer vehicles or the image edge
    distance: float


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
        box = camera.box(vehicle.lateral, distance, vehicle.size)
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
        clipped = (max(box[0], 0.0), max(box[1], 0.0), min(box[2], float(camera.width)),
                   min(box[3], float(camera.height)))
        x1, y1, x2, y2 = (round(v / scale) for v in clipped)
        own = float((cover[y1:y2, x1:x2] == order + 1).sum()) * scale * scale
        result.append(Truth(vehicle.vehicle_id, vehicle.kind, clipped,
                            min(1.0, own / full), distance))
    return result


def build_truth(scene: Scene) -> Scene:
    """Fill ``scene.truth`` for every frame and return the scene."""
    scene.truth = [scene.frame_truth(i) for i in range(scene.frame_count)]
    return scene


# -- motion ----------------------------------------------------------------------------
def driving(start_t: float, start_d: float, speed: float,
            stops: Tuple[Tuple[float, float], ...] = (),
            end_d: float = 120.0) -> Callable[[float], Optional[float]]:
    """
    Return a position function: from ``start_d`` at ``start_t`` at ``speed`` m/s.

    ``speed`` < 0 drives towards the camera. ``stops`` are (time, seconds):
    the vehicle brakes to a stand at that time for that long (a queue).
    """
    def position(t: float) -> Optional[float]:
        if t < start_t:
            return None
        moving = t - start_t
        for stop_t, duration in stops:  # time stood still before t
            moving -= min(max(t - stop_t, 0.0), duration)
        d = start_d + speed * moving
        return d if 0.0 < d < end_d else None
    return position


def parked(distance: float) -> Callable[[float], Optional[float]]:
    """Return the position function of a vehicle that never moves."""
    return lambda t: distance


# -- scenarios ---------------------------------------------------------------------------
def _lanes(per_direction: int) -> Tuple[List[float], List[float]]:
    """Return lane centres towards the camera (left) and away from it (right)."""
    towards = [-(i + 0.5) * LANE_WIDTH - 0.5 for i in range(per_direction)]
    away = [(i + 0.5) * LANE_WIDTH + 0.5 for i in range(per_direction)]
    return towards, away


def _kind(rng: random.Random) -> str:
    return rng.choices(('car', 'truck'), (0.85, 0.15))[0]


def scenario(name: str, seed: int = 0, fps: float = 10.0) -> Scene:
    """Build a named scene: ``motorway``, ``queue``, ``parking`` or ``mixed``."""
    rng = random.Random(f'{name}:{seed}')
    builders = {'motorway': _motorway, 'queue': _queue, 'parking': _parking,
                'mixed': _mixed}
    if name not in builders:
        raise ValueError(f'unknown scene {name!r}: one of {", ".join(builders)}')
    camera, vehicles, seconds = builders[name](rng)
    return Scene(name, camera, vehicles, fps, seconds)


def _traffic(rng: random.Random, camera: Camera, seconds: float, per_direction: int,
             headway: float, speeds: Tuple[float, float], next_id: int,
             stops: Tuple[Tuple[float, float], ...] = ()) -> List[Vehicle]:
    """Lanes of followers about ``headway`` s apart, both directions, overtaking included."""
    towards, away = _lanes(per_direction)
    far = 110.0  # metres: a car is about 10 px high there
    vehicles = []
    for lane_index, lateral in enumerate(towards + away):
        direction = -1.0 if lateral < 0 else 1.0
        # Inner lanes are faster: vehicles there overtake the outer lanes.
        lane_speed = rng.uniform(*speeds) * (1.0 + 0.15 * (lane_index % per_direction))
        t = rng.uniform(-4.0, 1.0)
        while t < seconds - 1.0:
            kind = _kind(rng)
            start_d = far if direction < 0 else camera.near * 0.6
            speed = direction * lane_speed * rng.uniform(0.95, 1.05)
            lane_stops = stops if direction < 0 else ()
            vehicles.append(Vehicle(next_id, kind, lateral,
                                    driving(t, start_d, speed, lane_stops),
                                    sprite=rng.randrange(1000)))
            next_id += 1
            t += headway * rng.uniform(0.8, 1.6) + (1.0 if kind == 'truck' else 0.0)
    return vehicles


def _motorway(rng: random.Random) -> Tuple[Camera, List[Vehicle], float]:
    camera = Camera()
    return camera, _traffic(rng, camera, 30.0, 2, 1.2, (24.0, 30.0), 1), 30.0


def _queue(rng: random.Random) -> Tuple[Camera, List[Vehicle], float]:
    """Slow traffic that stops twice and starts again (towards the camera)."""
    camera = Camera()
    stops = ((8.0, 5.0), (20.0, 4.0))
    return camera, _traffic(rng, camera, 30.0, 2, 1.6, (8.0, 11.0), 1, stops), 30.0


def _parking(rng: random.Random) -> Tuple[Camera, List[Vehicle], float]:
    """Two parked cars on the shoulder; lorries pass in front of them, cars follow."""
    camera = Camera()
    shoulder = 2 * LANE_WIDTH + 2.5
    vehicles = [Vehicle(1, 'car', shoulder, parked(32.0), sprite=rng.randrange(1000)),
                Vehicle(2, 'car', -shoulder, parked(45.0), sprite=rng.randrange(1000))]
    next_id = 3
    for start in (2.0, 9.0, 16.0):  # a lorry in the outer lane hides each parked car
        for lateral, direction in ((1.5 * LANE_WIDTH + 0.5, 1.0),
                                   (-1.5 * LANE_WIDTH - 0.5, -1.0)):
            start_d = camera.near * 0.6 if direction > 0 else 140.0
            vehicles.append(Vehicle(next_id, 'truck', lateral,
                                    driving(start, start_d, direction * 9.0),
                                    sprite=rng.randrange(1000)))
            next_id += 1
    vehicles += _traffic(rng, camera, 25.0, 1, 2.5, (14.0, 18.0), next_id)
    return camera, vehicles, 25.0


def _mixed(rng: random.Random) -> Tuple[Camera, List[Vehicle], float]:
    """Three lanes each way, dense: followers a second apart, trucks hiding cars."""
    camera = Camera(mount_height=11.0)
    return camera, _traffic(rng, camera, 30.0, 3, 1.0, (20.0, 28.0), 1), 30.0


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
