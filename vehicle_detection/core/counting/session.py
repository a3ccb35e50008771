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
One camera's traffic counting: geometry, crossings, speeds and periods.

The lines are put in pixels on the first frame (fractions need the image
size); who crossed which line which way is :class:`LineCrossings`' rule.
Crossings are summed per line, direction and class into periods of
``period_s`` aligned to the clock (a 1-minute period starts on the
minute), by the frames' own stamps, so a replayed recording is counted in its
own time. A period closes when the first frame of a later one arrives (or at
:meth:`CountingSession.flush`); a period in which frames were seen is closed
even when nothing crossed, so that "no traffic" differs from "no data".

With a ground calibration each counted vehicle's speed is measured
(:mod:`speed`) and binned per line, direction and class (2 km/h bins); its
crossing waits for the frames after it, so a period then closes up to
``speed.WAIT_S`` after its end. With ``per_vehicle`` each counted vehicle is
also kept as a row (seconds into the period, line, direction, class, km/h).
Classes are the session's class scheme's (:mod:`schemes`, ``uk6`` by default),
and each period carries its quality (:mod:`quality`: flags, seconds observed).
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
import math
from typing import Any, Callable, Counter, Dict, List, Optional, Sequence, Tuple

from vehicle_detection.core.counting.calibration import Calibration
from vehicle_detection.core.counting.quality import PeriodQuality, QualityLimits, QualityWatch
from vehicle_detection.core.counting.schemes import ClassScheme
from vehicle_detection.core.counting.speed import SpeedMeter
from vehicle_detection.core.events.geometry import Crossing, Geometry, LineCrossings
from vehicle_detection.core.events.vehicles import Sighting
from vehicle_detection.wire_speeds import speed_bin

CountKey = Tuple[str, str, str]  # line, direction, class
VehicleRow = Tuple[float, str, str, str, Optional[float]]  # offset s, line, way, class, km/h
SpeedRow = Tuple[str, str, str, Tuple[Tuple[int, int], ...]]  # line, way, class, (bin, n)
# The length in metres of a crossing vehicle where a ground calibration gives it (None:
# unknown); the class scheme then judges by length instead of the box's size.
LengthOf = Callable[[Crossing], Optional[float]]


def vehicle_offset(seconds: float, period_s: int) -> float:
    """Return a crossing's seconds into its period as sent: to 10 ms, down, within it."""
    # Down, never rounded up: 59.996 s into a minute is not 60.00 (the wire refuses that).
    return min(max(math.floor(seconds * 100.0) / 100.0, 0.0), period_s - 0.01)


@dataclass(frozen=True)
class PeriodCounts:
    """Crossings of one period: start (epoch seconds), length, counts, speeds, vehicles."""

    start: float
    period_s: int
    counts: Dict[CountKey, int]
    speeds: Dict[CountKey, Dict[int, int]] = field(default_factory=dict)  # key -> bin -> n
    vehicles: Tuple[VehicleRow, ...] = ()  # when asked for, in the order they crossed
    scheme: Optional[str] = None  # the class scheme of the counts' class names
    quality: Optional[PeriodQuality] = None  # seconds observed and what degraded them

    def rows(self) -> Tuple[Tuple[str, str, str, int], ...]:
        """Return (line, direction, class, count) rows, sorted."""
        return tuple((*key, count) for key, count in sorted(self.counts.items()))

    def speed_rows(self) -> Tuple[SpeedRow, ...]:
        """Return (line, direction, class, ((bin, vehicles), ...)) rows, sorted."""
        return tuple((*key, tuple(sorted(bins.items())))
                     for key, bins in sorted(self.speeds.items()) if bins)


@dataclass(frozen=True)
class FrameCounts:
    """What one frame added: crossings and the periods it closed."""

    crossings: List[Crossing]
    closed: List[PeriodCounts]


