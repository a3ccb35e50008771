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
Counting lines and zones over tracked vehicles.

A vehicle is where it touches the road: the bottom centre of its box. A
counting line is a segment with a name for each way across it. A track is
counted once per line and direction when that point goes from one side to
the other; a band of ``HYSTERESIS`` box heights around the line belongs to
neither side, so a box that jitters on the line, or a vehicle that stops on
it, is never counted twice. Besides:

- a track first seen on the line (a vehicle found late, a queued car whose
  track was re-created there) counts when it leaves the line to a side;
- a track that begins where a counted track was lost a moment ago is that
  vehicle re-found, and is not counted there again;
- a box lying mostly within the box of a vehicle that just crossed the same
  way (a towed trailer, a cab found apart from its lorry) is a part of it.

A zone is a polygon; a track whose point stays inside it longer than the
zone's dwell limit raises one "stopped vehicle" event, and a parked car
re-found under a new track keeps the time it stopped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import math
from typing import Dict, List, Optional, Sequence, Set, Tuple

from vehicle_detection.core.bridge.policy import iou

Point = Tuple[float, float]
Box = Tuple[float, float, float, float]
HYSTERESIS = 0.25  # of the box height: the band around a line that is neither side
ON_LINE = 0  # the side of a track first seen within the band
# A new track where a counted track was lost (overlapping its last box, within this many
# seconds) is that vehicle re-found: it is not counted on that line again.
REFOUND_S = 2.0
REFOUND_IOU = 0.3
# A box lying mostly within the box of a vehicle seen in the same frame that crossed the
# same line the same way a moment ago is a part of it: not a vehicle of its own.
PART_S = 2.0
PART_CONTAINED = 0.8  # of the smaller box's area
# A new track standing where a track in a zone was lost (within forget_after_s) is that
# vehicle: it keeps the time it entered the zone and its raised event.
STILL_IOU = 0.5


@dataclass(frozen=True)
class CountingLine:
    """
    A segment ``a`` -> ``b`` in pixels, with a name for each way across it.

    ``directions[0]`` names a crossing to the right-hand side of ``a`` -> ``b``
    as seen on the picture (for a line drawn left to right: downwards, towards
    a camera looking along the road), ``directions[1]`` one to its left.
    """

    name: str
    a: Point
    b: Point
    directions: Tuple[str, str] = ('right', 'left')


@dataclass(frozen=True)
class Zone:
    """A polygon (pixels) and how long a vehicle may stay in it (seconds; 0: no limit)."""

    name: str
    polygon: Tuple[Point, ...]
    dwell_limit_s: float = 0.0


@dataclass(frozen=True)
class Crossing:
    """One vehicle counted on one line."""

    line: str
    direction: str
    track_id: int
    class_name: str
    stamp: float


@dataclass(frozen=True)
class Dwell:
    """A vehicle that stayed in a zone longer than its limit (raised once)."""

    zone: str
    track_id: int
    class_name: str
    since: float
    stamp: float
    box: Box


@dataclass
class _TrackState:
    sides: Dict[str, int] = field(default_factory=dict)  # line -> last clear side (-1, 1) or 0
    counted: Dict[Tuple[str, int], float] = field(default_factory=dict)  # (line, side) -> when
    entered: Dict[str, float] = field(default_factory=dict)  # zone -> time it went in
    raised: Set[str] = field(default_factory=set)  # zones whose dwell event was raised
    last_seen: float = 0.0
    box: Box = (0.0, 0.0, 0.0, 0.0)  # where it was last seen


def ground_point(box: Box) -> Point:
    """Return where a vehicle's box touches the road: its bottom centre."""
    return ((box[0] + box[2]) / 2.0, box[3])


def signed_distance(line: CountingLine, point: Point) -> Optional[float]:
    """Return the point's distance from the line (> 0 on its right), None beside the segment."""
    # Plain floats: this runs for every vehicle, line and frame (NumPy costs more here).
    (ax, ay), (bx, by), (px, py) = line.a, line.b, point
    dx, dy = float(bx - ax), float(by - ay)
    length = math.hypot(dx, dy)
    if length == 0.0:
        return None
    along = ((px - ax) * dx + (py - ay) * dy) / (length * length)
    if not -0.02 <= along <= 1.02:  # beyond the ends: not this line's business
        return None
    # Image y grows downwards: the cross product's sign gives the side as seen on screen.
    return float(dx * (py - ay) - dy * (px - ax)) / length


def contained(a: Box, b: Box) -> float:
    """Return the share of the smaller of two boxes that lies within the other."""
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return width * height / smaller if width > 0 and height > 0 and smaller > 0 else 0.0


def side_of(line: CountingLine, box: Box) -> Optional[int]:
    """
    Return where a box's ground point is: 1 or -1 clearly right or left of ``line``.

    0 (``ON_LINE``) within the band of ``HYSTERESIS`` box heights around it,
    None beside the segment.
    """
    distance = signed_distance(line, ground_point(box))
    if distance is None:
        return None
    if abs(distance) <= HYSTERESIS * max(1.0, box[3] - box[1]):
        return ON_LINE
    return 1 if distance > 0 else -1


