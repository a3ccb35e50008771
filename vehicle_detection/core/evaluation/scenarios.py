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
Named, seeded traffic scenes for :mod:`scene` (the same name and seed, the same scene).

- ``motorway``, ``queue``, ``parking``, ``mixed``: two or three lanes each
  way, queues that stop and start, parked cars hidden by lorries;
- ``rigs``: motorway traffic with rigs a detector finds as several boxes
  (articulated lorries, pickups towing trailers, cars found as front and rear);
- ``close``: vehicles that pass close without being one: overtaking, side by
  side, a car hidden behind a lorry, both ways;
- ``wrong_way``: motorway traffic with wrong-way drivers in the inner lane of
  each carriageway, passing the traffic of the outer lane (a scene has no
  collisions: a driver against a lane with traffic of its own would drive
  through it).
"""

from __future__ import annotations

import random
from typing import Callable, Dict, List, Optional, Tuple

from vehicle_detection.core.evaluation.scene import Camera, LANE_WIDTH, Scene, Vehicle

Mix = Tuple[Tuple[str, ...], Tuple[float, ...]]
TRAFFIC: Mix = (('car', 'truck'), (0.85, 0.15))
WITH_RIGS: Mix = (('car', 'truck', 'articulated', 'pickup_trailer', 'split_car'),
                  (0.55, 0.1, 0.12, 0.12, 0.11))
LONG = ('truck', 'articulated', 'pickup_trailer')  # followed at a longer gap


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


def scenario(name: str, seed: int = 0, fps: float = 10.0) -> Scene:
    """Build a named scene (see the module's list)."""
    rng = random.Random(f'{name}:{seed}')
    builders: Dict[str, Callable[[random.Random], Tuple[Camera, List[Vehicle], float]]] = {
        'motorway': _motorway, 'queue': _queue, 'parking': _parking, 'mixed': _mixed,
        'rigs': _rigs, 'close': _close, 'wrong_way': _wrong_way}
    if name not in builders:
        raise ValueError(f'unknown scene {name!r}: one of {", ".join(builders)}')
    camera, vehicles, seconds = builders[name](rng)
    return Scene(name, camera, vehicles, fps, seconds)


def _lanes(per_direction: int) -> Tuple[List[float], List[float]]:
    """Return lane centres towards the camera (left) and away from it (right)."""
    towards = [-(i + 0.5) * LANE_WIDTH - 0.5 for i in range(per_direction)]
    away = [(i + 0.5) * LANE_WIDTH + 0.5 for i in range(per_direction)]
    return towards, away


def _traffic(rng: random.Random, camera: Camera, seconds: float, per_direction: int,
             headway: float, speeds: Tuple[float, float], next_id: int,
             stops: Tuple[Tuple[float, float], ...] = (), mix: Mix = TRAFFIC,
             wrong_way_lanes: Tuple[int, ...] = ()) -> List[Vehicle]:
    """
    Lanes of followers about ``headway`` s apart, both directions, overtaking included.

    Lanes are numbered towards the camera first, inner lane first; in the
    ``wrong_way_lanes`` every vehicle drives against the lane, three times
    further apart.
    """
    towards, away = _lanes(per_direction)
    far = 110.0  # metres: a car is about 10 px high there
    vehicles = []
    for lane_index, lateral in enumerate(towards + away):
        against = lane_index in wrong_way_lanes
        heading = (1 if lateral < 0 else -1) if against else (-1 if lateral < 0 else 1)
        # Inner lanes are faster: vehicles there overtake the outer lanes.
        lane_speed = rng.uniform(*speeds) * (1.0 + 0.15 * (lane_index % per_direction))
        t = rng.uniform(-4.0, 1.0)
        while t < seconds - 1.0:
            kind = rng.choices(*mix)[0]
            start_d = far if heading < 0 else camera.near * 0.6
            speed = heading * lane_speed * rng.uniform(0.95, 1.05)
            lane_stops = stops if heading < 0 else ()
            vehicles.append(Vehicle(next_id, kind, lateral,
                                    driving(t, start_d, speed, lane_stops),
                                    sprite=rng.randrange(1000), heading=heading))
            next_id += 1
            t += (3 if against else 1) * headway * rng.uniform(0.8, 1.6) \
                + (1.0 if kind in LONG else 0.0)
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
        for lateral, heading in ((1.5 * LANE_WIDTH + 0.5, 1), (-1.5 * LANE_WIDTH - 0.5, -1)):
            start_d = camera.near * 0.6 if heading > 0 else 140.0
            vehicles.append(Vehicle(next_id, 'truck', lateral,
                                    driving(start, start_d, heading * 9.0),
                                    sprite=rng.randrange(1000), heading=heading))
            next_id += 1
    vehicles += _traffic(rng, camera, 25.0, 1, 2.5, (14.0, 18.0), next_id)
    return camera, vehicles, 25.0


def _mixed(rng: random.Random) -> Tuple[Camera, List[Vehicle], float]:
    """Three lanes each way, dense: followers a second apart, trucks hiding cars."""
    camera = Camera(mount_height=11.0)
    return camera, _traffic(rng, camera, 30.0, 3, 1.0, (20.0, 28.0), 1), 30.0


def _rigs(rng: random.Random) -> Tuple[Camera, List[Vehicle], float]:
    """Motorway traffic with a rig in about every third vehicle."""
    camera = Camera()
    return camera, _traffic(rng, camera, 30.0, 2, 1.4, (22.0, 28.0), 1, mix=WITH_RIGS), 30.0


def _wrong_way(rng: random.Random) -> Tuple[Camera, List[Vehicle], float]:
    """Motorway traffic; the inner lanes' drivers all drive against them."""
    camera = Camera()
    return camera, _traffic(rng, camera, 30.0, 2, 1.4, (22.0, 28.0), 1,
                            wrong_way_lanes=(0, 2)), 30.0


def _close(rng: random.Random) -> Tuple[Camera, List[Vehicle], float]:
    """Vehicles passing close, none of them a part of another (both ways)."""
    camera = Camera()
    outer, inner = -1.5 * LANE_WIDTH - 0.5, -0.5 * LANE_WIDTH - 0.5  # coming lanes
    start = camera.near * 0.6  # where vehicles driving away appear
    plan = [  # kind, lane, start time, start distance, speed (m/s, < 0: coming)
        ('car', inner, 0.0, 110.0, -22.0), ('car', outer, 0.0, 125.0, -30.0),  # overtaking
        ('car', inner, 5.0, 110.0, -25.0), ('truck', outer, 5.0, 110.0, -25.0),  # side by side
        ('truck', inner, 10.0, 100.0, -20.0), ('car', inner, 10.0, 120.0, -20.0),  # behind it
        ('car', outer, 10.0, 114.0, -20.0),  # beside the lorry's far end
        ('truck', -inner, 14.0, start, 20.0), ('car', -inner, 14.0, start + 18.0, 20.0),
        ('car', -outer, 14.0, start + 2.0, 20.0),  # a car ahead of a lorry, one beside it
        ('car', -inner, 18.0, start + 10.0, 20.0), ('car', -outer, 18.0, start, 28.0),
    ]
    vehicles = [Vehicle(index, kind, lane, driving(t, d, speed, end_d=130.0),
                        sprite=rng.randrange(1000), heading=1 if speed > 0 else -1)
                for index, (kind, lane, t, d, speed) in enumerate(plan, 1)]
    return camera, vehicles, 24.0
