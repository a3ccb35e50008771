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
The field check's report: manual against system counts per interval, direction and class.

Intervals are aligned to the clock (15 minutes by default: 12:00, 12:15...,
UTC), as the server's 15-minute buckets; a window that starts or ends inside
one covers it in part, and the report says how many seconds. Per interval
and direction, over all classes, the error is ``(system - manual) / manual``
in percent, accepted when its size is within the limit (5 % by default, as
VDOT 26-R53 and ASTM E2532 accept a counter per direction and interval);
class rows give their error and, with ``per_class``, are judged too. An
interval with no vehicle counted by hand is accepted only when the system
counted none either (an error against zero has no size).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from datetime import datetime, timezone
import io
import json
import math
from typing import Any, Dict, List, Optional, Sequence, Tuple

from vehicle_detection.core.validation.manual import ManualCount
from vehicle_detection.core.validation.recording import Crossing

DEFAULT_LIMIT_PCT = 5.0
DEFAULT_INTERVAL_S = 900
ALL = 'all'  # the class of a direction's row over every class
COLUMNS = ('interval_start', 'interval_end', 'covered_s', 'line', 'direction', 'class_name',
           'manual', 'system', 'difference', 'error_pct', 'verdict')


@dataclass(frozen=True)
class ReportRow:
    """One interval, direction and class (or ``all``): both counts and the verdict."""

    start: float  # epoch seconds
    end: float
    covered_s: float
    line: str
    direction: str
    class_name: str
    manual: int
    system: int
    error_pct: Optional[float]  # None: nothing counted by hand, something by the system
    verdict: str  # accept, reject, or '' (a class row, not judged)

    def as_dict(self) -> Dict[str, Any]:
        """Return the row with the CSV/JSON column names (times as ISO 8601 UTC)."""
        return {'interval_start': iso(self.start), 'interval_end': iso(self.end),
                'covered_s': round(self.covered_s, 1), 'line': self.line,
                'direction': self.direction, 'class_name': self.class_name,
                'manual': self.manual, 'system': self.system,
                'difference': self.system - self.manual,
                'error_pct': None if self.error_pct is None else round(self.error_pct, 2),
                'verdict': self.verdict}


@dataclass
class Report:
    """Every row of a field check, its settings and the overall verdict."""

    line: str
    limit_pct: float
    interval_s: int
    window: Tuple[float, float]
    rows: List[ReportRow]
    notes: List[str] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        """Tell whether no judged row is rejected."""
        return all(row.verdict != 'reject' for row in self.rows)


def error_pct(manual: int, system: int) -> Optional[float]:
    """Return the system's error against the manual count in percent (None: against 0)."""
    if manual == 0:
        return 0.0 if system == 0 else None
    return (system - manual) / manual * 100.0


def build_report(manual: ManualCount, system: Sequence[Crossing],
                 limit_pct: float = DEFAULT_LIMIT_PCT, interval_s: int = DEFAULT_INTERVAL_S,
                 per_class: bool = False, unplaced: int = 0,
                 unplaced_before: Optional[float] = None) -> Report:
    """
    Compare the manual count with the system's crossings of its line over its window.

    ``unplaced`` crossings the system counted before ``unplaced_before`` have
    no moment in the recording (``recording.SystemCounts``); a note says so when
    that moment lies in the window.
    """
    if not (math.isfinite(limit_pct) and limit_pct >= 0) or interval_s <= 0:
        raise ValueError('the limit must be a percentage >= 0 and the interval positive')
    start, end = manual.window
    marks = [(mark.stamp_ns / 1e9, mark.direction, mark.class_name) for mark in manual.marks
             if mark.frame <= manual.reached]
    counted = [(c.stamp, c.direction, c.class_name) for c in system
               if c.line == manual.line and start <= c.stamp <= end]
    notes = []
    strays = sorted({c.direction for c in system if c.line == manual.line
                     and start <= c.stamp <= end} - set(manual.directions))
    if strays:
        notes.append(f'the system counted directions the manual count has not: {strays}')
    if manual.reached < len(manual.stamps) - 1:
        notes.append(f'the manual count reaches frame {manual.reached} of '
                     f'{len(manual.stamps) - 1} ({iso(end)}): the report covers that part')
    if unplaced and unplaced_before is not None and unplaced_before >= start:
        notes.append(f'{unplaced} crossings the system counted before its first recorded '
                     f'status ({iso(unplaced_before)}) have no moment in the recording (the '
                     'statuses that made them were not recorded) and are left out: the first '
                     'interval may show the system low')
    classes = list(manual.classes) + sorted(
        {name for _, _, name in marks + counted} - set(manual.classes))
    rows = []
    for first in range(math.floor(start / interval_s), math.floor(end / interval_s) + 1):
        low, high = first * interval_s, (first + 1) * interval_s
        covered = min(end, high) - max(start, low)
        for direction in manual.directions:
            hand = _tally(marks, low, high, direction)
            box = _tally(counted, low, high, direction)
            for name in [*classes, ALL]:
                judged = name == ALL or per_class
                pair = (sum(hand.values()), sum(box.values())) if name == ALL else (
                    hand.get(name, 0), box.get(name, 0))
                if name != ALL and pair == (0, 0) and name not in manual.classes:
                    continue
                error = error_pct(*pair)
                verdict = '' if not judged else 'accept' if error is not None and abs(
                    error) <= limit_pct + 1e-9 else 'reject'
                rows.append(ReportRow(low, high, covered, manual.line, direction, name,
                                      *pair, error, verdict))
    return Report(manual.line, limit_pct, interval_s, (start, end), rows, notes)


