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
Rate limits shared by every worker of every server instance: budgets in the database.

Each budget is one row of ``rate_limits`` (migration 0009) holding one
number, the bucket's *theoretical arrival time* (GCRA, the token bucket's
equivalent): a request is allowed while that time is at most ``burst - 1``
intervals ahead of now, and then pushes it one interval (``1 / rate``)
further. So a request costs one single-statement upsert, which changes
nothing when it is refused. The clock is the database's: instances whose
clocks disagree still agree on every budget.

On PostgreSQL the table is UNLOGGED (no WAL, no fsync per request; after a
crash it starts empty, every bucket full), and the statements are prepared
on a few autocommit connections of their own (no BEGIN/COMMIT, no pool
ping, no parsing per request). On SQLite, one host by nature, the upsert is
a small write in the database's write turn (WAL, no fsync) on a connection
of its own (no SQLAlchemy on this path: it is taken on every request).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
import math
import os
import random
import sqlite3
from typing import Any, Optional

import psycopg2
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine

from vehicle_detection.cloud.server.access import RateLimiter
from vehicle_detection.cloud.server.engine import write_lock

SUBJECT_CHARS = 80  # rate_limits.subject
PRUNE_CHANCE = 0.001  # an acquisition also deletes long-full buckets now and then
PRUNE_AFTER_S = 60.0
# Each worker's own connections for the rate limits (PostgreSQL): usually one or two.
POOL_SIZE, POOL_OVERFLOW = 2, 4


class Buckets(ABC):
    """The ``rate_limits`` rows of one database."""

    @abstractmethod
    def take(self, subject: str, now: Optional[float], interval: float, slack: float,
             prune: bool) -> Optional[float]:
        """Take one request; None when allowed, else how far (s) the bucket runs ahead."""


def buckets_for(engine: Engine) -> Buckets:
    """Return the buckets of the database of ``engine``."""
    if engine.dialect.name == 'postgresql':
        return PostgresBuckets(engine)
    return SQLiteBuckets(engine)


class SQLiteBuckets(Buckets):
    """The budgets in a SQLite database: one connection of its own per process, in turns."""

    CLOCK = "((julianday('now') - 2440587.5) * 86400.0)"  # epoch seconds, milliseconds
    NOW = f'COALESCE(:now, {CLOCK})'
    TAKE = (f'INSERT INTO rate_limits (subject, tat) VALUES (:subject, {NOW} + :interval) '
            'ON CONFLICT (subject) DO UPDATE SET '
            'tat = MAX(rate_limits.tat + :interval, excluded.tat) '
            'WHERE rate_limits.tat <= excluded.tat - :interval + :slack RETURNING tat')
    AHEAD = f'SELECT tat - {NOW} FROM rate_limits WHERE subject = :subject'
    PRUNE = f'DELETE FROM rate_limits WHERE tat < {NOW} - :after'

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.path = engine.url.database or ''
        self._connection: Optional[sqlite3.Connection] = None
        self._pid = 0

    def _connected(self) -> sqlite3.Connection:
        if self._connection is None or self._pid != os.getpid():  # also after a fork
            # Autocommit: each statement is its own transaction (WAL, synchronous=NORMAL as
            # the database was set up: no fsync).
            self._connection = sqlite3.connect(self.path, timeout=30, isolation_level=None,
                                               check_same_thread=False)
            self._connection.execute('PRAGMA synchronous=NORMAL')
            self._pid = os.getpid()
        return self._connection

    def take(self, subject: str, now: Optional[float], interval: float, slack: float,
             prune: bool) -> Optional[float]:
        """Take one request from ``subject``'s bucket (see :class:`Buckets`)."""
        ahead = None
        with write_lock(self.engine):  # every writer of the database, one at a time
            connection = self._connected()
            taken = connection.execute(self.TAKE, {
                'subject': subject, 'now': now, 'interval': interval, 'slack': slack}
            ).fetchone()
            if taken is None:
                row = connection.execute(self.AHEAD, {'subject': subject, 'now': now}
                                         ).fetchone()
                ahead = row[0] if row else 0.0
            if prune:
                connection.execute(self.PRUNE, {'now': now, 'after': PRUNE_AFTER_S})
        return ahead


