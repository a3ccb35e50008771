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
Counting lines and zones as an integrator writes them, parsed and checked.

One string per kind, entries separated by ``;`` (the same text as a ROS
parameter, in ``config.yaml`` and after ``vehicle-detection detect --lines``)::

    counting_lines: "stop_bar 0,0.62 1,0.62 towards/away; ramp 410,300 600,300"
    counting_zones: "shoulder 0.8,0.5 1,0.5 1,1 0.8,1 dwell=30"

A line is ``NAME X1,Y1 X2,Y2 [FIRST/SECOND]``: a vehicle crossing to the
right-hand side of the line as drawn from the first point to the second (on
the picture) is counted as FIRST, one crossing to its left as SECOND. A
zone is ``NAME X,Y X,Y X,Y [...] [dwell=SECONDS]``. When every coordinate of
an entry lies in [0, 1] they are fractions of the image width and height
(the entry then fits any resolution); otherwise pixels. An entry that mixes
both (``0,0.5 1.2,0.5``) is refused: it is a typo, not a 1.2-pixel line. An
entry in pixels can lie outside the image; :meth:`Geometry.outside_image`
says so once the image size is known.
"""

from __future__ import annotations

from dataclasses import dataclass
import math
import re
from typing import Callable, List, Optional, Sequence, Tuple

from vehicle_detection.core.counting.lines import CountingLine, inside, Point, Zone
from vehicle_detection.wire import is_valid_name, MAX_COUNT_LINES

LINE_SYNTAX = 'NAME X1,Y1 X2,Y2 [FIRST/SECOND]'
ZONE_SYNTAX = 'NAME X,Y X,Y X,Y [...] [dwell=SECONDS]'
MAX_DWELL_S = 86400.0
# Lines (the wire contract's limit, which the server also keeps per device), and zones: each
# is checked for every tracked vehicle of every frame.
MAX_ENTRIES = MAX_COUNT_LINES
MAX_POINTS = 64  # of one zone
_POINT = re.compile(r'^([0-9.eE+-]+),([0-9.eE+-]+)$')


@dataclass(frozen=True)
class Geometry:
    """Lines and zones as written: in pixels, or in fractions of the image (``fractions``)."""

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

        lines = [CountingLine(line.name, scale(line.a, f), scale(line.b, f), line.directions)
                 for line, f in self.lines]
        zones = [Zone(zone.name, tuple(scale(p, f) for p in zone.polygon), zone.dwell_limit_s)
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


def parse_geometry(lines: str, zones: str) -> Geometry:
    """
    Parse the ``counting_lines`` and ``counting_zones`` texts.

    Raises ValueError naming the entry and what is wrong with it; names must
    be unique across lines and zones (counts and events are keyed by them).
    """
    line_entries, zone_entries = _entries(lines), _entries(zones)
    if len(line_entries) > MAX_ENTRIES or len(zone_entries) > MAX_ENTRIES:
        raise ValueError(f'at most {MAX_ENTRIES} lines and {MAX_ENTRIES} zones')
    parsed_lines = tuple(_parse_line(entry) for entry in line_entries)
    parsed_zones = tuple(_parse_zone(entry) for entry in zone_entries)
    names = [line.name for line, _ in parsed_lines] + [zone.name for zone, _ in parsed_zones]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f'names must be unique: {", ".join(repeated)} used twice')
    return Geometry(parsed_lines, parsed_zones)


def lines_problem(text: str) -> Optional[str]:
    """Say what is wrong with a ``counting_lines`` text (a parameter check), None if fine."""
    return _problem(lambda: parse_geometry(text, ''))


def zones_problem(text: str) -> Optional[str]:
    """Say what is wrong with a ``counting_zones`` text (a parameter check), None if fine."""
    return _problem(lambda: parse_geometry('', text))


def _problem(parse: Callable[[], object]) -> Optional[str]:
    try:
        parse()
    except ValueError as error:
        return str(error)
    return None


def _entries(text: str) -> List[List[str]]:
    return [entry.split() for entry in text.split(';') if entry.strip()]


def _parse_line(words: List[str]) -> Tuple[CountingLine, bool]:
    entry = ' '.join(words)
    name, rest = _name(words, entry, LINE_SYNTAX)
    directions = ('right', 'left')
    if rest and '/' in rest[-1]:
        first, _, second = rest.pop().partition('/')
        if not (is_valid_name(first) and is_valid_name(second)) or first == second:
            raise ValueError(f'line {entry!r}: directions must be two different names '
                             'like towards/away (letters, digits, "_", "." or "-")')
        directions = (first, second)
    points = [_point(word, entry) for word in rest]
    if len(points) != 2:
        raise ValueError(f'line {entry!r}: expected {LINE_SYNTAX}')
    if points[0] == points[1]:
        raise ValueError(f'line {entry!r}: its two points are the same')
    return CountingLine(name, points[0], points[1], directions), _fractions(points, 'line',
                                                                            entry)


def _parse_zone(words: List[str]) -> Tuple[Zone, bool]:
    entry = ' '.join(words)
    name, rest = _name(words, entry, ZONE_SYNTAX)
    dwell = 0.0
    if rest and rest[-1].startswith('dwell='):
        try:
            dwell = float(rest.pop()[len('dwell='):])
        except ValueError:
            dwell = math.nan
        if not 0.0 <= dwell <= MAX_DWELL_S:
            raise ValueError(f'zone {entry!r}: dwell must be seconds in [0, {MAX_DWELL_S:g}]')
    points = [_point(word, entry) for word in rest]
    if not 3 <= len(points) <= MAX_POINTS:
        raise ValueError(f'zone {entry!r}: expected {ZONE_SYNTAX} (3 to {MAX_POINTS} points)')
    area = sum(x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in zip(points, points[1:] + points[:1]))
    if abs(area) < 1e-9:
        raise ValueError(f'zone {entry!r}: its points enclose no area')
    return Zone(name, tuple(points), dwell), _fractions(points, 'zone', entry)


def _name(words: List[str], entry: str, syntax: str) -> Tuple[str, List[str]]:
    if not words or not is_valid_name(words[0]) or _POINT.match(words[0]):
        raise ValueError(f'{entry!r}: expected {syntax}; a name comes first (letters, digits, '
                         '"_", "." or "-")')
    return words[0], words[1:]


def _point(word: str, entry: str) -> Point:
    match = _POINT.match(word)
    try:
        point = (float(match.group(1)), float(match.group(2))) if match else None
    except ValueError:
        point = None
    if point is None or not all(math.isfinite(v) and 0.0 <= v <= 100_000 for v in point):
        raise ValueError(f'{entry!r}: {word!r} is not a point X,Y (two numbers >= 0)')
    return point


def _fractions(points: List[Point], kind: str, entry: str) -> bool:
    """Tell whether the points are fractions of the image; refuse a mix with pixels."""
    values = [v for point in points for v in point]
    if all(v <= 1.0 for v in values):
        return True
    # Pixels may be 0 or 1, but a pixel entry has no coordinate strictly between them.
    between = [v for v in values if 0.0 < v < 1.0]
    if between:
        raise ValueError(f'{kind} {entry!r}: mixes fractions of the image ({between[0]:g}) and '
                         f'pixels ({max(values):g}): write every coordinate in [0, 1] '
                         '(fractions) or every one in pixels')
    return False