def inside(polygon: Sequence[Point], point: Point) -> bool:
    """Tell whether ``point`` lies inside ``polygon`` (even-odd rule)."""
    x, y = point
    result = False
    for (x1, y1), (x2, y2) in zip(polygon, [*polygon[1:], polygon[0]]):
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            result = not result
    return result


class TrafficCounter:
    """Counts line crossings and dwelling vehicles, frame by frame."""

    def __init__(self, lines: Sequence[CountingLine] = (), zones: Sequence[Zone] = (),
                 forget_after_s: float = 10.0) -> None:
        self.lines = list(lines)
        self.zones = list(zones)
        self.forget_after_s = forget_after_s
        self._tracks: Dict[int, _TrackState] = {}

    def update(self, tracked: Sequence[Tuple[int, str, Box]],
               stamp: float) -> Tuple[List[Crossing], List[Dwell]]:
        """Feed one frame's tracked vehicles (track id, class, box); return its events."""
        crossings: List[Crossing] = []
        dwells: List[Dwell] = []
        seen: List[Tuple[int, str, Box, _TrackState]] = []
        for track_id, class_name, box in tracked:
            if track_id < 0:
                continue  # untracked boxes cannot be counted once
            state = self._tracks.get(track_id)
            if state is None:
                state = self._tracks[track_id] = _TrackState()
                state.counted = self._counted_where_lost(box, stamp)
                self._resume_dwell(state, box, stamp)
            state.last_seen, state.box = stamp, box
            seen.append((track_id, class_name, box, state))
        for track_id, class_name, box, state in seen:  # every box of this frame is known now
            for line in self.lines:
                side = self._cross(line, state, side_of(line, box))
                if side is not None:
                    state.counted[(line.name, side)] = stamp
                    if not self._part_of_counted(track_id, box, line.name, side, stamp):
                        direction = line.directions[0] if side > 0 else line.directions[1]
                        crossings.append(Crossing(line.name, direction, track_id, class_name,
                                                  stamp))
            for zone in self.zones:
                dwell = self._dwell(zone, state, ground_point(box), stamp)
                if dwell is not None:
                    dwells.append(Dwell(zone.name, track_id, class_name, dwell, stamp, box))
        self._tracks = {k: v for k, v in self._tracks.items()
                        if stamp - v.last_seen <= self.forget_after_s}
        return crossings, dwells

    def _counted_where_lost(self, box: Box, stamp: float) -> Dict[Tuple[str, int], float]:
        """Return the crossings counted by a track lost just now where ``box`` appears."""
        lines: Dict[Tuple[str, int], float] = {}
        for state in self._tracks.values():
            if state.counted and 0 < stamp - state.last_seen <= REFOUND_S \
                    and iou(state.box, box) >= REFOUND_IOU:
                lines.update(state.counted)
        return lines

    def _resume_dwell(self, state: _TrackState, box: Box, stamp: float) -> None:
        """
        Give a new track the zone times of a vehicle lost where it stands.

        A parked car hidden by passing lorries for longer than the tracker waits
        comes back under a new id: it has been there since it first stopped,
        and its stopped-vehicle event was raised already.
        """
        for other in self._tracks.values():
            if other is not state and other.entered and other.last_seen < stamp \
                    and iou(other.box, box) >= STILL_IOU:
                for zone, since in other.entered.items():
                    state.entered[zone] = min(since, state.entered.get(zone, since))
                state.raised |= other.raised

    def _part_of_counted(self, track_id: int, box: Box, line: str, side: int,
                         stamp: float) -> bool:
        """Tell whether ``box`` is a part of a vehicle in this frame just counted the same way."""
        for other_id, other in self._tracks.items():
            counted_at = other.counted.get((line, side))
            if other_id != track_id and other.last_seen == stamp and counted_at is not None \
                    and stamp - counted_at <= PART_S \
                    and contained(box, other.box) >= PART_CONTAINED:
                return True
        return False

    @staticmethod
    def _cross(line: CountingLine, state: _TrackState, side: Optional[int]) -> Optional[int]:
        """Return the side (1, -1) the track crossed ``line`` to in this frame, if it did."""
        if side is None:
            return None  # beside the segment
        if side == ON_LINE:  # no clear side yet
            # A track first seen on the line came from one side of it (a vehicle found
            # late, or whose track was re-created there): where it leaves to is a crossing.
            state.sides.setdefault(line.name, ON_LINE)
            return None
        before = state.sides.get(line.name)
        state.sides[line.name] = side
        # Once per direction: a track found crossing back is a vehicle that turned, or
        # (more often) an id the tracker passed on to a vehicle driving the other way.
        if before is None or before == side or (line.name, side) in state.counted:
            return None
        return side

    @staticmethod
    def _dwell(zone: Zone, state: _TrackState, point: Point, stamp: float) -> Optional[float]:
        if not inside(zone.polygon, point):
            state.entered.pop(zone.name, None)
            return None
        since = state.entered.setdefault(zone.name, stamp)
        if zone.dwell_limit_s <= 0 or zone.name in state.raised \
                or stamp - since < zone.dwell_limit_s:
            return None
        state.raised.add(zone.name)
        return since
