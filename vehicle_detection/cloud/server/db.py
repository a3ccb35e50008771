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
Database schema and engine set-up (SQLAlchemy), for SQLite and PostgreSQL.

Times are stored as naive UTC (SQLite has no time zones); the API turns
them back into aware UTC.
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

from sqlalchemy import (
    BigInteger, Boolean, create_engine, DateTime, event, false, Float, ForeignKey, Index,
    Integer, JSON, String)
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    """Declarative base of the server's tables."""


class Device(Base):
    """An edge box allowed to post, with the hash of its API key."""

    __tablename__ = 'devices'

    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # noqa: A003 (wire name)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    revoked_at: Mapped[Optional[datetime]] = mapped_column(DateTime, nullable=True)
    last_seen_at: Mapped[Optional[datetime]] = mapped_column(DateTime, nullable=True)
    health: Mapped[Optional[dict]] = mapped_column(JSON, nullable=True)


class Operator(Base):
    """A person who reads the dashboard: name, argon2 password hash, role."""

    __tablename__ = 'operators'

    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # noqa: A003 (wire name)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime)


class OperatorSession(Base):
    """A login: the hash of the session cookie, its operator and when it expires."""

    __tablename__ = 'operator_sessions'

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    operator_id: Mapped[int] = mapped_column(ForeignKey('operators.id', ondelete='CASCADE'))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    expires_at: Mapped[datetime] = mapped_column(DateTime, index=True)


class ReadToken(Base):
    """A token for scripts that read the API (``Authorization: Bearer``), stored hashed."""

    __tablename__ = 'read_tokens'

    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # noqa: A003 (wire name)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    revoked_at: Mapped[Optional[datetime]] = mapped_column(DateTime, nullable=True)


class LoginGuard(Base):
    """
    Failed logins of one name (``name:...``) or one address (``addr:...``) and its lock.

    Shared by every worker and every server instance (migration 0006); times
    are epoch seconds (see :mod:`login_guard`).
    """

    __tablename__ = 'login_guard'

    subject: Mapped[str] = mapped_column(String(80), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    locked_until: Mapped[float] = mapped_column(Float)
    last_failure_at: Mapped[float] = mapped_column(Float, index=True)


class RateLimit(Base):
    """
    One rate-limit budget: a device's requests (``dev:...``) or an address's failures.

    ``tat`` is the bucket's theoretical arrival time in epoch seconds by the
    database's clock (see :class:`access.SharedRateLimiter`); shared by every
    worker and every server instance (migration 0009: UNLOGGED on PostgreSQL).
    """

    __tablename__ = 'rate_limits'

    subject: Mapped[str] = mapped_column(String(80), primary_key=True)
    tat: Mapped[float] = mapped_column(Float)


class Alert(Base):
    """One vehicle reported by a device; ``event_id`` makes posting idempotent."""

    __tablename__ = 'alerts'
    # ix_alerts_device_image finds a device's stored snapshot by content (alerts of one
    # frame share it; migration 0002); ix_alerts_image_path the alerts that name a stored
    # picture (retention deletes it when none does; migration 0008).
    __table_args__ = (Index('ix_alerts_device_detected', 'device_id', 'detected_at'),
                      Index('ix_alerts_device_image', 'device_id', 'image_sha256'),
                      Index('ix_alerts_image_path', 'image_path'))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # noqa: A003 (wire name)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    device_id: Mapped[int] = mapped_column(ForeignKey('devices.id'))
    camera_id: Mapped[str] = mapped_column(String(64))
    detected_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    received_at: Mapped[datetime] = mapped_column(DateTime)
    track_id: Mapped[int] = mapped_column(BigInteger)
    class_name: Mapped[str] = mapped_column(String(64), index=True)
    confidence: Mapped[float] = mapped_column(Float)
    bbox: Mapped[Any] = mapped_column(JSON)
    image_width: Mapped[int] = mapped_column(Integer)
    image_height: Mapped[int] = mapped_column(Integer)
    image_path: Mapped[Optional[str]] = mapped_column(String(200), nullable=True)
    image_bytes: Mapped[Optional[int]] = mapped_column(Integer, nullable=True)
    image_sha256: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)
    kind: Mapped[str] = mapped_column(String(16), default='vehicle', server_default='vehicle',
                                      index=True)  # migration 0004, its index 0010
    # Where it happened (wire.ALERT_PLACES): a stopped vehicle's zone (migration 0004),
    # a wrong-way driver's line and direction (migration 0010).
    zone: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)
    line: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)
    direction: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)
    # Made from recorded images (a bag), not live traffic (migration 0007).
    replay: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class CountRecord(Base):
    """
    One period of traffic counts of one camera; ``record_id`` makes posting idempotent.

    One period per device, camera and start (migration 0005): a second record
    for it would count the same vehicles twice. A replay's periods are apart
    from live ones (migration 0007): a bag recorded on a box, played again,
    counts periods the box counted live then.
    """

    __tablename__ = 'count_records'
    __table_args__ = (Index('ix_count_records_device_start', 'device_id', 'period_start'),
                      Index('uq_count_records_period', 'device_id', 'camera_id',
                            'period_start', 'replay', unique=True))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # noqa: A003 (wire name)
    record_id: Mapped[str] = mapped_column(String(36), unique=True)
    device_id: Mapped[int] = mapped_column(ForeignKey('devices.id'))
    camera_id: Mapped[str] = mapped_column(String(64))
    period_start: Mapped[int] = mapped_column(BigInteger)  # epoch seconds: buckets by arithmetic
    period_s: Mapped[int] = mapped_column(Integer)
    received_at: Mapped[datetime] = mapped_column(DateTime)
    replay: Mapped[bool] = mapped_column(Boolean, default=False,
                                         server_default=false())  # migration 0007


