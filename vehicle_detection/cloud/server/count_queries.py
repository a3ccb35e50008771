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
The queries behind ``GET /counts``: from the rollups, or for 1-minute buckets from the rows.

Both give the same answer: rows of (bucket start, device, line, [direction],
[class], vehicles) and coverage of (bucket start, device, seconds), ordered;
replays (recorded images) kept apart from live counts as ``replay`` asks.
Buckets of 15 minutes, an hour or a day are sums of the 15-minute rollup
(``count_quarters``) and its coverage per bucket size; a 1-minute bucket is
finer than the rollup and sums the stored rows of its window (which
``MAX_BUCKETS`` and ``MAX_ANSWER_ROWS`` bound).
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence, Tuple

from sqlalchemy import func, select
from sqlalchemy.sql import Select

from vehicle_detection.cloud.server.count_quality import coverage_aggregates
from vehicle_detection.cloud.server.db import CountRecord, Device, TrafficCount
from vehicle_detection.cloud.server.db_rollups import CountCoverage, CountQuarter
from vehicle_detection.cloud.server.replays import replay_condition, ReplayChoice
from vehicle_detection.cloud.server.rollups import bucket_of, covered_seconds

BY = ('direction', 'class_name')  # what a row may be split by, besides device and line
Queries = Tuple[Select, Select]  # rows, coverage


def rollup_queries(size: int, first: int, last: int, device: Optional[str],
                   line: Optional[str], split: Sequence[str],
                   replay: ReplayChoice = 'exclude') -> Queries:
    """Return the queries of buckets of ``size`` (a multiple of 15 min) in [first, last)."""
    start = CountQuarter.bucket_start
    bucket = bucket_of(start, size).label('start')
    keys = (Device.name, CountQuarter.line, *(getattr(CountQuarter, name) for name in split))
    rows = _bounded(select(bucket, *keys, func.sum(CountQuarter.vehicles)), start,
                    CountQuarter.device_id, first, last, device)
    if line:
        rows = rows.where(CountQuarter.line == line)
    # Live and replayed seconds of a bucket add up when both are asked for (clipped by the
    # caller, as the rows' coverage is).
    coverage = _bounded(select(CountCoverage.bucket_start.label('start'), Device.name,
                               func.sum(CountCoverage.seconds)), CountCoverage.bucket_start,
                        CountCoverage.device_id, first, last, device).where(
        CountCoverage.bucket_s == size)
    rows, coverage = _replays(rows, CountQuarter.replay, coverage, CountCoverage.replay, replay)
    return (rows.group_by('start', *keys).order_by('start', *keys),
            coverage.group_by('start', Device.name).order_by('start', Device.name))


def row_queries(size: int, first: int, last: int, device: Optional[str], line: Optional[str],
                split: Sequence[str], replay: ReplayChoice = 'exclude') -> Queries:
    """Return the queries of buckets of ``size`` in [first, last) from the stored rows."""
    bucket = bucket_of(TrafficCount.period_start, size).label('start')
    keys = (Device.name, TrafficCount.line, *(getattr(TrafficCount, name) for name in split))
    rows = _bounded(select(bucket, *keys, func.sum(TrafficCount.count)),
                    TrafficCount.period_start, TrafficCount.device_id, first, last, device)
    if line:
        rows = rows.where(TrafficCount.line == line)
    # A period counts in the bucket it starts in, and covers it at most to the bucket's end;
    # overlapping or repeated periods never cover more than the bucket (clipped by the caller).
    period_bucket = bucket_of(CountRecord.period_start, size).label('start')
    covered = func.sum(covered_seconds(CountRecord.period_start, CountRecord.period_s, size))
    coverage = _bounded(select(period_bucket, Device.name, covered), CountRecord.period_start,
                        CountRecord.device_id, first, last, device)
    rows, coverage = _replays(rows, TrafficCount.replay, coverage, CountRecord.replay, replay)
    return (rows.group_by('start', *keys).order_by('start', *keys),
            coverage.group_by('start', Device.name).order_by('start', Device.name))


def quality_query(size: int, first: int, last: int, device: Optional[str],
                  replay: ReplayChoice = 'exclude') -> Select:
    """
    Return the query of each bucket's quality (bucket start, device, then ``coverage_aggregates``).

    From the stored count records for every bucket size (the rollups keep no
    flags): one row per record in the window, found by its (device, start) index.
    """
    period_bucket = bucket_of(CountRecord.period_start, size).label('start')
    covered = covered_seconds(CountRecord.period_start, CountRecord.period_s, size)
    query = _bounded(select(period_bucket, Device.name, *coverage_aggregates(covered)),
                     CountRecord.period_start, CountRecord.device_id, first, last, device)
    condition = replay_condition(CountRecord.replay, replay)
    if condition is not None:
        query = query.where(condition)
    return query.group_by('start', Device.name)


def speed_bounds(first: int, last: int, device: Optional[str]
                 ) -> Callable[[Select, Any, Any], Select]:
    """Return what keeps a query of speed bins in the window (and on the device asked for)."""
    return lambda query, start, device_pk: _bounded(query, start, device_pk, first, last, device)


def _replays(rows: Select, rows_replay: Any, coverage: Select, coverage_replay: Any,
             replay: ReplayChoice) -> Queries:
    """Keep the live counts, the replays, or both, as ``replay`` asks."""
    rows_condition = replay_condition(rows_replay, replay)
    coverage_condition = replay_condition(coverage_replay, replay)
    if rows_condition is None or coverage_condition is None:
        return rows, coverage
    return rows.where(rows_condition), coverage.where(coverage_condition)


def _bounded(query: Select, start: Any, device_pk: Any, first: int, last: int,
             device: Optional[str]) -> Select:
    """Join the device; keep the window (and the device asked for)."""
    query = query.join(Device, device_pk == Device.id).where(start >= first, start < last)
    return query.where(Device.name == device) if device else query
