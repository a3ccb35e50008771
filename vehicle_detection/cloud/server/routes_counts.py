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
Traffic counts: posted per period by the devices, read back in buckets.

A record holds one period (1 min by default) of one camera: vehicles per
line, direction and class. Records are stored once (by ``record_id``) and
summed into buckets by the period's start: a period belongs to the bucket
its start falls in. Buckets are aligned to UTC (a day bucket is a UTC day).
"""

from __future__ import annotations

import csv
from datetime import datetime, timedelta, timezone
import io
import time
from typing import Any, Iterable, Optional, Tuple

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, Response
from sqlalchemy import func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

from vehicle_detection.cloud.server.db import CountRecord, Device, TrafficCount, utcnow, writing
from vehicle_detection.cloud.server.deps import authenticated, Caller, state
from vehicle_detection.cloud.server.models import (
    CountBucket, CountCoverage, CountsCreated, CountSeries, CountsIn)
from vehicle_detection.wire import COUNTS_PATH, IDEMPOTENCY_HEADER, is_valid_name

ingest_router = APIRouter(tags=['ingest'])
read_router = APIRouter(tags=['read'])

BUCKETS = {'1min': 60, '15min': 900, 'hour': 3600, 'day': 86400}
MAX_BUCKETS = 20_000  # per query: a year of hours, two weeks of minutes
DEFAULT_SPAN = timedelta(hours=24)
QUERY_RANGE = (0, int(datetime(9000, 1, 1, tzinfo=timezone.utc).timestamp()))  # epoch seconds


@ingest_router.post(COUNTS_PATH, response_model=CountsCreated, status_code=201,
                    responses={200: {'model': CountsCreated, 'description': 'already stored'}})
def post_counts(record: CountsIn, request: Request, response: Response,
                caller: Caller = Depends(authenticated),
                idempotency_key: Optional[str] = Header(None, alias=IDEMPOTENCY_HEADER)
                ) -> CountsCreated:
    """Store one period's counts once; the same record id again answers 200."""
    if idempotency_key is not None and idempotency_key != str(record.record_id):
        raise HTTPException(422, f'{IDEMPOTENCY_HEADER} must equal the record_id')
    engine = state(request).engine
    start = int(record.period_start.timestamp())
    dialect = postgresql if engine.dialect.name == 'postgresql' else sqlite
    statement = (dialect.insert(CountRecord).values(
        record_id=str(record.record_id), device_id=caller.device_pk,
        camera_id=record.camera_id, period_start=start, period_s=record.period_s,
        received_at=utcnow()).on_conflict_do_nothing(index_elements=['record_id'])
        .returning(CountRecord.id))
    with writing(engine) as session:
        inserted = session.execute(statement).first()
        if inserted is None:  # sent before (a retry): the rows are in already
            owner = session.execute(select(CountRecord.device_id).where(
                CountRecord.record_id == str(record.record_id))).scalar_one()
            if owner != caller.device_pk:
                raise HTTPException(409, 'this record id belongs to another device')
            response.status_code = 200
        elif record.counts:
            session.execute(insert(TrafficCount), [
                {'record_id': inserted.id, 'device_id': caller.device_pk, 'line': row.line,
                 'direction': row.direction, 'class_name': row.class_name,
                 'period_start': start, 'count': row.count} for row in record.counts])
    return CountsCreated(record_id=record.record_id, created=inserted is not None,
                         device_id=caller.name)


