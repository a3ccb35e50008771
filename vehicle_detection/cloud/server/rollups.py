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
Rollups: alerts per hour, counts and coverage per bucket, kept as the rows arrive.

Every write that stores an alert or a count record adds it to the rollups in
its own transaction, with an upsert that adds to the stored sums (concurrent
writers add, none overwrites: PostgreSQL locks the row, SQLite writes in
turn), so the dashboard's reads sum a few rows per hour or bucket instead of
every alert and count row of the window. Replays (events made from recorded
images) are summed apart from live traffic, so that every read filters them
as it filters the rows.

The rollups hold exactly the sums of the rows stored, no more history: what
deletes alerts or count records (retention) first takes them out of the
rollups with :func:`forget_alerts` or :func:`forget_count_records`, in the
same transaction and with the same condition as its ``DELETE``.
"""

from __future__ import annotations

import calendar
from collections import Counter
from datetime import datetime, timedelta
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from sqlalchemy import (
    and_, BigInteger, bindparam, case, cast, delete, extract, func, select, Table, update)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement

from vehicle_detection.cloud.server.db import Alert, CountRecord, Device, TrafficCount
from vehicle_detection.cloud.server.db_rollups import AlertHour, CountCoverage, CountQuarter
from vehicle_detection.cloud.server.replays import replay_condition, ReplayChoice

HOUR_S = 3600
QUARTER_S = 900  # the counts' rollup bucket: 15 min, 1 h and 1 day are sums of it
COVERAGE_BUCKETS = (QUARTER_S, HOUR_S, 86400)  # coverage clips to its bucket: one per size
EPOCH = datetime(1970, 1, 1)  # stored times are naive UTC
CountRow = Tuple[str, str, str, int]  # line, direction, class, vehicles
Edge = Tuple[datetime, Optional[datetime], int]  # start, end (None: open), hour (epoch)
Executes = Union[Session, Connection]
_UPSERTS: Dict[Tuple[str, str], Any] = {}  # (dialect, table): its upsert statement

ALERT_HOURS: Table = AlertHour.__table__  # type: ignore[assignment]
COUNT_QUARTERS: Table = CountQuarter.__table__  # type: ignore[assignment]
COVERAGE: Table = CountCoverage.__table__  # type: ignore[assignment]
ALERT_KEYS = ('hour', 'device_id', 'class_name', 'kind', 'replay')
QUARTER_KEYS = ('bucket_start', 'device_id', 'line', 'direction', 'class_name', 'replay')
COVERAGE_KEYS = ('bucket_s', 'bucket_start', 'device_id', 'replay')


def epoch_seconds(moment: datetime) -> int:
    """Return a stored (naive UTC) time as whole epoch seconds, rounded down."""
    return calendar.timegm(moment.timetuple())


def hour_of(moment: Any, dialect: str) -> ColumnElement:
    """Return SQL for the epoch seconds of the UTC hour a stored time falls in."""
    if dialect == 'postgresql':
        return cast(extract('epoch', func.date_trunc('hour', moment)), BigInteger)
    # strftime('%s') rounds fractions of a second (10:59:59.9996 gives 11:00): cut first.
    return cast(func.strftime('%s', func.strftime('%Y-%m-%d %H:00:00', moment)), BigInteger)


def bucket_of(start: Any, size: int) -> Any:
    """Return the start of the ``size``-second bucket of an epoch time (SQL or int)."""
    return start - start % size


def covered_seconds(start: Any, period_s: Any, size: int) -> ColumnElement:
    """Return SQL for the seconds a period covers of its bucket: at most to the bucket's end."""
    to_bucket_end = size - start % size
    return case((period_s < to_bucket_end, period_s), else_=to_bucket_end)


def add_alert(connection: Connection, device_pk: int, detected_at: datetime, class_name: str,
              kind: str, replay: bool) -> None:
    """Count one newly stored alert (``detected_at`` stored naive UTC) in its hour."""
    _add(connection, ALERT_HOURS, ALERT_KEYS, ('alerts',), [{
        'hour': epoch_seconds(detected_at) // HOUR_S * HOUR_S, 'device_id': device_pk,
        'class_name': class_name, 'kind': kind, 'replay': replay, 'alerts': 1}])


