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
The counts table an engineer downloads: one row per observed bucket, zeros included.

A bucket a device observed (a count period started in it: coverage) gets a
row for each line, direction and class the device counted anywhere in the
asked window, 0 where no vehicle of that key crossed; when the device
counted nothing at all in the window, the bucket still gets one row of 0
with the line, direction and class empty. A bucket no period covers is no
zero: it has no row (no data). Every row states its time twice: in UTC and
in a named time zone (the ``tz`` parameter, an IANA name; the server's own
zone by default), and how many seconds of the bucket were observed.

The columns are one list, :data:`COLUMNS`: a column is a header and a
function of a :class:`TableRow`, so a new column (a quality flag, speed
percentiles) is one more entry there and one more field on the row.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import datetime, timezone, tzinfo
import io
from typing import Any, Callable, Dict, Iterable, List, Optional, Set, Tuple
import zoneinfo

from fastapi import HTTPException

from vehicle_detection.cloud.server.count_quality import csv_cells, CSV_COLUMNS
from vehicle_detection.cloud.server.count_speeds import speed_cells, SPEED_COLUMNS
from vehicle_detection.cloud.server.models_counts import CountSeries

MAX_TZ_LENGTH = 64
Key = Tuple[str, Optional[str], Optional[str]]  # line, direction, class (None: summed over)


@dataclass(frozen=True)
class TableZone:
    """The zone of the local time column: an IANA zone, or the server's own (``zone`` None)."""

    zone: Optional[tzinfo]
    name: Optional[str]

    def local(self, moment: datetime) -> datetime:
        """Return ``moment`` (aware) in this zone."""
        return moment.astimezone(self.zone) if self.zone is not None else moment.astimezone()

    def label(self, moment: datetime) -> str:
        """Return the zone's name for the tz column (the server's: its abbreviation then)."""
        return self.name or self.local(moment).tzname() or 'local'


def table_zone(tz: Optional[str]) -> TableZone:
    """Return the zone ``tz`` names (None: the server's); 422 saying what to give otherwise."""
    if tz is None:
        return TableZone(None, None)
    problem = f'tz {tz[:MAX_TZ_LENGTH]!r} is not a time zone the server knows: give an ' \
              'IANA name such as UTC, Europe/London or America/New_York'
    if not tz or len(tz) > MAX_TZ_LENGTH:
        raise HTTPException(422, problem)
    try:
        return TableZone(zoneinfo.ZoneInfo(tz), tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise HTTPException(422, problem) from None


@dataclass(frozen=True)
class TableRow:
    """One row of the table: a bucket of one device, line, direction and class."""

    start: datetime  # UTC
    device_id: str
    line: str  # '' with direction and class: a bucket observed with no key in the window
    direction: Optional[str]
    class_name: Optional[str]
    count: int
    coverage_s: int
    # The bucket's quality cells (observed_s, quality, scheme: count_quality.CSV_COLUMNS)
    quality: Tuple[str, ...] = ('', '', '')
    # The row's speed cells (count_speeds.SPEED_COLUMNS); a 0 row measured none
    speeds: Tuple[Any, ...] = (0, '', '', '', '', '')


def dense_rows(series: CountSeries, limit: int, line: Optional[str] = None
               ) -> List[TableRow]:
    """
    Return the rows of ``series`` with a 0 row for each key a covered bucket lacks.

    Rows come in time order, then device, line, direction and class; rows of
    a bucket without coverage (none are stored) are kept as they are. A
    device without a key in the window gets one 0 row per observed bucket, on
    ``line`` when the query asked for one. A table of more than ``limit``
    rows is refused (422) before it is built.
    """
    counted: Dict[Tuple[datetime, str, Key], int] = {}
    speeds: Dict[Tuple[datetime, str, Key], Tuple[Any, ...]] = {}
    keys: Dict[str, Set[Key]] = {}
    for row in series.rows:
        key = (row.line, row.direction, row.class_name)
        counted[(row.start, row.device_id, key)] = row.count
        speeds[(row.start, row.device_id, key)] = tuple(speed_cells(row))
        keys.setdefault(row.device_id, set()).add(key)
    covered = {(c.start, c.device_id): c.seconds for c in series.coverage}
    quality = {(c.start, c.device_id): tuple(csv_cells(c)[1:]) for c in series.coverage}
    cells = set(covered) | {(start, device) for start, device, _ in counted}
    size = sum(max(1, len(keys.get(device, ()))) for _, device in cells)
    if size > limit:
        raise HTTPException(422, f'the table would hold {size} rows (observed buckets x '
                                 f'lines x directions x classes, zeros included), more than '
                                 f'{limit}: ask for a larger bucket, a shorter span, one '
                                 'device or line, or sum over direction or class (by=)')
    rows = []
    for start, device in cells:
        for key in keys.get(device) or [(line or '', None, None)]:
            line, direction, class_name = key
            rows.append(TableRow(start, device, line, direction, class_name,
                                 counted.get((start, device, key), 0),
                                 covered.get((start, device), 0),
                                 quality.get((start, device), ('', '', '')),
                                 speeds.get((start, device, key), TableRow.speeds)))
    return sorted(rows, key=_order)


def _order(row: TableRow) -> tuple:
    return (row.start, row.device_id, row.line, row.direction or '', row.class_name or '')


def _utc(row: TableRow, zone: TableZone) -> str:
    return row.start.astimezone(timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


def _local(row: TableRow, zone: TableZone) -> str:
    return zone.local(row.start).isoformat()


Column = Tuple[str, Callable[[TableRow, TableZone], object]]
# The CSV's columns, in order. Text a device chose (names) goes through _cell.
COLUMNS: List[Column] = [
    ('bucket_start_utc', _utc),
    ('bucket_start_local', _local),
    ('tz', lambda row, zone: zone.label(row.start)),
    ('device_id', lambda row, zone: row.device_id),
    ('line', lambda row, zone: _cell(row.line)),
    ('direction', lambda row, zone: _cell(row.direction or '')),
    ('class_name', lambda row, zone: _cell(row.class_name or '')),
    ('count', lambda row, zone: row.count),
    ('coverage_s', lambda row, zone: row.coverage_s),
    # observed_s, quality (flags, ok, or empty: not assessed), scheme (count_quality.py)
    *((name, lambda row, zone, i=i: row.quality[i]) for i, name in enumerate(CSV_COLUMNS[1:])),
    # speed_n, p15, p50, p85, p95, mean in km/h ('': none measured; count_speeds.py)
    *((name, lambda row, zone, i=i: row.speeds[i]) for i, name in enumerate(SPEED_COLUMNS)),
]


def to_csv(rows: Iterable[TableRow], zone: TableZone) -> str:
    """Format table rows as CSV; a cell a spreadsheet would run as a formula is quoted."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator='\n')
    writer.writerow([header for header, _ in COLUMNS])
    for row in rows:
        writer.writerow([value(row, zone) for _, value in COLUMNS])
    return out.getvalue()


def _cell(text: str) -> str:
    return "'" + text if text[:1] in ('=', '+', '-', '@', '\t', '\r') else text
