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
What the rollup tests check against: the answers recomputed from the stored rows, and plans.

:class:`Stored` reads every alert, count record and count row of a database
and recomputes in Python what ``/stats``, ``/devices`` and ``/counts``
answered before the rollups (a raw computation independent of the server's
SQL). :func:`full_scans` reads the plan of a statement (SQLite ``EXPLAIN
QUERY PLAN``, PostgreSQL ``EXPLAIN``) and names every read of a table that
grows with the data which is not bounded by its index.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
import json
import re
from typing import Any, Dict, Iterable, List, Literal, Optional, Sequence, Tuple

from sqlalchemy import select
from sqlalchemy.engine import Engine

from vehicle_detection.cloud.server.db import Alert, CountRecord, Device, TrafficCount

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
KINDS = ('vehicle', 'stopped_vehicle', 'wrong_way')
Replay = Literal['exclude', 'include', 'only']
# Tables that grow with the rows a fleet sends, and the columns that bound a read of them.
BOUNDING = {'alerts': ('detected_at', 'id', 'rowid', 'event_id'),
            'traffic_counts': ('period_start', 'record_id'),
            'count_records': ('period_start', 'id', 'rowid', 'record_id'),
            'alert_hours': ('hour',), 'count_quarters': ('bucket_start',),
            'count_coverage': ('bucket_start',)}


def moment(text: str) -> datetime:
    """Parse an API time (ISO 8601, ``Z`` or an offset)."""
    return datetime.fromisoformat(text.replace('Z', '+00:00'))


@dataclass
class Stored:
    """Every row the rollups sum, as the database holds it (times naive UTC)."""

    alerts: List[Tuple[str, datetime, str, str, bool]]  # device, detected_at, class, kind, replay
    records: List[Tuple[str, int, int, bool]]  # device, period_start, period_s, replay
    rows: List[Tuple[str, int, str, str, str, int, bool]]  # device, start, line, dir, class, n,
    # replay

    @classmethod
    def read(cls, engine: Engine) -> 'Stored':
        """Read the rows of the database behind ``engine``."""
        with engine.connect() as db:
            alerts = db.execute(select(Device.name, Alert.detected_at, Alert.class_name,
                                       Alert.kind, Alert.replay).join(
                Device, Alert.device_id == Device.id))
            records = db.execute(select(Device.name, CountRecord.period_start,
                                        CountRecord.period_s, CountRecord.replay).join(
                Device, CountRecord.device_id == Device.id))
            rows = db.execute(select(Device.name, TrafficCount.period_start, TrafficCount.line,
                                     TrafficCount.direction, TrafficCount.class_name,
                                     TrafficCount.count, TrafficCount.replay).join(
                Device, TrafficCount.device_id == Device.id))
            return cls([tuple(r) for r in alerts], [tuple(r) for r in records],  # type: ignore
                       [tuple(r) for r in rows])  # type: ignore

    def stats(self, since: datetime, until: Optional[datetime] = None,
              device: Optional[str] = None, class_name: Optional[str] = None,
              kind: Optional[str] = None, replay: Replay = 'exclude') -> dict:
        """Return what ``/stats`` answers (times aware UTC), as JSON gives it back."""
        per_hour: Counter = Counter()
        per_class: Counter = Counter()
        per_kind: Counter = Counter(dict.fromkeys(KINDS, 0))
        for name, detected, alert_class, alert_kind, replayed in self.alerts:
            detected = detected.replace(tzinfo=timezone.utc)
            if detected < since or (until is not None and detected >= until) or \
                    (device and name != device) or (class_name and alert_class != class_name) \
                    or (kind and alert_kind != kind) or not wanted(replayed, replay):
                continue
            per_hour[detected.replace(minute=0, second=0, microsecond=0)] += 1
            per_class[alert_class] += 1
            per_kind[alert_kind] += 1
        return {'per_hour': [[hour, per_hour[hour]] for hour in sorted(per_hour)],
                'per_class': dict(per_class), 'total': sum(per_class.values()),
                'per_kind': dict(per_kind)}

    def alerts_24h(self, now: datetime) -> Dict[str, int]:
        """Return each device's live alerts detected from ``now`` - 24 h on (``/devices``)."""
        since = now - timedelta(hours=24)
        return dict(Counter(name for name, detected, _, _, replayed in self.alerts
                            if detected.replace(tzinfo=timezone.utc) >= since and not replayed))

    def counts(self, size: int, first: int, last: int, device: Optional[str] = None,
               line: Optional[str] = None, split: Sequence[str] = ('direction', 'class_name'),
               replay: Replay = 'exclude') -> Tuple[List[tuple], List[tuple]]:
        """Return the rows and coverage ``/counts`` answers for buckets in [first, last)."""
        totals: Counter = Counter()
        for name, start, row_line, direction, class_name, count, replayed in self.rows:
            if first <= start < last and (not device or name == device) and \
                    (not line or row_line == line) and wanted(replayed, replay):
                parts = {'direction': direction, 'class_name': class_name}
                totals[(start - start % size, name, row_line,
                        *(parts[s] if s in split else None for s in ('direction',
                                                                     'class_name')))] += count
        covered: Counter = Counter()
        for name, start, period_s, replayed in self.records:
            if first <= start < last and (not device or name == device) and \
                    wanted(replayed, replay):
                covered[(start - start % size, name)] += min(period_s, size - start % size)
        return ([(*key, totals[key]) for key in sorted(totals)],
                [(*key, min(size, covered[key])) for key in sorted(covered)])


def wanted(replayed: bool, replay: Replay) -> bool:
    """Tell whether a row with this replay mark is in an answer for ``replay``."""
    return replay == 'include' or replayed == (replay == 'only')


