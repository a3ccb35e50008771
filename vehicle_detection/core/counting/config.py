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

A line is ``NAME X1,Y1 X2,Y2 [FIRST/SECOND] [oneway=FIRST|SECOND]``: a
vehicle crossing to the right-hand side of the line as drawn from the first
point to the second (on the picture) is counted as FIRST, one crossing to its
left as SECOND; ``oneway=`` names the only direction traffic may take across
it (a line over one carriageway), and a vehicle crossing the other way raises
a ``wrong_way`` alert. A zone is ``NAME X,Y X,Y X,Y [...] [dwell=SECONDS]``.
When every coordinate of an entry lies in [0, 1] they are fractions of the
image width and height (the entry then fits any resolution); otherwise pixels.
An entry that mixes both (``0,0.5 1.2,0.5``) is refused: it is a typo, not a
1.2-pixel line. An entry in pixels can lie outside the image;
:meth:`Geometry.outside_image` says so once the image size is known.
"""

from __future__ import annotations

import math
import re
from typing import Callable, List, Optional, Tuple

from vehicle_detection.core.events.geometry import CountingLine, Geometry, Zone
from vehicle_detection.core.events.vehicles import Point
from vehicle_detection.wire import is_valid_name, MAX_COUNT_LINES

LINE_SYNTAX = 'NAME X1,Y1 X2,Y2 [FIRST/SECOND] [oneway=FIRST|SECOND]'
ONEWAY = 'oneway='
ZONE_SYNTAX = 'NAME X,Y X,Y X,Y [...] [dwell=SECONDS]'
MAX_DWELL_S = 86400.0
# Lines (the wire contract's limit, which the server also keeps per device), and zones: each
# is checked for every tracked vehicle of every frame.
MAX_ENTRIES = MAX_COUNT_LINES
MAX_POINTS = 64  # of one zone
_POINT = re.compile(r'^([0-9.eE+-]+),([0-9.eE+-]+)$')


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
    marks = [word[len(ONEWAY):] for word in rest if word.startswith(ONEWAY)]
    if len(marks) > 1:
        raise ValueError(f'line {entry!r}: one oneway= at most')
    rest = [word for word in rest if not word.startswith(ONEWAY)]
    oneway = marks[0] if marks else None
    directions = ('right', 'left')
    if rest and '/' in rest[-1]:
        first, _, second = rest.pop().partition('/')
        if not (is_valid_name(first) and is_valid_name(second)) or first == second:
            raise ValueError(f'line {entry!r}: directions must be two different names '
                             'like towards/away (letters, digits, "_", "." or "-")')
        directions = (first, second)
    if oneway is not None and oneway not in directions:
        raise ValueError(f'line {entry!r}: oneway={oneway} must name one of its directions, '
                         f'{directions[0]} or {directions[1]}')
    points = [_point(word, entry) for word in rest]
    if len(points) != 2:
        raise ValueError(f'line {entry!r}: expected {LINE_SYNTAX}')
    if points[0] == points[1]:
        raise ValueError(f'line {entry!r}: its two points are the same')
    return CountingLine(name, points[0], points[1], directions, oneway), _fractions(
        points, 'line', entry)


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


def number_pair(word: str) -> Optional[Point]:
    """Return ``X,Y`` as two finite numbers, or None when it is not such a pair."""
    match = _POINT.match(word)
    try:
        point = (float(match.group(1)), float(match.group(2))) if match else None
    except ValueError:
        return None
    return point if point is not None and all(math.isfinite(v) for v in point) else None


def _point(word: str, entry: str) -> Point:
    point = number_pair(word)
    if point is None or not all(0.0 <= v <= 100_000 for v in point):
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
