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
Engine set-up and stored times, for SQLite and PostgreSQL.

Times are stored as naive UTC (SQLite has no time zones); the API turns
them back into aware UTC. SQLite's writers take turns through one lock per
database (:func:`writing`).
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext
from datetime import datetime, timezone
import fcntl
import os
from pathlib import Path
import threading
from typing import Any, ContextManager, Iterator, Optional, overload
import weakref

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine, make_url


def utcnow() -> datetime:
    """Return the current time as naive UTC, the way it is stored."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def to_stored(moment: datetime) -> datetime:
    """Convert an aware (or naive UTC) datetime to stored naive UTC."""
    if moment.tzinfo is not None:
        try:
            moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
        except OverflowError:  # an offset pushes year 1 or 9999 out of range: clamp
            moment = datetime.min if moment.year == 1 else datetime.max
    return moment


@overload
def from_stored(moment: datetime) -> datetime:
    ...


@overload
def from_stored(moment: None) -> None:
    ...


def from_stored(moment: Optional[datetime]) -> Optional[datetime]:
    """Return a stored naive UTC datetime as aware UTC."""
    return None if moment is None else moment.replace(tzinfo=timezone.utc)


def is_sqlite(url: str) -> bool:
    """Tell whether ``url`` names a SQLite database."""
    return make_url(url).get_backend_name() == 'sqlite'


def make_engine(url: str) -> Engine:
    """
    Create the engine for ``url``.

    SQLite gets WAL and a busy timeout, and its writers take turns through a
    :class:`WriteLock` (see :func:`writing`).
    """
    if not is_sqlite(url):
        parsed = make_url(url)
        if parsed.drivername == 'postgresql':  # the driver installed with the server
            parsed = parsed.set(drivername='postgresql+psycopg2')
        return create_engine(parsed, pool_pre_ping=True, pool_size=10, max_overflow=20)
    database = make_url(url).database
    if database and database != ':memory:':
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={'check_same_thread': False, 'timeout': 30})
    _WRITE_LOCKS[engine] = WriteLock(f'{database}.lock' if database and database != ':memory:'
                                     else None)

    @event.listens_for(engine, 'connect')
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # transactions are begun below
        cursor = dbapi_connection.cursor()
        cursor.execute('PRAGMA journal_mode=WAL')
        cursor.execute('PRAGMA synchronous=NORMAL')
        cursor.execute('PRAGMA foreign_keys=ON')
        cursor.execute('PRAGMA busy_timeout=30000')
        cursor.close()

    @event.listens_for(engine, 'begin')
    def _begin(connection: Any) -> None:
        connection.exec_driver_sql('BEGIN')

    return engine


class WriteLock:
    """
    One SQLite writer at a time: a thread lock inside a process, ``flock`` across.

    SQLite's own busy handler waits by sleeping (up to 100 ms a try), which
    under concurrent writers turns into a long latency tail; a kernel lock
    wakes the next writer the moment the last one commits.
    """

    def __init__(self, path: Optional[str]) -> None:
        self._path = path
        self._thread_lock = threading.Lock()
        self._fd: Optional[int] = None
        self._pid = 0

    def __enter__(self) -> 'WriteLock':
        """Take the lock."""
        self._thread_lock.acquire()
        if self._path is not None:
            if self._pid != os.getpid():  # one descriptor per process, also after fork
                self._fd, self._pid = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600), \
                    os.getpid()
            assert self._fd is not None
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *_exc: object) -> None:
        """Release the lock."""
        if self._path is not None and self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._thread_lock.release()


_WRITE_LOCKS: 'weakref.WeakKeyDictionary[Engine, WriteLock]' = weakref.WeakKeyDictionary()


def write_lock(engine: Engine) -> ContextManager[object]:
    """Return the lock SQLite writers of ``engine``'s database take turns with (or none)."""
    lock = _WRITE_LOCKS.get(engine)
    return lock if lock is not None else nullcontext()


@contextmanager
def writing(engine: Engine) -> Iterator[Connection]:
    """
    Yield a connection in a write transaction, committed on exit.

    On SQLite the writers of every thread and worker process take turns; on
    PostgreSQL MVCC and the unique constraints do that job. Core statements
    only: the lock is held for as short a time as possible.
    """
    with write_lock(engine):
        with engine.begin() as connection:
            yield connection
