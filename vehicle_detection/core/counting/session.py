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
One camera's traffic counting: geometry, crossings and periods.

The lines are put in pixels on the first frame (fractions need the image
size); who crossed which line which way is :class:`LineCrossings`' rule.
Crossings are summed per line, direction and class into periods of
``period_s`` aligned to the clock (a 1-minute period starts on the
minute), by the frames' own stamps, so a replayed recording is counted in its
own time. A period closes when the first frame of a later one arrives (or at
:meth:`CountingSession.flush`); a period in which frames were seen is closed
even when nothing crossed, so that "no traffic" differs from "no data".
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
import math
from typing import Any, Counter, Dict, List, Optional, Sequence, Tuple

from vehicle_detection.core.events.geometry import Crossing, Geometry, LineCrossings
from vehicle_detection.core.events.vehicles import Sighting

CountKey = Tuple[str, str, str]  # line, direction, class


@dataclass(frozen=True)
class PeriodCounts:
    """Crossings of one period: start (epoch seconds), length, and counts per key."""

    start: float
    period_s: int
    counts: Dict[CountKey, int]

    def rows(self) -> Tuple[Tuple[str, str, str, int], ...]:
        """Return (line, direction, class, count) rows, sorted."""
        return tuple((*key, count) for key, count in sorted(self.counts.items()))


@dataclass(frozen=True)
class FrameCounts:
    """What one frame added: crossings and the periods it closed."""

    crossings: List[Crossing]
    closed: List[PeriodCounts]


class CountingSession:
    """Counts of one camera, fed frame by frame with tracked vehicles."""

    def __init__(self, geometry: Geometry, period_s: int = 60) -> None:
        self.geometry = geometry
        self.period_s = period_s
        self.totals: Counter[CountKey] = collections.Counter()  # since the session started
        self._counter: Optional[LineCrossings] = None
        self._size: Tuple[int, int] = (0, 0)
        self._period: Optional[int] = None  # index of the open period
        self._open: Counter[CountKey] = collections.Counter()

    def update(self, sightings: Sequence[Sighting], stamp: float,
               size: Tuple[int, int]) -> FrameCounts:
        """Feed one frame: its tracked vehicles, its stamp and image size."""
        if not self.geometry.lines:
            return FrameCounts([], [])
        if self._counter is None or size != self._size:
            self._counter, self._size = LineCrossings(self.geometry.in_pixels(*size)[0]), size
        closed = []
        period = math.floor(stamp / self.period_s)
        if self._period is not None and period != self._period:
            closed = self.flush()
        self._period = period
        crossings = self._counter.update(sightings, stamp)
        for crossing in crossings:
            key = (crossing.line, crossing.direction, crossing.class_name)
            self._open[key] += 1
            self.totals[key] += 1
        return FrameCounts(crossings, closed)

    def flush(self) -> List[PeriodCounts]:
        """Close the open period (at a stop, or a change of lines); [] when none is open."""
        if self._period is None:
            return []
        period = PeriodCounts(self._period * self.period_s, self.period_s, dict(self._open))
        self._period, self._open = None, collections.Counter()
        return [period]

    def direction_totals(self) -> Dict[Tuple[str, str], int]:
        """Return the vehicles counted since the start per (line, direction), all classes."""
        totals: Counter[Tuple[str, str]] = collections.Counter()
        for (line, direction, _), count in self.totals.items():
            totals[(line, direction)] += count
        return dict(totals)

    def status(self) -> Dict[str, Any]:
        """Return the running counts and the geometry in pixels, as plain JSON data."""
        lines, zones = self.geometry.in_pixels(*self._size) if self._size[0] else ([], [])
        return {
            'period_start': None if self._period is None else self._period * self.period_s,
            'period_s': self.period_s,
            'period': _rows(self._open), 'total': _rows(self.totals),
            'lines': [{'name': line.name, 'a': list(line.a), 'b': list(line.b),
                       'directions': list(line.directions), 'oneway': line.oneway}
                      for line in lines],
            'zones': [{'name': zone.name, 'polygon': [list(p) for p in zone.polygon],
                       'dwell_s': zone.dwell_limit_s} for zone in zones]}


def counts_table(counting: CountingSession) -> str:
    """Return the totals per line, direction and class as an aligned text table."""
    rows = [('line', 'direction', 'class', 'count')] + [
        (line, direction, name, str(count))
        for (line, direction, name), count in sorted(counting.totals.items())]
    rows += [(line, direction, 'all', str(count))
             for (line, direction), count in sorted(counting.direction_totals().items())]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return ''.join('  '.join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() + '\n'
                   for row in rows)


def _rows(counts: Counter[CountKey]) -> List[Dict[str, Any]]:
    return [{'line': line, 'direction': direction, 'class_name': name, 'count': count}
            for (line, direction, name), count in sorted(counts.items())]
