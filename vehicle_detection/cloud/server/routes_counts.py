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
line, direction and class. A period is stored once per device, camera and
start (a retry by ``record_id``), and summed into buckets by its start: a
period belongs to the bucket its start falls in. Buckets are aligned to UTC
(a day bucket is a UTC day). Devices keep to the limits of lines, directions
and classes per day, and an answer to at most ``MAX_ANSWER_ROWS`` rows, so
that no read grows without bound.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
import time
from typing import Any, Dict, Optional, Tuple
import uuid

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, Response
from pydantic_core import to_json
from sqlalchemy import func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from vehicle_detection.cloud.server.count_quality import (
    coverage_entry, NOT_ASSESSED, stored_quality)
from vehicle_detection.cloud.server.count_queries import (
    BY, quality_query, rollup_queries, row_queries, speed_bounds)
from vehicle_detection.cloud.server.count_speeds import (
    NO_SPEEDS, speed_summaries, store_speeds)
from vehicle_detection.cloud.server.counts_table import dense_rows, table_zone, to_csv
from vehicle_detection.cloud.server.db import CountKey, CountRecord, TrafficCount
from vehicle_detection.cloud.server.deps import authenticated, Caller, state
from vehicle_detection.cloud.server.engine import utcnow, writing
from vehicle_detection.cloud.server.models_counts import (
    CountsCreated, CountSeries, CountsIn)
from vehicle_detection.cloud.server.read_params import (
    known_device, replay_choice, ReplayChoice, time_range, TimeRange)
from vehicle_detection.cloud.server.rollups import add_count_record, QUARTER_S
from vehicle_detection.wire import (
    count_limits_problem, COUNTS_PATH, IDEMPOTENCY_HEADER, is_valid_name)

ingest_router = APIRouter(tags=['ingest'])
read_router = APIRouter(tags=['read'])

BUCKETS = {'1min': 60, '15min': 900, 'hour': 3600, 'day': 86400}
MAX_BUCKETS = 20_000  # per query: a year of hours, two weeks of minutes
# Rows and coverage entries of one answer (at most about 6 MB of JSON, 2.5 s on a 2-core
# box; a 50-device fleet's day in 15-minute buckets is 24,000): a query that would give more
# is refused (422), the database stopping at one more, so no answer ever holds them.
MAX_ANSWER_ROWS = 50_000
DEFAULT_SPAN = timedelta(hours=24)
QUERY_RANGE = (0, int(datetime(9000, 1, 1, tzinfo=timezone.utc).timestamp()))  # epoch seconds
DAY_S = 86400
BY_PATTERN = '^(direction|class_name|direction,class_name|class_name,direction)$'
ISO_SECONDS = '%Y-%m-%dT%H:%M:%SZ'  # a bucket's start, as the models write whole seconds
COUNTS_LOCK = 0x636E7473  # PostgreSQL advisory lock class ('cnts'): one device's posts in turn


@ingest_router.post(COUNTS_PATH, response_model=CountsCreated, status_code=201, responses={
    200: {'model': CountsCreated, 'description': 'that period is stored already'},
    409: {'description': 'the period is stored with other counts, or the record id is '
                         "another device's"},
    422: {'description': 'a bad record, or one past the limits of lines, directions or '
                         'classes of the device that day'}})
