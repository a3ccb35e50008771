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
A camera's ground calibration: where a point of the picture lies on the road, in metres.

One string (the bridge's ``speed_calibration`` parameter), one of two forms::

    image 0.42,0.95 0.78,0.95 0.55,0.45 0.47,0.45 road 0,0 7.3,0 7.3,60 0,60
    lines entry exit 25.5

The first gives four points of the picture (pixels, or fractions of the
image as for counting lines) and where each lies on the road, in metres
(any flat frame: e.g. across the road, then along it). They give the
homography from the picture to the road plane, so a vehicle's ground point
(the bottom centre of its box) is a position in metres wherever it is on
the road. Four corners of lane markings are the usual choice: UK motorway
lanes are 3.65 m wide and their dashes repeat every 9 m (2 m line, 7 m gap).

The second names two counting lines a known distance apart (along the
road): a vehicle's speed is that distance over the time between its
crossings of the two (a speed trap).
"""

from __future__ import annotations

from dataclasses import dataclass
import math
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

from vehicle_detection.core.counting.config import number_pair
from vehicle_detection.core.events.vehicles import Point
from vehicle_detection.wire import is_valid_name

SYNTAX = ('image X,Y X,Y X,Y X,Y road E,N E,N E,N E,N (four picture points and their road '
          'positions in metres) or lines NAME NAME METRES (two counting lines that far apart)')
MAX_ROAD_M = 10_000.0  # a calibrated stretch is a road, not a map
MIN_TRAP_M = 1.0  # two lines closer than this time nothing at camera rates


@dataclass(frozen=True)
class Calibration:
    """A parsed calibration: four points with road positions, or a speed trap of two lines."""

    image: Tuple[Point, ...] = ()  # 4 picture points (pixels, or fractions: ``fractions``)
    road: Tuple[Point, ...] = ()  # their road positions, metres
    fractions: bool = False
    lines: Tuple[str, str] = ('', '')  # the speed trap's counting lines...
    distance_m: float = 0.0  # ...and how far apart they are

    @property
    def is_homography(self) -> bool:
        """Tell whether this is the four-point form (else the two-line speed trap)."""
        return bool(self.image)

    def image_in_pixels(self, width: int, height: int) -> Tuple[Point, ...]:
        """Return the four picture points in pixels of a ``width`` x ``height`` image."""
        if not self.fractions:
            return self.image
        return tuple((x * width, y * height) for x, y in self.image)

    def ground(self, width: int, height: int) -> 'GroundMap':
        """Return the picture-to-road map for a ``width`` x ``height`` image."""
        return GroundMap(homography(self.image_in_pixels(width, height), self.road))


class GroundMap:
    """Maps picture points (pixels) to road positions (metres) by a homography."""

    def __init__(self, matrix: np.ndarray) -> None:
        self.matrix = matrix

    def to_road(self, point: Point) -> Optional[Point]:
        """Return the road position of a picture point; None above the horizon."""
        x, y, w = self.matrix @ np.array([point[0], point[1], 1.0])
        if w <= 1e-12:  # the point's ray never meets the road in front of the camera
            return None
        return (float(x / w), float(y / w))

    def metres_per_pixel(self, point: Point) -> float:
        """Return how many metres of road one pixel spans at ``point`` (down the picture)."""
        here, below = self.to_road(point), self.to_road((point[0], point[1] + 1.0))
        if here is None or below is None:
            return math.inf
        return math.hypot(below[0] - here[0], below[1] - here[1])


def homography(image: Sequence[Point], road: Sequence[Point]) -> np.ndarray:
    """
    Return the 3x3 matrix that maps the four ``image`` points onto the four ``road`` points.

    Solves the eight equations of the direct linear transform with the last
    entry fixed at 1 (the points are checked first: no three in a line).
    """
    rows, values = [], []
    for (x, y), (u, v) in zip(image, road):
        rows.append([x, y, 1.0, 0.0, 0.0, 0.0, -u * x, -u * y])
        rows.append([0.0, 0.0, 0.0, x, y, 1.0, -v * x, -v * y])
        values += [u, v]
    solution = np.linalg.solve(np.array(rows), np.array(values))
    matrix = np.append(solution, 1.0).reshape(3, 3)
    # The sign that gives the calibrated points a positive scale (in front of the camera).
    return matrix if (matrix @ np.array([*image[0], 1.0]))[2] > 0 else -matrix


def parse_calibration(text: str) -> Optional[Calibration]:
    """Parse a ``speed_calibration`` text (None: empty); ValueError says what is wrong."""
    words = text.split()
    if not words:
        return None
    if words[0] == 'lines':
        return _parse_lines(words, text)
    if words[0] != 'image' or 'road' not in words:
        raise ValueError(f'{text.strip()!r}: expected {SYNTAX}')
    split = words.index('road')
    image = [_pair(word, text) for word in words[1:split]]
    road = [_pair(word, text) for word in words[split + 1:]]
    if len(image) != 4 or len(road) != 4:
        raise ValueError(f'{text.strip()!r}: four picture points and four '
                         f'road points, {len(image)} and {len(road)} given')
    values = [v for point in image for v in point]
    if any(v < 0 for v in values):
        raise ValueError(f'{text.strip()!r}: picture points are pixels or '
                         'fractions of the image (>= 0)')
    fractions = all(v <= 1.0 for v in values)
    if not fractions and any(0.0 < v < 1.0 for v in values):
        raise ValueError(f'{text.strip()!r}: picture points mix fractions of '
                         'the image and pixels: write all in [0, 1] or all in pixels')
    if any(abs(v) > MAX_ROAD_M for point in road for v in point):
        raise ValueError(f'{text.strip()!r}: road points are metres within '
                         f'{MAX_ROAD_M:g} of the origin')
    scale = 1.0 if fractions else max(values)  # collinearity relative to the points' spread
    for name, points, unit in (('picture', image, scale), ('road', road, 1.0)):
        problem = _quadrilateral_problem(points, unit)
        if problem:
            raise ValueError(f'{text.strip()!r}: the {name} points {problem}')
    if _turns(image) != _turns(road) and _turns(image) != -_turns(road):
        raise ValueError(f'{text.strip()!r}: list the road points in the '
                         'order of the picture points')
    return Calibration(tuple(image), tuple(road), fractions)


def _parse_lines(words: List[str], text: str) -> Calibration:
    if len(words) != 4 or not all(is_valid_name(w) for w in words[1:3]):
        raise ValueError(f'{text.strip()!r}: expected lines NAME NAME METRES')
    try:
        distance = float(words[3])
    except ValueError:
        distance = math.nan
    if not MIN_TRAP_M <= distance <= MAX_ROAD_M:
        raise ValueError(f'{text.strip()!r}: the distance between the lines '
                         f'is metres in [{MIN_TRAP_M:g}, {MAX_ROAD_M:g}]')
    if words[1] == words[2]:
        raise ValueError(f'{text.strip()!r}: two different lines')
    return Calibration(lines=(words[1], words[2]), distance_m=distance)


def _pair(word: str, text: str) -> Point:
    point = number_pair(word)  # road metres may be negative, unlike picture points
    if point is None or not all(abs(v) <= 100_000 for v in point):
        raise ValueError(f'{text.strip()!r}: {word!r} is not a point X,Y')
    return point


def _cross(o: Point, a: Point, b: Point) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def _turns(points: Sequence[Point]) -> int:
    """Return 1 or -1: the way a convex quadrilateral's corners turn (0: not convex)."""
    signs = {math.copysign(1.0, _cross(points[i], points[(i + 1) % 4], points[(i + 2) % 4]))
             for i in range(4)}
    return int(signs.pop()) if len(signs) == 1 else 0


def _quadrilateral_problem(points: Sequence[Point], unit: float) -> Optional[str]:
    """Say why four points do not make a calibration quadrilateral (None when they do)."""
    for i in range(4):  # every three of them: a triangle of some size
        a, b, c = (points[j] for j in range(4) if j != i)
        if abs(_cross(a, b, c)) < 1e-4 * unit * unit:
            return 'include three in a line (or two the same): choose four corners of a ' \
                'quadrilateral on the road'
    if _turns(points) == 0:
        return 'do not go round a convex quadrilateral: list them corner after corner'
    return None


def calibration_problem(text: str) -> Optional[str]:
    """Say what is wrong with a ``speed_calibration`` text (a parameter check), None if fine."""
    return _problem(lambda: parse_calibration(text))


def trap_lines_problem(text: str, line_names: Sequence[str]) -> Optional[str]:
    """Say which line of a two-line calibration is not a counting line (None if fine)."""
    try:
        calibration = parse_calibration(text)
    except ValueError:
        return None  # said by calibration_problem
    if calibration is None or calibration.is_homography:
        return None
    missing = [name for name in calibration.lines if name not in line_names]
    if missing:
        return (f'speed_calibration: the lines {", ".join(missing)} are not counting lines '
                f'(counting_lines has {", ".join(line_names) or "none"})')
    return None


def _problem(parse: Callable[[], object]) -> Optional[str]:
    try:
        parse()
    except ValueError as error:
        return str(error)
    return None
