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
Versions of the data the dashboard reads, kept by the database itself.

Every transaction that changes a watched table (alerts and their snapshots,
devices and their heartbeats, revocation or configuration versions, count
records, and the rollups the reads sum: alert_hours, count_quarters,
count_coverage) adds one to that
table's counter in ``data_versions`` *in the same transaction*, just before
it commits. So a reader that reads the versions first and the data after
never sees a version newer than its data; every worker and every server
instance sharing the database sees the same versions; and no write path
has to remember to do it: the engine's events note the tables each
statement writes (whatever route, command or future code issues it) and
bump them at commit. The counters are spread over :data:`SLOTS` rows per
table so that concurrent PostgreSQL writers do not queue on one row lock.
"""

from __future__ import annotations

import random
import re
from typing import Any, Dict, FrozenSet, Iterable, Optional

from sqlalchemy import event, func, select
from sqlalchemy.engine import Connection, Engine

from vehicle_detection.cloud.server.db import DataVersion

SLOTS = 16
DATABASE_ROW = '_database'  # its version is the database's random identity (migration 0013)
# The tables whose changes the cached reads show (read_cache.CACHED_ROUTES depends on them).
# The rollups change with the rows they sum, in the same transaction; watched too, so that
# whatever writes them alone (a rebuild, a repair by hand through the server's engine) shows.
WATCHED: FrozenSet[str] = frozenset({'alerts', 'devices', 'count_records', 'traffic_counts',
                                     'alert_hours', 'count_quarters', 'count_coverage',
                                     'device_configs', 'count_speed_bins', 'count_vehicles'})
_TOUCHED = 'vd_touched_tables'  # in the connection's info: tables written since BEGIN
# The table a data-changing statement writes, for statements given as text.
_WRITE = re.compile(r'^\s*(?:INSERT(?:\s+OR\s+\w+)?\s+INTO|REPLACE\s+INTO|'
                    r'UPDATE(?:\s+OR\s+\w+)?|DELETE\s+FROM)\s+"?(\w+)"?', re.IGNORECASE)
_BUMP = ('INSERT INTO data_versions (kind, slot, version) VALUES ({values}) '
         'ON CONFLICT (kind, slot) DO UPDATE SET version = data_versions.version + 1')


def written_table(statement: str, context: Any) -> Optional[str]:
    """Return the table a statement writes, or None for a read."""
    compiled = getattr(context, 'compiled', None)
    target = getattr(getattr(compiled, 'statement', None), 'table', None)
    writes = any(getattr(context, flag, False) for flag in ('isinsert', 'isupdate', 'isdelete'))
    name = getattr(target, 'name', None)
    if writes and isinstance(name, str):
        return name
    found = _WRITE.match(statement)
    return found.group(1).lower() if found else None


def track_writes(engine: Engine) -> None:
    """Have every committed change to a watched table of ``engine`` bump its version."""
    if event.contains(engine, 'after_cursor_execute', _note_write):
        return
    event.listen(engine, 'after_cursor_execute', _note_write)
    event.listen(engine, 'commit', _bump_on_commit)
    event.listen(engine, 'rollback', _forget)


def _note_write(connection: Connection, cursor: Any, statement: str, parameters: Any,
                context: Any, executemany: bool) -> None:
    if statement.lstrip()[:6].upper() == 'SELECT':  # most statements: nothing to note
        return
    table = written_table(statement, context)
    if table not in WATCHED:
        return
    # No row changed (a retry's ON CONFLICT DO NOTHING): nothing to bump. SQLite counts the
    # rows of a RETURNING statement only as they are fetched (after this): a change then.
    unknown = connection.dialect.name == 'sqlite' and 'RETURNING' in statement.upper()
    if cursor.rowcount != 0 or unknown:  # -1: unknown too
        connection.info.setdefault(_TOUCHED, set()).add(table)


def _bump_on_commit(connection: Connection) -> None:
    """Add one to the version of each table written, in the transaction about to commit."""
    touched = connection.info.pop(_TOUCHED, None)
    if not touched:
        return
    bump(connection.connection.dbapi_connection, touched,
         connection.dialect.paramstyle)


def bump(dbapi_connection: Any, tables: Iterable[str], paramstyle: str = 'qmark') -> None:
    """Bump ``tables`` on a DB-API connection inside its open transaction."""
    kinds = sorted(tables)  # one lock order for every writer
    slot = random.randrange(SLOTS)
    mark = '%s' if paramstyle in ('format', 'pyformat') else '?'
    values = '), ('.join(f'{mark}, {mark}, 1' for _ in kinds)
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(_BUMP.format(values=values),
                       [part for kind in kinds for part in (kind, slot)])
    finally:
        cursor.close()


def _forget(connection: Connection) -> None:
    connection.info.pop(_TOUCHED, None)


def read_versions(connection: Connection) -> Dict[str, int]:
    """Return the version of every table that changed at least once (and ``_database``)."""
    rows = connection.execute(select(DataVersion.kind, func.sum(DataVersion.version))
                              .group_by(DataVersion.kind)).all()
    return {kind: int(total) for kind, total in rows}