def post_counts(record: CountsIn, request: Request, response: Response,
                caller: Caller = Depends(authenticated),
                idempotency_key: Optional[str] = Header(None, alias=IDEMPOTENCY_HEADER)
                ) -> CountsCreated:
    """
    Store one period's counts once per device, camera and period start.

    The same record id again answers 200; so does another record of a stored
    period with the same counts. One with other counts is refused (409 naming
    the stored record): the vehicles of a period are counted once.
    """
    if idempotency_key is not None and idempotency_key != str(record.record_id):
        raise HTTPException(422, f'{IDEMPOTENCY_HEADER} must equal the record_id')
    engine = state(request).engine
    start = int(record.period_start.timestamp())
    postgres = engine.dialect.name == 'postgresql'
    dialect = postgresql if postgres else sqlite
    # No conflict target: a retry (record_id) and another record of the period (the unique
    # device, camera and start) both leave the stored one alone, and are told apart below.
    statement = (dialect.insert(CountRecord).values(
        record_id=str(record.record_id), device_id=caller.device_pk,
        camera_id=record.camera_id, period_start=start, period_s=record.period_s,
        received_at=utcnow(), replay=record.replay, **stored_quality(record))
        .on_conflict_do_nothing()
        .returning(CountRecord.id))
    with writing(engine) as session:
        if postgres:  # the day's limits hold with concurrent posts (SQLite writes in turn)
            session.execute(select(func.pg_advisory_xact_lock(COUNTS_LOCK, caller.device_pk)))
        inserted = session.execute(statement).first()
        if inserted is None:
            stored = _stored_period(session, record, caller, start)
            response.status_code = 200
            return CountsCreated(record_id=record.record_id, created=False,
                                 device_id=caller.name, stored_record_id=stored)
        if record.counts:
            _keep_day_limits(session, dialect, record, caller, start)
            session.execute(insert(TrafficCount), [
                {'record_id': inserted.id, 'device_id': caller.device_pk, 'line': row.line,
                 'direction': row.direction, 'class_name': row.class_name,
                 'period_start': start, 'count': row.count, 'replay': record.replay}
                for row in record.counts])
            store_speeds(session, record, inserted.id, caller.device_pk, start)
        add_count_record(session, caller.device_pk, start, record.period_s,
                         [(row.line, row.direction, row.class_name, row.count)
                          for row in record.counts], record.replay)
    return CountsCreated(record_id=record.record_id, created=True, device_id=caller.name,
                         stored_record_id=record.record_id)


def _stored_period(session: Connection, record: CountsIn, caller: Caller, start: int
                   ) -> uuid.UUID:
    """Return the record stored instead of ``record``: itself (a retry) or its period's."""
    owner = session.execute(select(CountRecord.device_id).where(
        CountRecord.record_id == str(record.record_id))).scalar_one_or_none()
    if owner is not None:  # sent before (a retry): the rows are in already
        if owner != caller.device_pk:
            raise HTTPException(409, 'this record id belongs to another device')
        return record.record_id
    stored = session.execute(select(CountRecord.id, CountRecord.record_id, CountRecord.period_s)
                             .where(CountRecord.device_id == caller.device_pk,
                                    CountRecord.camera_id == record.camera_id,
                                    CountRecord.period_start == start,
                                    CountRecord.replay == record.replay)).one()
    rows = session.execute(select(TrafficCount.line, TrafficCount.direction,
                                  TrafficCount.class_name, TrafficCount.count).where(
        TrafficCount.record_id == stored.id)).all()
    if stored.period_s == record.period_s and {tuple(r) for r in rows if r[3]} == {
            (r.line, r.direction, r.class_name, r.count) for r in record.counts if r.count}:
        return uuid.UUID(stored.record_id)
    raise HTTPException(409, f'the counts of camera {record.camera_id} for the period from '
                             f'{_moment(start):%Y-%m-%dT%H:%M:%SZ} are stored already as '
                             f'record {stored.record_id}, with other counts: a period is '
                             'counted once')


