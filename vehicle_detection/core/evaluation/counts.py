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
Traffic counts scored against ground truth (generated scenes and clips).

The truth of a line is geometric, by the counting rule applied to the true
paths: a vehicle crossed a line when the ground point (bottom centre) of its
last truth box lies clearly on one side (beyond the band of ``HYSTERESIS``
box heights) and that of its first box does not lie clearly on that side
(it started on the other side, or on the line). A vehicle on the line when
the recording ends has not crossed it yet. Counted are the crossings of a
:class:`CountingSession` fed with the tracker's output, as the bridge does.
"""

from __future__ import annotations

import collections
from typing import Counter, Dict, List, Sequence, Tuple

from vehicle_detection.core.counting.session import CountingSession
from vehicle_detection.core.detection.detections import Detections
from vehicle_detection.core.evaluation.scene import Truth
from vehicle_detection.core.events.geometry import CountingLine, Geometry, side_of

LineDirection = Tuple[str, str]


def true_crossings(truth: Sequence[List[Truth]], lines: Sequence[CountingLine],
                   min_height: float = 8.0) -> Counter[LineDirection]:
    """Count vehicles whose truth path goes from one side of each line to the other."""
    first: Dict[int, Truth] = {}
    last: Dict[int, Truth] = {}
    for frame in truth:
        for vehicle in frame:
            if vehicle.box[3] - vehicle.box[1] >= min_height:
                first.setdefault(vehicle.vehicle_id, vehicle)
                last[vehicle.vehicle_id] = vehicle
    counts: Counter[LineDirection] = collections.Counter()
    for vehicle_id, start in first.items():
        for line in lines:
            before, after = side_of(line, start.box), side_of(line, last[vehicle_id].box)
            if before is not None and after and before != after:
                counts[(line.name, line.directions[0] if after > 0 else line.directions[1])] += 1
    return counts


def counted_crossings(tracked: Sequence[Detections], stamps: Sequence[float],
                      geometry: Geometry, size: Tuple[int, int]) -> Counter[LineDirection]:
    """Count the tracker's output on ``geometry`` frame by frame; return per line and way."""
    session = CountingSession(geometry)
    counts: Counter[LineDirection] = collections.Counter()
    for detections, stamp in zip(tracked, stamps):
        for crossing in session.update(detections.sightings(), stamp, size).crossings:
            counts[(crossing.line, crossing.direction)] += 1
    return counts