@dataclass
class _Period:
    """A period being summed (open, or closed and waiting for its vehicles' speeds)."""

    index: int
    counts: Counter[CountKey] = field(default_factory=collections.Counter)
    speeds: Dict[CountKey, Counter[int]] = field(default_factory=dict)
    vehicles: List[VehicleRow] = field(default_factory=list)


@dataclass(frozen=True)
class _Held:
    period: int
    key: CountKey
    offset: float


class CountingSession:
    """Counts of one camera, fed frame by frame with tracked vehicles."""

    def __init__(self, geometry: Geometry, period_s: int = 60,
                 calibration: Optional[Calibration] = None, per_vehicle: bool = False,
                 scheme: str = 'uk6', quality: Optional[QualityLimits] = None,
                 length_of: Optional[LengthOf] = None) -> None:
        self.geometry = geometry
        self.period_s = period_s
        self.calibration = calibration
        self.per_vehicle = per_vehicle
        self.scheme = ClassScheme(scheme)
        self.quality = QualityWatch(period_s, quality or QualityLimits())
        # Not wired to the calibration yet: a box's length on the road needs the vehicle's
        # footprint (its top is not on the ground), e.g. speed x time over the line; until
        # then uk6 judges by the box against the usual car.
        self.length_of = length_of
        self.totals: Counter[CountKey] = collections.Counter()  # since the session started
        self.meter: Optional[SpeedMeter] = None  # with a calibration, once the size is known
        self._counter: Optional[LineCrossings] = None
        self._size: Tuple[int, int] = (0, 0)
        self._period: Optional[int] = None  # index of the open period
        self._periods: Dict[int, _Period] = {}  # the open one and those waiting for speeds
        self._stamp: Optional[float] = None  # of the last frame counted
        self._counted: Counter[CountKey] = collections.Counter()  # what that frame added

    @property
    def _open(self) -> Counter[CountKey]:
        """Return the open period's counts (empty when none is open)."""
        period = self._periods.get(self._period) if self._period is not None else None
        return period.counts if period is not None else collections.Counter()

    def update(self, sightings: Sequence[Sighting], stamp: float,
               size: Tuple[int, int]) -> FrameCounts:
        """Feed one frame: its tracked vehicles, its stamp and image size."""
        if not self.geometry.lines:
            return FrameCounts([], [])
        if self._counter is None or size != self._size:
            lines = self.geometry.in_pixels(*size)[0]
            self._counter, self._size = LineCrossings(lines), size
            self.meter = SpeedMeter(self.calibration, size, lines) \
                if self.calibration is not None and size[0] > 0 else None
        period = math.floor(stamp / self.period_s)
        self.quality.frame(stamp, len(sightings))  # first: it covers the end of the last period
        self._period, self._stamp = period, stamp
        open_period = self._periods.setdefault(period, _Period(period))
        for sighting in sightings:
            self.scheme.observe(sighting, size[1])
        if self.meter is not None:
            self.meter.see(sightings, stamp)
        crossings = self._counter.update(sightings, stamp)
        self._counted = collections.Counter()
        for crossing in crossings:
            key = (crossing.line, crossing.direction, self.classify(crossing))
            self._counted[key] += 1
            open_period.counts[key] += 1
            self.totals[key] += 1
            offset = vehicle_offset(crossing.stamp - period * self.period_s, self.period_s)
            if self.meter is not None:
                self.meter.hold(crossing.track_id, crossing.stamp, _Held(period, key, offset))
            elif self.per_vehicle:
                open_period.vehicles.append((offset, *key, None))
        return FrameCounts(crossings, self._settle(stamp))

    def flush(self) -> List[PeriodCounts]:
        """Close the open period (at a stop, or a change of lines); [] when none is open."""
        closed = self._settle(math.inf, force=True)
        self._period = None
        return closed

    def _settle(self, stamp: float, force: bool = False) -> List[PeriodCounts]:
        """Bin the speeds measured by now; return the periods past whose speeds are all in."""
        if self.meter is not None:
            for held, speed in self.meter.resolve(stamp, force):
                where: _Held = held.payload  # ours, by hold()
                period = self._periods[where.period]
                if speed is not None:
                    period.speeds.setdefault(where.key, collections.Counter())[
                        speed_bin(speed)] += 1
                if self.per_vehicle:
                    period.vehicles.append((where.offset, *where.key,
                                            None if speed is None else round(speed, 1)))
        waiting = {held.payload.period for held in self.meter.pending} \
            if self.meter is not None else set()
        closed = []
        for index in sorted(self._periods):
            if not force and (index == self._period or index in waiting):
                break  # in order: a later period waits behind one whose speeds are not all in
            period = self._periods.pop(index)
            closed.append(PeriodCounts(
                index * self.period_s, self.period_s, dict(period.counts),
                {key: dict(bins) for key, bins in period.speeds.items()},
                tuple(sorted(period.vehicles, key=lambda row: row[0])),
                self.scheme.name, self.quality.close(index)))
        return closed

    def classify(self, crossing: Crossing) -> str:
        """Return a crossing vehicle's class in the session's scheme."""
        length = self.length_of(crossing) if self.length_of is not None else None
        return self.scheme.classify(crossing.class_name, crossing.sighting.bbox,
                                    self._size[1], length)

    def direction_totals(self) -> Dict[Tuple[str, str], int]:
        """Return the vehicles counted since the start per (line, direction), all classes."""
        totals: Counter[Tuple[str, str]] = collections.Counter()
        for (line, direction, _), count in self.totals.items():
            totals[(line, direction)] += count
        return dict(totals)

    def status(self) -> Dict[str, Any]:
        """
        Return the running counts and the geometry in pixels, as plain JSON data.

        ``stamp`` is the last counted frame's (epoch seconds) and ``counted``
        what that frame added to ``total``: a recording of these statuses
        (``vehicle-detection validate record``) places each change of the
        totals at the frame that made it, and the crossings of its first
        status even when the statuses before it were not recorded.
        """
        lines, zones = self.geometry.in_pixels(*self._size) if self._size[0] else ([], [])
        return {
            'stamp': self._stamp,
            'scheme': self.scheme.name,  # what the class names are
            'period_start': None if self._period is None else self._period * self.period_s,
            'period_s': self.period_s,
            'period': _rows(self._open), 'total': _rows(self.totals),
            'counted': _rows(self._counted),
            'lines': [{'name': line.name, 'a': list(line.a), 'b': list(line.b),
                       'directions': list(line.directions), 'oneway': line.oneway}
                      for line in lines],
            'zones': [{'name': zone.name, 'polygon': [list(p) for p in zone.polygon],
                       'dwell_s': zone.dwell_limit_s} for zone in zones],
            'calibration': self._calibration_status()}

    def _calibration_status(self) -> Optional[Dict[str, Any]]:
        """Return the speed calibration as the overlay draws it (pixels), None without one."""
        calibration = self.calibration
        if calibration is None or not self._size[0]:
            return None
        if calibration.is_homography:
            return {'image': [list(p) for p in calibration.image_in_pixels(*self._size)],
                    'road': [list(p) for p in calibration.road]}
        return {'lines': list(calibration.lines), 'distance_m': calibration.distance_m}


def counts_table(counting: CountingSession) -> str:
    """Return the totals per line, direction and class as an aligned text table."""
    rows = [('line', 'direction', 'class', 'count')] + [
        (line, direction, name, str(count))
        for (line, direction, name), count in sorted(counting.totals.items())]
    rows += [(line, direction, 'all', str(count))
             for (line, direction), count in sorted(counting.direction_totals().items())]
    return aligned_table(rows)


def aligned_table(rows: Sequence[Sequence[str]]) -> str:
    """Return ``rows`` (a header first) as text, each column padded to its widest cell."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ''.join('  '.join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() + '\n'
                   for row in rows)


def _rows(counts: Counter[CountKey]) -> List[Dict[str, Any]]:
    return [{'line': line, 'direction': direction, 'class_name': name, 'count': count}
            for (line, direction, name), count in sorted(counts.items())]