def _keep_day_limits(session: Connection, dialect: Any, record: CountsIn, caller: Caller,
                     start: int) -> None:
    """Refuse (422) a record that takes its device past the limits of a day; note its keys."""
    day = start // DAY_S
    keys = set(record.count_keys())
    known = {(k.line, k.direction, k.class_name) for k in session.execute(select(
        CountKey.line, CountKey.direction, CountKey.class_name).where(
        CountKey.device_id == caller.device_pk, CountKey.day == day))}
    new = keys - known
    if not new:
        return
    problem = count_limits_problem(known | keys)
    if problem:
        raise HTTPException(422, f'record {record.record_id} refused: device {caller.name} '
                                 f'would have counted {problem} on '
                                 f'{_moment(day * DAY_S):%Y-%m-%d} (UTC); these limits hold '
                                 'per device and day')
    session.execute(dialect.insert(CountKey).on_conflict_do_nothing(), [
        {'device_id': caller.device_pk, 'day': day, 'line': line, 'direction': direction,
         'class_name': class_name} for line, direction, class_name in sorted(new)])


def _window(start: Optional[datetime], end: Optional[datetime], bucket: str
            ) -> Tuple[int, int, int]:
    """Return (bucket seconds, first, end) in epoch seconds, aligned to the bucket."""
    size = BUCKETS[bucket]
    if (start is not None and start.tzinfo is None) or (end is not None and end.tzinfo is None):
        raise HTTPException(422, 'since and until need a time zone (e.g. 2026-11-24T08:00:00Z)')
    try:
        end_s = int(end.timestamp()) if end is not None else int(time.time())
        start_s = int(start.timestamp()) if start is not None else \
            end_s - int(DEFAULT_SPAN.total_seconds())
    except (OverflowError, ValueError, OSError):
        start_s = end_s = -1  # refused below
    if not (QUERY_RANGE[0] <= start_s <= QUERY_RANGE[1] and
            QUERY_RANGE[0] <= end_s <= QUERY_RANGE[1]):
        raise HTTPException(422, 'since and until must lie between 1970 and 9000')
    first = start_s // size * size
    last = -(-end_s // size) * size
    if last <= first:
        raise HTTPException(422, 'since must come before until')
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
            start: Optional[datetime], end: Optional[datetime], bucket: str, by: str,
            replay: ReplayChoice = 'exclude') -> Dict[str, Any]:
    """
    Return the answer as plain JSON values: :class:`CountSeries`' fields, in its order.

    A day of a fleet in 15-minute buckets is 24,000 rows: a model per row,
    or validating them, cost more than the query; the values are written
    as the model writes them (times as ``...Z``), by pydantic-core. Replays
    are apart from live counts unless ``replay`` includes both.
    """
    _names(device=device, line=line)
    size, first, last = _window(start, end, bucket)
    split = [name for name in BY if name in by.split(',')]
    queries = rollup_queries if size >= QUARTER_S else row_queries
    rows_query, coverage_query = queries(size, first, last, device, line, split, replay)
    with state(request).engine.connect() as connection:  # Core rows: no ORM work per row
        rows = connection.execute(rows_query.limit(MAX_ANSWER_ROWS + 1)).all()
        _refuse_past_bound(len(rows))
        covered = connection.execute(coverage_query.limit(MAX_ANSWER_ROWS + 1 - len(rows))
                                     ).all()
        _refuse_past_bound(len(rows) + len(covered))
        # Speeds and quality are read from the stored periods for every bucket size (the
        # rollups hold neither): bounded by the window on their (device, start) indexes.
        speeds = speed_summaries(connection, size, split, speed_bounds(first, last, device),
                                 line, replay)
        quality = {(int(q[0]), q[1]): tuple(q[2:]) for q in connection.execute(
            quality_query(size, first, last, device, replay)).all()}
    stamps: Dict[int, str] = {}

    def at(epoch: int) -> str:
        if epoch not in stamps:
            stamps[epoch] = _moment(epoch).strftime(ISO_SECONDS)
        return stamps[epoch]

    direction, class_name = (3 + split.index(name) if name in split else None for name in BY)
    return {'bucket_s': size, 'start': at(first), 'end': at(last),
            'rows': [{'start': at(r[0]), 'device_id': r[1], 'line': r[2],
                      'direction': None if direction is None else r[direction],
                      'class_name': None if class_name is None else r[class_name],
                      'count': int(r[-1]), **speeds.get(tuple(r[:-1]), NO_SPEEDS)}
                     for r in rows],
            'coverage': [coverage_entry(at(c[0]), c[1], size, c[2],
                                        quality.get((int(c[0]), c[1]), NOT_ASSESSED))
                         for c in covered]}