class PostgresBuckets(Buckets):
    """The budgets in PostgreSQL, through prepared statements on autocommit connections."""

    NOW = 'COALESCE($2, CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS DOUBLE PRECISION))'
    PREPARED = (
        'PREPARE vd_rate_take(text, float8, float8, float8) AS '
        f'INSERT INTO rate_limits (subject, tat) VALUES ($1, {NOW} + $3) '
        'ON CONFLICT (subject) DO UPDATE SET tat = GREATEST(rate_limits.tat + $3, '
        'excluded.tat) WHERE rate_limits.tat <= excluded.tat - $3 + $4 RETURNING tat',
        f'PREPARE vd_rate_ahead(text, float8) AS SELECT tat - {NOW} FROM rate_limits '
        'WHERE subject = $1',
        f'PREPARE vd_rate_prune(float8, float8) AS DELETE FROM rate_limits '
        f'WHERE tat < {NOW.replace("$2", "$1")} - $2')

    def __init__(self, engine: Engine) -> None:
        self.engine = create_engine(
            engine.url, pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW, pool_pre_ping=False,
            pool_reset_on_return=None, isolation_level='AUTOCOMMIT')
        event.listen(self.engine, 'connect', self._prepare)

    @classmethod
    def _prepare(cls, dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        for statement in cls.PREPARED:
            cursor.execute(statement)
        cursor.close()
        dbapi_connection.commit()  # before SQLAlchemy turns autocommit on

    def take(self, subject: str, now: Optional[float], interval: float, slack: float,
             prune: bool) -> Optional[float]:
        """Take one request from ``subject``'s bucket (see :class:`Buckets`)."""
        for attempt in range(2):  # a connection the database closed is replaced once
            connection = self.engine.raw_connection()
            try:
                cursor = connection.cursor()
                cursor.execute('EXECUTE vd_rate_take(%s, %s, %s, %s)',
                               (subject, now, interval, slack))
                ahead = None
                if cursor.fetchone() is None:
                    cursor.execute('EXECUTE vd_rate_ahead(%s, %s)', (subject, now))
                    row = cursor.fetchone()
                    ahead = row[0] if row else 0.0
                if prune:
                    cursor.execute('EXECUTE vd_rate_prune(%s, %s)', (now, PRUNE_AFTER_S))
                cursor.close()
                return ahead
            except (psycopg2.OperationalError, psycopg2.InterfaceError):
                connection.invalidate()
                if attempt:
                    raise
            finally:
                connection.close()
        raise AssertionError('unreachable')


class SharedRateLimiter(RateLimiter):
    """
    A budget per subject (``prefix`` + a device name or an address) kept in ``buckets``.

    The same answers as :class:`RateLimiter` (None, or the whole seconds to
    wait), for every worker and instance that shares the database.
    """

    def __init__(self, buckets: Buckets, prefix: str, rate: float, burst: float) -> None:
        super().__init__(rate, burst)
        self.buckets, self.prefix = buckets, prefix
        self._interval = 1.0 / rate if rate > 0 else 0.0
        self._slack = (self.burst - 1.0) * self._interval  # how far ahead a bucket may run

    def acquire(self, device: str, now: Optional[float] = None) -> Optional[int]:
        """Take one request from the shared budget of ``device`` (``now``: for tests)."""
        if self.rate <= 0:
            return None
        subject = self.prefix + device[:SUBJECT_CHARS - len(self.prefix)]
        ahead = self.buckets.take(subject, now, self._interval, self._slack,
                                  random.random() < PRUNE_CHANCE)
        return None if ahead is None else max(1, math.ceil(ahead - self._slack))