def add_count_record(connection: Connection, device_pk: int, start: int, period_s: int,
                     rows: Iterable[CountRow], replay: bool) -> None:
    """Add a newly stored count record (its rows, its coverage) to the rollups."""
    bucket = bucket_of(start, QUARTER_S)
    _add(connection, COUNT_QUARTERS, QUARTER_KEYS, ('vehicles', 'rows'), [
        {'bucket_start': bucket, 'device_id': device_pk, 'line': line,
         'direction': direction, 'class_name': class_name, 'replay': replay,
         'vehicles': count, 'rows': 1}
        for line, direction, class_name, count in rows])
    _add(connection, COVERAGE, COVERAGE_KEYS, ('seconds',), [
        {'bucket_s': size, 'bucket_start': bucket_of(start, size), 'device_id': device_pk,
         'replay': replay, 'seconds': min(period_s, size - start % size)}
        for size in COVERAGE_BUCKETS])


def forget_alerts(connection: Connection, condition: ColumnElement) -> int:
    """
    Take the alerts that match ``condition`` out of the rollups; return how many.

    Call it right before ``DELETE FROM alerts WHERE condition``, in the same
    transaction (e.g. ``Alert.detected_at < cutoff`` or ``Alert.id.in_(ids)``).
    """
    hour = hour_of(Alert.detected_at, connection.dialect.name)
    groups = connection.execute(
        select(hour.label('hour'), Alert.device_id, Alert.class_name, Alert.kind,
               Alert.replay, func.count().label('alerts')).where(condition)
        .group_by(hour, Alert.device_id, Alert.class_name, Alert.kind, Alert.replay)).all()
    _take_away(connection, ALERT_HOURS, ALERT_KEYS, ('alerts',), 'alerts',
               [row._asdict() for row in groups])
    return sum(row.alerts for row in groups)


def forget_count_records(connection: Connection, condition: ColumnElement) -> int:
    """
    Take the count records that match ``condition`` out of the rollups; return how many.

    Call it right before ``DELETE FROM count_records WHERE condition`` (their
    ``traffic_counts`` rows go with them), in the same transaction.
    """
    records = select(CountRecord.id).where(condition)
    start = TrafficCount.period_start
    quarter = bucket_of(start, QUARTER_S).label('bucket_start')
    keys = (TrafficCount.device_id, TrafficCount.line, TrafficCount.direction,
            TrafficCount.class_name, TrafficCount.replay)
    groups = connection.execute(
        select(quarter, *keys, func.sum(TrafficCount.count).label('vehicles'),
               func.count().label('rows')).where(TrafficCount.record_id.in_(records))
        .group_by(quarter, *keys)).all()
    _take_away(connection, COUNT_QUARTERS, QUARTER_KEYS, ('vehicles', 'rows'), 'rows',
               [row._asdict() for row in groups])
    forgotten = 0
    for size in COVERAGE_BUCKETS:  # each size counts every record once
        bucket = bucket_of(CountRecord.period_start, size).label('bucket_start')
        covered = connection.execute(
            select(bucket, CountRecord.device_id, CountRecord.replay,
                   func.sum(covered_seconds(CountRecord.period_start, CountRecord.period_s,
                                            size)).label('seconds'),
                   func.count().label('records')).where(condition)
            .group_by(bucket, CountRecord.device_id, CountRecord.replay)).all()
        _take_away(connection, COVERAGE, COVERAGE_KEYS, ('seconds',), 'seconds',
                   [{'bucket_s': size, 'bucket_start': row.bucket_start,
                     'device_id': row.device_id, 'replay': row.replay, 'seconds': row.seconds}
                    for row in covered])
        forgotten = sum(row.records for row in covered)
    return forgotten


def count_alerts(executor: Executes, by: Sequence[str], since: Optional[datetime],
                 until: Optional[datetime], device: Optional[str] = None,
                 class_name: Optional[str] = None, kind: Optional[str] = None,
                 replay: ReplayChoice = 'exclude') -> 'Counter[tuple]':
    """
    Count the alerts detected in [``since``, ``until``) by ``by``; a key per group.

    ``by`` names ``hour`` (epoch seconds) or columns of :class:`AlertHour`;
    the times are stored naive UTC, None leaves that end open; ``device``
    (a name), ``class_name`` and ``kind`` filter, and ``replay`` as on every
    read route (live alerts only by default). Whole hours are summed from
    ``alert_hours``; the part of an hour at either end of the window from the
    alerts themselves, through the index on ``detected_at`` (an hour at most).
    """
    found: 'Counter[tuple]' = Counter()
    low, high, edges = _split_hours(since, until)
    if low is None or high is None or low < high:
        # Grouped by hour first, in the order of the primary key: a range of it is read,
        # never a whole index for its order (SQLite would, to group by device alone).
        columns = [AlertHour.hour, *(getattr(AlertHour, name) for name in by if name != 'hour')]
        query = select(*columns, func.sum(AlertHour.alerts))
        if low is not None:
            query = query.where(AlertHour.hour >= low)
        if high is not None:
            query = query.where(AlertHour.hour < high)
        query = _where(query, AlertHour, device, class_name, kind, replay)
        for hour, *values, alerts in executor.execute(query.group_by(*columns)):
            given = iter(values)
            found[tuple(hour if name == 'hour' else next(given) for name in by)] += int(alerts)
    for start, end, hour in edges:
        columns = [getattr(Alert, name) for name in by if name != 'hour']
        query = select(*columns, func.count()).select_from(Alert).where(
            Alert.detected_at >= start)
        if end is not None:
            query = query.where(Alert.detected_at < end)
        query = _where(query, Alert, device, class_name, kind, replay)
        for *values, alerts in executor.execute(query.group_by(*columns)):
            if alerts:
                given = iter(values)
                found[tuple(hour if name == 'hour' else next(given) for name in by)] += alerts
    return found