class TrafficCount(Base):
    """Vehicles of one class that crossed one line one way in one period."""

    __tablename__ = 'traffic_counts'
    # ix_traffic_counts_record_id: a record's rows, for its cascading delete (migration 0008).
    __table_args__ = (Index('ix_traffic_counts_device_line_start', 'device_id', 'line',
                            'period_start'),
                      Index('ix_traffic_counts_record_id', 'record_id'))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # noqa: A003 (wire name)
    record_id: Mapped[int] = mapped_column(ForeignKey('count_records.id', ondelete='CASCADE'))
    device_id: Mapped[int] = mapped_column(ForeignKey('devices.id'))  # the record's, for queries
    line: Mapped[str] = mapped_column(String(64))
    direction: Mapped[str] = mapped_column(String(64))
    class_name: Mapped[str] = mapped_column(String(64))
    period_start: Mapped[int] = mapped_column(BigInteger)  # the record's
    count: Mapped[int] = mapped_column(Integer)
    replay: Mapped[bool] = mapped_column(Boolean, default=False,
                                         server_default=false())  # the record's (0007)


class CountKey(Base):
    """
    A (line, direction, class) a device counted on one UTC day (migration 0005).

    Keeps the limits of lines, directions and classes per device and day
    (``wire.MAX_COUNT_*``) cheap to check: a few rows per device and day.
    """

    __tablename__ = 'count_keys'

    device_id: Mapped[int] = mapped_column(ForeignKey('devices.id'), primary_key=True)
    day: Mapped[int] = mapped_column(Integer, primary_key=True)  # epoch seconds // 86400
    line: Mapped[str] = mapped_column(String(64), primary_key=True)
    direction: Mapped[str] = mapped_column(String(64), primary_key=True)
    class_name: Mapped[str] = mapped_column(String(64), primary_key=True)


class CountDuplicate(Base):
    """
    A count record set aside by migration 0005: another one of its period was stored first.

    Before 0005 such records were summed with the first; they are kept here,
    rows and all, for an operator to look at (``kept_record_id`` names the one
    counted).
    """

    __tablename__ = 'count_duplicates'

    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # noqa: A003 (wire name)
    record_id: Mapped[str] = mapped_column(String(36))
    device_id: Mapped[int] = mapped_column(ForeignKey('devices.id'))
    camera_id: Mapped[str] = mapped_column(String(64))
    period_start: Mapped[int] = mapped_column(BigInteger)
    period_s: Mapped[int] = mapped_column(Integer)
    received_at: Mapped[datetime] = mapped_column(DateTime)
    counts: Mapped[Any] = mapped_column(JSON)  # [[line, direction, class_name, count], ...]
    kept_record_id: Mapped[str] = mapped_column(String(36))
    set_aside_at: Mapped[datetime] = mapped_column(DateTime)


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