def _tally(crossings: Sequence[Tuple[float, str, str]], low: float, high: float,
           direction: str) -> Dict[str, int]:
    tally: Dict[str, int] = {}
    for stamp, way, name in crossings:
        if way == direction and low <= stamp < high:
            tally[name] = tally.get(name, 0) + 1
    return tally


def iso(stamp: float) -> str:
    """Return epoch seconds as ISO 8601 UTC to the tenth of a second."""
    moment = datetime.fromtimestamp(stamp, timezone.utc)
    return moment.isoformat(timespec='milliseconds').replace('+00:00', 'Z')


def report_table(report: Report) -> str:
    """Return the report as an aligned text table with the verdict underneath."""
    header = ('interval (UTC)', 'covered', 'direction', 'class', 'manual', 'system', 'diff',
              'error %', 'verdict')
    table = [header]
    for row in report.rows:
        low = datetime.fromtimestamp(row.start, timezone.utc)
        high = datetime.fromtimestamp(row.end, timezone.utc)
        table.append((f'{low:%Y-%m-%d %H:%M}-{high:%H:%M}', f'{row.covered_s:.0f} s',
                      row.direction, row.class_name, str(row.manual), str(row.system),
                      f'{row.system - row.manual:+d}',
                      'n/a' if row.error_pct is None else f'{row.error_pct:+.1f}',
                      row.verdict or '-'))
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    text = ''.join('  '.join(cell.ljust(w) if i < 4 else cell.rjust(w) for i, (cell, w) in
                             enumerate(zip(line, widths))).rstrip() + '\n' for line in table)
    rejected = sum(row.verdict == 'reject' for row in report.rows)
    judged = sum(bool(row.verdict) for row in report.rows)
    text += ''.join(f'note: {note}\n' for note in report.notes)
    text += (f'line {report.line}, window {iso(report.window[0])} to {iso(report.window[1])}, '
             f'limit {report.limit_pct:g} % per direction and interval: ')
    text += 'ACCEPT\n' if report.accepted else f'REJECT ({rejected} of {judged} rows)\n'
    return text


def report_csv(report: Report) -> str:
    """Return the rows as CSV (one header line, the columns of :data:`COLUMNS`)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, COLUMNS, lineterminator='\n')
    writer.writeheader()
    for row in report.rows:
        writer.writerow({k: '' if v is None else v for k, v in row.as_dict().items()})
    return out.getvalue()


def report_json(report: Report) -> str:
    """Return the report as JSON: settings, window, verdict, notes and rows."""
    data = {'line': report.line, 'limit_pct': report.limit_pct,
            'interval_s': report.interval_s, 'window_start': iso(report.window[0]),
            'window_end': iso(report.window[1]), 'accepted': report.accepted,
            'notes': report.notes, 'rows': [row.as_dict() for row in report.rows]}
    return json.dumps(data, indent=1) + '\n'