def answered_stats(answer: dict) -> dict:
    """Return a ``/stats`` answer with its hours parsed."""
    return {**answer, 'per_hour': [[moment(hour), n] for hour, n in answer['per_hour']]}


def answered_counts(answer: dict) -> Tuple[List[tuple], List[tuple]]:
    """Return a ``/counts`` answer as (rows, coverage) tuples, epoch seconds first."""
    def epoch(text: str) -> int:
        return int((moment(text) - EPOCH).total_seconds())

    return ([(epoch(r['start']), r['device_id'], r['line'], r['direction'], r['class_name'],
              r['count']) for r in answer['rows']],
            [(epoch(c['start']), c['device_id'], c['seconds']) for c in answer['coverage']])


def full_scans(dialect: str, plan: Any, statement: str,
               indexes: Optional[Dict[str, Tuple[str, List[str]]]] = None) -> List[str]:
    """
    Return the reads in ``plan`` of a growing table that their index does not bound.

    A read is bounded when it searches an index on a bounding column (a time,
    or a key) with every column before it held equal; or when it walks an
    index in the order the statement asks under a LIMIT with nothing sorted:
    it stops after LIMIT rows that match (the alert list, newest first).
    ``indexes`` (PostgreSQL): each index's table and columns, see
    :func:`postgres_indexes`.
    """
    if dialect == 'postgresql':
        root = plan[0][0] if isinstance(plan[0][0], list) else json.loads(plan[0][0])
        return _postgres_full_scans(root[0]['Plan'], indexes or {})
    text = ' '.join(statement.split()).upper()
    limited = ' ORDER BY ' in text and ' LIMIT ' in text and not any(
        'TEMP B-TREE FOR ORDER BY' in row[3] for row in plan)
    found = []
    for row in plan:
        match = re.match(r'(SCAN|SEARCH) (\w+)(?: AS \w+)?(.*)', row[3])
        if not match or match.group(2) not in BOUNDING:
            continue
        how, table, rest = match.groups()
        # SQLite names only the conditions its index can use, in the index's order.
        condition = rest[rest.find('(') + 1:] if '(' in rest else ''
        if how == 'SEARCH' and any(re.search(rf'\b{column}\b', condition)
                                   for column in BOUNDING[table]):
            continue
        if not limited:
            found.append(row[3])
    return found


def postgres_indexes(connection: Any) -> Dict[str, Tuple[str, List[str]]]:
    """Return each index of the database: its table and its columns in order."""
    cursor = connection.cursor()
    try:
        cursor.execute('SELECT indexname, tablename, indexdef FROM pg_indexes '
                       "WHERE schemaname = 'public'")
        return {name: (table, [c.strip() for c in re.search(r'\((.*)\)', definition)
                               .group(1).split(',')])
                for name, table, definition in cursor.fetchall()}
    finally:
        cursor.close()


def _postgres_full_scans(node: dict, indexes: Dict[str, Tuple[str, List[str]]],
                         limited: bool = False) -> List[str]:
    found = []
    kind = node['Node Type']
    table, columns = indexes.get(node.get('Index Name', ''), (node.get('Relation Name'), []))
    if kind == 'Seq Scan' and table in BOUNDING:
        found.append(f'Seq Scan on {table}')
    elif 'Index Name' in node and table in BOUNDING:
        condition = node.get('Index Cond', '')
        if not (_bounded_prefix(columns, condition, BOUNDING[table]) or
                (limited and kind != 'Bitmap Index Scan')):
            found.append(f"{kind} on {table} using {node['Index Name']} {condition}".strip())
    # Under a Limit, an ordered walk stops early; a Sort or an aggregate reads everything.
    below = limited or kind == 'Limit'
    if kind in ('Sort', 'Incremental Sort', 'Aggregate', 'Hash', 'Materialize', 'BitmapAnd',
                'BitmapOr', 'Bitmap Heap Scan'):
        below = False
    children = [_postgres_full_scans(child, indexes, below) for child in node.get('Plans', ())]
    if kind == 'BitmapAnd' and not all(children):  # one bounded index bounds the others
        return found
    return found + [scan for scans in children for scan in scans]


def _bounded_prefix(columns: List[str], condition: str, bounding: Sequence[str]) -> bool:
    """Tell whether ``condition`` bounds a bounding column, every column before it equal."""
    held = {}
    for column, operator in re.findall(r'\(?(\w+)\)?(?:::[\w ]+)?\s*(=|>=|<=|>|<)\s',
                                       condition):
        held[column] = held.get(column, operator) if operator == '=' else operator
    for column in columns:
        if column in held and column in bounding:
            return True
        if held.get(column) != '=':
            return False
    return False


def explain(connection: Any, dialect: str, statement: str, parameters: Any) -> Any:
    """Return the plan of ``statement`` on a DBAPI connection of ``dialect``."""
    cursor = connection.cursor()
    try:
        if dialect == 'postgresql':
            cursor.execute('EXPLAIN (FORMAT JSON) ' + statement, parameters)
        else:
            cursor.execute('EXPLAIN QUERY PLAN ' + statement, parameters)
        return cursor.fetchall()
    finally:
        cursor.close()


def selects(statements: Iterable[Tuple[str, Any]]) -> List[Tuple[str, Any]]:
    """Keep the reads among captured (statement, parameters), each once."""
    seen, kept = set(), []
    for statement, parameters in statements:
        key = (statement, repr(parameters))
        if statement.lstrip().upper().startswith('SELECT') and key not in seen:
            seen.add(key)
            kept.append((statement, parameters))
    return kept
