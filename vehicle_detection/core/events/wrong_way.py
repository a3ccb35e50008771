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
Wrong-way drivers: a vehicle crossing a one-way line against its direction.

A counting line written with ``oneway=DIRECTION`` (a carriageway's line)
allows that direction only. A confirmed vehicle (seen ``min_track_hits``
times with a score of at least ``min_alert_score``) that crosses it the
other way, from a clear side (not first seen on the line), raises one
``wrong_way`` alert with the line, the direction it crossed and the
snapshot of the frame that confirmed it: the vehicle has driven on, away
from the line on the wrong side, by :data:`CONFIRM_BEYOND` box heights
within :data:`CONFIRM_S` of the crossing. That confirmation tells a driver
from a box that jumped back over the line (a rig's whole box given the id
of its front part), which then drives on the right way. A track whose box
jumps between frames (to :data:`JUMP_AREA` times its size, or
:data:`JUMP_REACH` box diagonals away: an id passed on to another vehicle)
crosses nothing by that jump, and drops a crossing it made.
"""

from __future__ import annotations

from dataclasses import dataclass
import math
from typing import ClassVar, Dict, List, Optional, Sequence, Tuple

from vehicle_detection.core.events.event import FrameInfo, ImageSize, VehicleEvent
from vehicle_detection.core.events.geometry import (
    CountingLine, Crossing, Geometry, LineCrossings, signed_distance)
from vehicle_detection.core.events.vehicles import (
    area, Box, centre, diagonal, ground_point, Sighting)

CONFIRM_S = 1.0  # seconds after the crossing within which it must be confirmed
JUMP_AREA = 3.0  # a box this many times larger or smaller than the last is another's
JUMP_REACH = 2.0  # a box this many diagonals of the last away from it is another's
CONFIRM_BEYOND = 0.1  # box heights the vehicle must drive on past where it crossed
FORGET_TRACK_S = 10.0


@dataclass(frozen=True)
class WrongWaySettings:
    """The wrong-way rule's slice of the bridge's settings (same names)."""

    geometry: Geometry  # the lines; those with ``oneway`` are watched
    min_track_hits: int
    min_alert_score: float


class WrongWayRule:
    """Raises one ``wrong_way`` event per vehicle crossing a one-way line against it."""

    settings_type: ClassVar[type] = WrongWaySettings

    def __init__(self, settings: WrongWaySettings) -> None:
        self.settings = settings
        self._lines: Optional[Dict[str, CountingLine]] = None  # in pixels, once sized
        self._size: Optional[ImageSize] = None
        self._crossings: Optional[LineCrossings] = None
        self._hits: Dict[int, Tuple[int, float]] = {}  # track -> strong hits, last seen
        self._boxes: Dict[int, Box] = {}  # track -> its box in the frame before
        # (track, line) -> the crossing, its distance from the line, the track's last box
        self._pending: Dict[Tuple[int, str], Tuple[Crossing, float, Box]] = {}

    def configure(self, settings: WrongWaySettings) -> None:
        """Take new settings; new lines start afresh."""
        if settings.geometry.lines != self.settings.geometry.lines:
            self._lines, self._crossings, self._pending = None, None, {}
        self.settings = settings

    def update(self, sightings: Sequence[Sighting], frame: FrameInfo) -> List[VehicleEvent]:
        """Feed one frame's sightings; return the wrong-way drivers confirmed now."""
        lines = self._oneway_lines(frame.size)
        if not lines or self._crossings is None:
            return []
        for sighting in sightings:
            hits, _ = self._hits.get(sighting.track_id, (0, 0.0))
            strong = sighting.confidence >= self.settings.min_alert_score
            self._hits[sighting.track_id] = (hits + strong, frame.stamp)
        for crossing in self._crossings.update(sightings, frame.stamp):
            line = lines[crossing.line]
            before = self._boxes.get(crossing.track_id, crossing.sighting.bbox)
            if crossing.direction != line.oneway and not crossing.from_line \
                    and not _jumped(before, crossing.sighting.bbox):
                distance = abs(signed_distance(line, ground_point(crossing.sighting.bbox))
                               or 0.0)
                self._pending[(crossing.track_id, line.name)] = (
                    crossing, distance, crossing.sighting.bbox)
        events = [event for sighting in sightings
                  for event in self._confirmed(sighting, frame, lines)]
        self._boxes.update((s.track_id, s.bbox) for s in sightings)
        self._forget(frame.stamp)
        return events

    def flush(self) -> List[VehicleEvent]:
        """Return nothing: a crossing not yet confirmed is not a wrong-way driver."""
        return []

    def _confirmed(self, sighting: Sighting, frame: FrameInfo,
                   lines: Dict[str, CountingLine]) -> List[VehicleEvent]:
        events = []
        for line in lines.values():
            pending = self._pending.get((sighting.track_id, line.name))
            if pending is None:
                continue
            crossing, crossed_at, last = pending
            if _jumped(last, sighting.bbox):
                del self._pending[(sighting.track_id, line.name)]
                continue  # another vehicle under this id, or another box of this one
            self._pending[(sighting.track_id, line.name)] = (crossing, crossed_at, sighting.bbox)
            distance = signed_distance(line, ground_point(sighting.bbox))
            height = max(1.0, sighting.bbox[3] - sighting.bbox[1])
            if distance is None or abs(distance) < crossed_at + CONFIRM_BEYOND * height \
                    or (distance > 0) != (crossing.direction == line.directions[0]):
                continue  # not (yet) driven on past the line on the wrong side
            del self._pending[(sighting.track_id, line.name)]
            if self._hits[sighting.track_id][0] >= self.settings.min_track_hits:
                events.append(VehicleEvent(
                    'wrong_way', sighting, frame.stamp, frame.key,
                    {'line': line.name, 'direction': crossing.direction}))
        return events

    def _oneway_lines(self, size: Optional[ImageSize]) -> Dict[str, CountingLine]:
        geometry = self.settings.geometry
        if not any(line.oneway for line, _ in geometry.lines) \
                or (size is None and geometry.needs_size):
            return {}
        if self._lines is None or (size != self._size and geometry.needs_size):
            lines = [line for line in geometry.in_pixels(*(size or (0, 0)))[0] if line.oneway]
            self._lines = {line.name: line for line in lines}
            self._crossings, self._size, self._pending = LineCrossings(lines), size, {}
        return self._lines

    def _forget(self, stamp: float) -> None:
        self._pending = {key: pending for key, pending in self._pending.items()
                         if stamp - pending[0].stamp <= CONFIRM_S}
        self._hits = {track: (hits, seen) for track, (hits, seen) in self._hits.items()
                      if stamp - seen <= FORGET_TRACK_S}
        self._boxes = {track: box for track, box in self._boxes.items() if track in self._hits}


def _jumped(last: Box, box: Box) -> bool:
    """Tell whether ``box`` is too far from or unlike ``last`` to be the same vehicle moving."""
    ratio = area(box) / max(area(last), 1.0)
    (x1, y1), (x2, y2) = centre(last), centre(box)
    return not 1.0 / JUMP_AREA <= ratio <= JUMP_AREA \
        or math.hypot(x2 - x1, y2 - y1) > JUMP_REACH * diagonal(last)
