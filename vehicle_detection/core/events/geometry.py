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
Counting lines and zones, and which vehicles cross which lines which way.

A vehicle is where it touches the road: the bottom centre of its box. A
counting line is a segment with a name for each way across it, and may
allow one way only (``oneway``: a road's carriageway). A vehicle crosses a
line when that point goes from one side to the other; a band of
``HYSTERESIS`` box heights around the line belongs to neither side, so a
box that jitters on the line, or a vehicle that stops on it, never crosses
twice. A track first seen on the line crosses when it leaves it to a side.

A track crosses each line once each way, and not back within
:data:`REVERSE_S` of a crossing: a box that jumps back over the line (a rig
reported by its whole's box, by a part's in a frame that missed the whole)
is not a vehicle turning, while a track crossing back later is one, or an
id the tracker passed on to a vehicle driving the other way. A new track
that is a vehicle seen before (:mod:`reid`) does not cross again where that
one crossed the same way (a vehicle coming in the other way where another
left the picture is not held back by it).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Dict, List, Optional, Sequence, Set, Tuple

from vehicle_detection.core.events.reid import LOST_WAIT_S, Whereabouts
from vehicle_detection.core.events.vehicles import Box, ground_point, Point, Sighting

HYSTERESIS = 0.25  # of the box height: the band around a line that is neither side
ON_LINE = 0  # the side of a track first seen within the band
REVERSE_S = 1.0  # a track crossing back this soon after a crossing is a box that jumped


@dataclass(frozen=True)
class CountingLine:
    """
    A segment ``a`` -> ``b`` in pixels, with a name for each way across it.

    ``directions[0]`` names a crossing to the right-hand side of ``a`` -> ``b``
    as seen on the picture (for a line drawn left to right: downwards, towards
    a camera looking along the road), ``directions[1]`` one to its left.
    ``oneway``, when set, is the one direction traffic may cross it.
    """

    name: str
    a: Point
    b: Point
    directions: Tuple[str, str] = ('right', 'left')
    oneway: Optional[str] = None


@dataclass(frozen=True)
class Zone:
    """A polygon (pixels) and how long a vehicle may stay in it (seconds; 0: no limit)."""

    name: str
    polygon: Tuple[Point, ...]
    dwell_limit_s: float = 0.0


@dataclass(frozen=True)
class Geometry:
    """Lines and zones as written: in pixels, or in fractions of the image (the flags)."""

    lines: Tuple[Tuple[CountingLine, bool], ...] = ()
    zones: Tuple[Tuple[Zone, bool], ...] = ()

    def __bool__(self) -> bool:
        """Tell whether there is anything to count."""
        return bool(self.lines or self.zones)

    @property
    def needs_size(self) -> bool:
        """Tell whether an entry is in fractions of the image (it needs the image's size)."""
        return any(fractions for _, fractions in (*self.lines, *self.zones))

    def in_pixels(self, width: int, height: int) -> Tuple[List[CountingLine], List[Zone]]:
        """Return the lines and zones in pixels of a ``width`` x ``height`` image."""
        def scale(point: Point, fractions: bool) -> Point:
            return (point[0] * width, point[1] * height) if fractions else point

        lines = [replace(line, a=scale(line.a, f), b=scale(line.b, f)) for line, f in self.lines]
        zones = [replace(zone, polygon=tuple(scale(p, f) for p in zone.polygon))
                 for zone, f in self.zones]
        return lines, zones

    def outside_image(self, width: int, height: int) -> List[str]:
        """Say which lines and zones lie outside a ``width`` x ``height`` picture."""
        lines, zones = self.in_pixels(width, height)
        size = f'the {width}x{height} image'
        found = []
        for line in lines:
            share = _clipped_share(line.a, line.b, width, height)
            if share == 0.0:
                found.append(f'line {line.name!r} ({_points((line.a, line.b))}) lies outside '
                             f'{size}: it can never count')
            elif share < 1.0:
                found.append(f'line {line.name!r} ({_points((line.a, line.b))}) reaches outside '
                             f'{size}: only its part inside counts')
        for zone in zones:
            edges = zip(zone.polygon, zone.polygon[1:] + zone.polygon[:1])
            shares = [_clipped_share(a, b, width, height) for a, b in edges]
            if not any(shares) and not inside(zone.polygon, (width / 2, height / 2)):
                found.append(f'zone {zone.name!r} ({_points(zone.polygon)}) lies outside '
                             f'{size}: no vehicle can ever be in it')
            elif min(shares) < 1.0:
                found.append(f'zone {zone.name!r} ({_points(zone.polygon)}) reaches outside '
                             f'{size}')
        return found


def _points(points: Sequence[Point]) -> str:
    return ' '.join(f'{x:g},{y:g}' for x, y in points)


def _clipped_share(a: Point, b: Point, width: float, height: float) -> float:
    """Return the share of the segment ``a`` -> ``b`` inside [0, width] x [0, height]."""
    # Liang-Barsky: the segment is a + t (b - a), t in [0, 1], cut by each image edge.
    low, high = 0.0, 1.0
    dx, dy = b[0] - a[0], b[1] - a[1]
    for step, room in ((-dx, a[0]), (dx, width - a[0]), (-dy, a[1]), (dy, height - a[1])):
        if step == 0.0:
            if room < 0.0:
                return 0.0  # parallel to this edge and beyond it
            continue
        t = room / step
        if step < 0.0:
            low = max(low, t)
        else:
            high = min(high, t)
    return max(0.0, high - low)


@dataclass(frozen=True)
class Crossing:
    """One vehicle crossing one line, with the sighting of the frame it crossed in."""

    line: str
    direction: str
    sighting: Sighting
    stamp: float
    from_line: bool = False  # the track was first seen on the line: where it came from is a guess

    @property
    def track_id(self) -> int:
        """Return the crossing vehicle's track id."""
        return self.sighting.track_id

    @property
    def class_name(self) -> str:
        """Return the crossing vehicle's class (the tracker's vote)."""
        return self.sighting.class_name


def signed_distance(line: CountingLine, point: Point) -> Optional[float]:
    """Return the point's distance from the line (> 0 on its right), None beside the segment."""
    (ax, ay), (bx, by) = line.a, line.b
    dx, dy = bx - ax, by - ay
    length_2 = dx * dx + dy * dy
    if length_2 == 0.0:
        return None
    along = ((point[0] - ax) * dx + (point[1] - ay) * dy) / length_2
    if not -0.02 <= along <= 1.02:  # beyond the ends: not this line's business
        return None
    # Image y grows downwards: the cross product's sign gives the side as seen on screen.
    return (dx * (point[1] - ay) - dy * (point[0] - ax)) / length_2 ** 0.5


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


def direction_of(line: CountingLine, side: int) -> str:
    """Return the name of a crossing to ``side`` (1: right, -1: left) of ``line``."""
    return line.directions[0] if side > 0 else line.directions[1]


def inside(polygon: Sequence[Point], point: Point) -> bool:
    """Tell whether ``point`` lies inside ``polygon`` (even-odd rule)."""
    x, y = point
    result = False
    for (x1, y1), (x2, y2) in zip(polygon, [*polygon[1:], polygon[0]]):
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            result = not result
    return result


@dataclass
class _Sides:
    sides: Dict[str, int] = field(default_factory=dict)  # line -> last clear side, or ON_LINE
    crossed: Dict[Tuple[str, int], float] = field(default_factory=dict)  # (line, side) -> when
    before: Set[Tuple[str, int]] = field(default_factory=set)  # (line, side) of its vehicle
    #                                                             under an earlier track
    past: Dict[str, int] = field(default_factory=dict)  # line -> the side of the line itself
    #                                                      it is on, while within the band
    last: Optional[Sighting] = None
    last_seen: float = 0.0


class LineCrossings:
    """Tells which tracked vehicles cross which lines which way, frame by frame."""

    def __init__(self, lines: Sequence[CountingLine], forget_after_s: float = 10.0) -> None:
        self.lines = list(lines)
        self.forget_after_s = forget_after_s
        self._tracks: Dict[int, _Sides] = {}
        self._where = Whereabouts()  # of the vehicles that crossed a line

    def update(self, sightings: Sequence[Sighting], stamp: float) -> List[Crossing]:
        """Feed one frame's sightings; return the crossings made in it."""
        crossings = []
        for sighting in sightings:
            if sighting.track_id < 0:
                continue  # untracked boxes cannot be followed across a line
            state = self._tracks.get(sighting.track_id)
            if state is None:
                state = self._tracks[sighting.track_id] = _Sides()
                before = self._where.find(sighting.bbox, stamp)
                if before is not None and before in self._tracks:  # re-found: crossed already
                    earlier = self._tracks[before]
                    state.before = earlier.before | set(earlier.crossed)
            state.last_seen, state.last = stamp, sighting
            for line in self.lines:
                crossing = self._cross(line, state, sighting, stamp)
                if crossing is not None:
                    crossings.append(crossing)
            if state.crossed:
                self._where.see(sighting.track_id, sighting.bbox, stamp)
        for state in self._tracks.values():
            if state.past and stamp - state.last_seen > LOST_WAIT_S:
                crossings.extend(self._lost_past(state))
        self._tracks = {k: v for k, v in self._tracks.items()
                        if stamp - v.last_seen <= self.forget_after_s}
        self._where.prune(stamp)
        return crossings

    @staticmethod
    def _cross(line: CountingLine, state: _Sides, sighting: Sighting, stamp: float,
               lost_to: Optional[int] = None) -> Optional[Crossing]:
        """Return the crossing of ``line`` in this sighting (``lost_to``: the side lost on)."""
        side = side_of(line, sighting.bbox) if lost_to is None else lost_to
        if side is None:
            return None  # beside the segment
        if side == ON_LINE:
            # A track first seen on the line came from one side of it (a vehicle found
            # late, or whose track was re-created there): where it leaves to is a crossing.
            state.sides.setdefault(line.name, ON_LINE)
            distance = signed_distance(line, ground_point(sighting.bbox)) or 0.0
            state.past[line.name] = 1 if distance > 0 else -1
            return None
        state.past.pop(line.name, None)
        before = -side if lost_to is not None else state.sides.get(line.name)
        state.sides[line.name] = side
        if before is None or before == side or (line.name, side) in state.crossed:
            return None
        back = state.crossed.get((line.name, -side))
        if back is not None and stamp - back < REVERSE_S:
            return None  # jumped back over it a moment after crossing: the same crossing
        state.crossed[(line.name, side)] = stamp
        if (line.name, side) in state.before:
            return None  # its vehicle crossed here this way under an earlier track
        return Crossing(line.name, direction_of(line, side), sighting, stamp,
                        from_line=before == ON_LINE)

    def _lost_past(self, state: _Sides) -> List[Crossing]:
        """Count a track lost within a band, past the line, from the other side."""
        crossings = []
        for line in self.lines:
            side = state.past.pop(line.name, None)
            if side is None or state.sides.get(line.name) != -side or state.last is None:
                continue
            crossing = self._cross(line, state, state.last, state.last_seen, side)
            if crossing is not None:
                crossings.append(crossing)
        state.past.clear()
        return crossings