def _window(start: Optional[datetime], end: Optional[datetime], bucket: str
            ) -> Tuple[int, int, int]:
    """Return (bucket seconds, first, end) in epoch seconds, aligned to the bucket."""
    size = BUCKETS[bucket]
    if (start is not None and start.tzinfo is None) or (end is not None and end.tzinfo is None):
        raise HTTPException(422, 'from and to need a time zone (e.g. 2026-11-24T08:00:00Z)')
    try:
        end_s = int(end.timestamp()) if end is not None else int(time.time())
        start_s = int(start.timestamp()) if start is not None else \
            end_s - int(DEFAULT_SPAN.total_seconds())
    except (OverflowError, ValueError, OSError):
        start_s = end_s = -1  # refused below
    if not (QUERY_RANGE[0] <= start_s <= QUERY_RANGE[1] and
            QUERY_RANGE[0] <= end_s <= QUERY_RANGE[1]):
        raise HTTPException(422, 'from and to must lie between 1970 and 9000')
    first = start_s // size * size
    last = -(-end_s // size) * size
    if last <= first:
        raise HTTPException(422, 'to must come after from')
    if (last - first) // size > MAX_BUCKETS:
        raise HTTPException(422, f'{(last - first) // size} buckets asked; at most '
                                 f'{MAX_BUCKETS}: use a larger bucket or a shorter span')
    return size, first, last


def _names(**names: Optional[str]) -> None:
    for what, value in names.items():
        if value is not None and not is_valid_name(value):
            raise HTTPException(422, f'{what}: letters, digits, "_", "." or "-" only, '
                                     'at most 64')


def _series(request: Request, device: Optional[str], line: Optional[str],
            start: Optional[datetime], end: Optional[datetime], bucket: str) -> CountSeries:
    _names(device=device, line=line)
    size, first, last = _window(start, end, bucket)

    def bounded(query: Select, period_start: Any, device_pk: Any) -> Select:
        """Join the device; keep the window (and the device asked for)."""
        query = query.join(Device, device_pk == Device.id).where(
            period_start >= first, period_start < last)
        return query.where(Device.name == device) if device else query

    bucket_start = (TrafficCount.period_start - TrafficCount.period_start % size).label('start')
    keys = (Device.name, TrafficCount.line, TrafficCount.direction, TrafficCount.class_name)
    rows_query = bounded(select(bucket_start, *keys, func.sum(TrafficCount.count)),
                         TrafficCount.period_start, TrafficCount.device_id)
    if line:
        rows_query = rows_query.where(TrafficCount.line == line)
    period_bucket = (CountRecord.period_start - CountRecord.period_start % size).label('start')
    coverage_query = bounded(select(period_bucket, Device.name, func.sum(CountRecord.period_s)),
                             CountRecord.period_start, CountRecord.device_id)
    with Session(state(request).engine) as session:
        rows = session.execute(rows_query.group_by('start', *keys)
                               .order_by('start', *keys)).all()
        covered = session.execute(coverage_query.group_by('start', Device.name)
                                  .order_by('start', Device.name)).all()
    return CountSeries(
        bucket_s=size, start=_moment(first), end=_moment(last),
        rows=[CountBucket(start=_moment(r[0]), device_id=r[1], line=r[2], direction=r[3],
                          class_name=r[4], count=int(r[5])) for r in rows],
        coverage=[CountCoverage(start=_moment(c[0]), device_id=c[1], seconds=int(c[2]))
                  for c in covered])


def _moment(epoch: int) -> datetime:
    return datetime.fromtimestamp(int(epoch), timezone.utc)


@read_router.get(COUNTS_PATH, response_model=CountSeries)
def get_counts(request: Request, device: Optional[str] = None, line: Optional[str] = None,
               start: Optional[datetime] = Query(None, alias='from'),
               end: Optional[datetime] = Query(None, alias='to'),
               bucket: str = Query('15min', pattern='^(1min|15min|hour|day)$')
               ) -> CountSeries:
    """
    Return vehicles per bucket, line, direction and class (the last 24 hours by default).

    ``coverage`` says how many seconds of counting each device reported per
    bucket: a bucket with coverage and no rows had no traffic, one without
    coverage has no data.
    """
    return _series(request, device, line, start, end, bucket)


@read_router.get(COUNTS_PATH + '.csv', response_class=Response,
                 responses={200: {'content': {'text/csv': {}}}})
def get_counts_csv(request: Request, device: Optional[str] = None, line: Optional[str] = None,
                   start: Optional[datetime] = Query(None, alias='from'),
                   end: Optional[datetime] = Query(None, alias='to'),
                   bucket: str = Query('15min', pattern='^(1min|15min|hour|day)$')
                   ) -> Response:
    """Return the same counts as CSV, one row per bucket, device, line, direction and class."""
    series = _series(request, device, line, start, end, bucket)
    return Response(to_csv(series.rows), media_type='text/csv; charset=utf-8', headers={
        'Content-Disposition': f'attachment; filename="counts-{bucket}.csv"'})


def to_csv(rows: Iterable[CountBucket]) -> str:
    """Format count rows as CSV; a cell a spreadsheet would run as a formula is quoted."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator='\n')
    writer.writerow(['bucket_start', 'device_id', 'line', 'direction', 'class_name', 'count'])
    for row in rows:
        writer.writerow([row.start.strftime('%Y-%m-%dT%H:%M:%SZ'), row.device_id, row.line,
                         row.direction, _cell(row.class_name), row.count])
    return out.getvalue()


def _cell(text: str) -> str:
    return "'" + text if text[:1] in ('=', '+', '-', '@', '\t', '\r') else text