def _refuse_past_bound(rows: int) -> None:
    if rows > MAX_ANSWER_ROWS:
        raise HTTPException(422, f'the answer would hold more than {MAX_ANSWER_ROWS} rows '
                                 '(buckets x devices x lines x directions x classes, and '
                                 'coverage): ask for a larger bucket, a shorter span, one '
                                 'device or line, or sum over direction or class '
                                 '(by=direction or by=class_name)')


def _moment(epoch: int) -> datetime:
    return datetime.fromtimestamp(int(epoch), timezone.utc)


@read_router.get(COUNTS_PATH, response_model=CountSeries,
                 responses={404: {'description': 'no device of that name'},
                            422: {'description': 'a bad query, or an answer over '
                                                 f'{MAX_ANSWER_ROWS} rows'}})
def get_counts(request: Request, device: Optional[str] = Depends(known_device),
               line: Optional[str] = None, window: TimeRange = Depends(time_range),
               bucket: str = Query('15min', pattern='^(1min|15min|hour|day)$'),
               by: str = Query('direction,class_name', pattern=BY_PATTERN),
               replay: ReplayChoice = Depends(replay_choice)) -> Response:
    """
    Return vehicles per bucket, device, line, direction and class (the last 24 hours by default).

    ``by`` keeps only what a row is split by besides device and line
    (``direction``, ``class_name`` or both); the other is summed over and
    null. ``coverage`` says how many seconds of counting each device reported
    per bucket, at most the bucket: a bucket with coverage and no rows had no
    traffic, one without coverage has no data. An answer holds at most
    ``MAX_ANSWER_ROWS`` rows and coverage entries; a query that would give
    more is refused (422) with what to ask instead. Counts of replays (recorded
    images) are left out unless ``replay`` asks for them.
    """
    return Response(to_json(_series(request, device, line, window.since, window.until, bucket,
                                    by, replay)), media_type='application/json')


@read_router.get(COUNTS_PATH + '.csv', response_class=Response,
                 responses={200: {'content': {'text/csv': {}}},
                            404: {'description': 'no device of that name'},
                            422: {'description': 'a bad query, an unknown tz, or a table over '
                                                 f'{MAX_ANSWER_ROWS} rows'}})
def get_counts_csv(request: Request, device: Optional[str] = Depends(known_device),
                   line: Optional[str] = None, window: TimeRange = Depends(time_range),
                   bucket: str = Query('15min', pattern='^(1min|15min|hour|day)$'),
                   by: str = Query('direction,class_name', pattern=BY_PATTERN),
                   replay: ReplayChoice = Depends(replay_choice),
                   tz: Optional[str] = Query(
                       None, description='Time zone of the bucket_start_local column: an '
                                         "IANA name (Europe/London); the server's own zone "
                                         'by default. Buckets stay aligned to UTC.')
                   ) -> Response:
    """
    Return the counts as CSV: one row per observed bucket, device, line, direction and class.

    A bucket the device observed has a row for every line, direction and class
    it counted in the window, 0 where none crossed; a bucket it did not
    observe has no row (no data, not zero). Each row gives its start in UTC
    and in ``tz``, and ``coverage_s``: the seconds of the bucket observed.
    """
    zone = table_zone(tz)
    series = _series(request, device, line, window.since, window.until, bucket, by, replay)
    # The table wants the rows as values (times, not text): validated once, here only.
    table = to_csv(dense_rows(CountSeries.model_validate(series), MAX_ANSWER_ROWS, line), zone)
    return Response(table, media_type='text/csv; charset=utf-8', headers={
        'Content-Disposition': f'attachment; filename="counts-{bucket}.csv"'})