def _where(query: Any, table: Any, device: Optional[str], class_name: Optional[str],
           kind: Optional[str], replay: ReplayChoice) -> Any:
    """Keep the device, class, kind and replay mark asked for (on alerts or their rollup)."""
    if device:
        query = query.join(Device, table.device_id == Device.id).where(Device.name == device)
    if class_name:
        query = query.where(table.class_name == class_name)
    if kind:
        query = query.where(table.kind == kind)
    condition = replay_condition(table.replay, replay)
    return query if condition is None else query.where(condition)


def _split_hours(since: Optional[datetime], until: Optional[datetime]
                 ) -> Tuple[Optional[int], Optional[int], List[Edge]]:
    """
    Split [since, until) into whole hours [low, high) and the part hours at its ends.

    Returns ``low`` and ``high`` in epoch seconds (None: open), and the
    edges as (start, end or None, epoch of their hour). Where both ends fall
    in one hour, that is one edge and ``low >= high``.
    """
    edges: List[Edge] = []
    low: Optional[int] = None
    if since is not None:
        floor = since.replace(minute=0, second=0, microsecond=0)
        low = epoch_seconds(floor)
        if floor != since:
            low += HOUR_S
            end = _stored(low)
            if until is not None and (end is None or until < end):
                end = until
            edges.append((since, end, epoch_seconds(floor)))
    high: Optional[int] = None
    if until is not None:
        floor = until.replace(minute=0, second=0, microsecond=0)
        high = epoch_seconds(floor)
        if floor != until and (low is None or high >= low):
            edges.append((floor, until, high))
    return low, high, edges


def _stored(epoch: int) -> Optional[datetime]:
    """Return epoch seconds as a stored time; None past year 9999 (nothing is stored there)."""
    try:
        return EPOCH + timedelta(seconds=epoch)
    except OverflowError:
        return None


def _add(connection: Connection, table: Table, keys: Sequence[str], sums: Sequence[str],
         values: List[Dict[str, Any]]) -> None:
    """
    Upsert ``values`` into ``table``, adding ``sums`` to a row already there.

    One statement per row: PostgreSQL adds under the row's lock, so concurrent
    writers never lose an increment. Rows go in key order, so that two
    writers touching the same rows wait for each other instead of deadlocking.
    """
    if not values:
        return
    dialect = connection.dialect.name
    statement = _UPSERTS.get((dialect, table.name))
    if statement is None:  # built once: making ``excluded`` costs more than the write
        insert = (postgresql if dialect == 'postgresql' else sqlite).insert(table)
        statement = _UPSERTS[dialect, table.name] = insert.on_conflict_do_update(
            index_elements=[table.c[key] for key in keys],
            set_={name: table.c[name] + insert.excluded[name] for name in sums})
    if len(values) == 1:
        connection.execute(statement, values[0])
    else:
        connection.execute(statement, sorted(values, key=lambda row: [row[k] for k in keys]))


def _take_away(connection: Connection, table: Table, keys: Sequence[str], sums: Sequence[str],
               last: str, groups: List[Dict[str, Any]]) -> None:
    """Subtract ``groups`` from the rows of ``table``; drop the rows whose ``last`` is 0."""
    if not groups:
        return
    groups = sorted(({f'k_{k}': g[k] for k in keys} | {f's_{s}': g[s] for s in sums}
                     for g in groups), key=lambda g: [g[f'k_{k}'] for k in keys])
    match = and_(*(table.c[key] == bindparam(f'k_{key}') for key in keys))
    connection.execute(update(table).where(match).values(
        {name: table.c[name] - bindparam(f's_{name}') for name in sums}), groups)
    connection.execute(delete(table).where(match, table.c[last] <= 0),
                       [{f'k_{k}': g[f'k_{k}'] for k in keys} for g in groups])
