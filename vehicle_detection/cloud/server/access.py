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

"""Device API keys (stored only as hashes) and the rate limits (per process or shared)."""

from __future__ import annotations

from functools import partial
import hashlib
import math
import random
import secrets
import threading
import time
from typing import Dict, Optional, Tuple

from sqlalchemy import text
from sqlalchemy.engine import Engine

from vehicle_detection.cloud.server.db import writing

KEY_PREFIX = 'vdk_'
SUBJECT_CHARS = 80  # rate_limits.subject
# Seconds since the epoch by the database's own clock, in one statement.
DATABASE_CLOCK = {'postgresql': 'CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS DOUBLE PRECISION)',
                  'sqlite': "((julianday('now') - 2440587.5) * 86400.0)"}


def new_key() -> str:
    """Return a fresh API key: 256 random bits, URL-safe."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    """
    Return the stored form of ``key``.

    Keys are 256-bit random tokens, not passwords: a plain SHA-256 cannot be
    brute-forced and lets the server find the device with one indexed lookup.
    """
    return hashlib.sha256(key.encode('utf-8')).hexdigest()


class RateLimiter:
    """A token bucket per device: ``rate`` requests a second, bursts up to ``burst``."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, max(burst, 1.0)
        self._buckets: Dict[str, Tuple[float, float]] = {}
        self._lock = threading.Lock()

    def acquire(self, device: str, now: Optional[float] = None) -> Optional[int]:
        """Take one token; return None, or the whole seconds to wait when refused."""
        if self.rate <= 0:
            return None
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.get(device, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[device] = (tokens - 1.0, now)
                return None
            self._buckets[device] = (tokens, now)
            return max(1, math.ceil((1.0 - tokens) / self.rate))


class SharedRateLimiter(RateLimiter):
    """
    The same budgets kept in the database (table ``rate_limits``, migration 0008).

    Every worker of every server instance that shares the database shares
    one budget per subject. Each bucket is one number, its *theoretical
    arrival time* (GCRA, the token bucket's equivalent): a request is allowed
    while that time is at most ``burst - 1`` intervals ahead of now, and then
    pushes it one interval (``1 / rate``) further. So a request costs one
    single-statement upsert, which writes nothing when it is refused; the
    clock is the database's, so instances whose clocks disagree still agree
    on every budget. On PostgreSQL the table is UNLOGGED (no WAL, no fsync
    per request; after a crash it starts empty: every bucket full). On SQLite
    it is a small write in the database's write turn (WAL, no fsync).
    """

    PRUNE_CHANCE = 0.001  # an acquisition also deletes the long-full buckets now and then
    PRUNE_AFTER_S = 60.0

    def __init__(self, engine: Engine, prefix: str, rate: float, burst: float) -> None:
        super().__init__(rate, burst)
        self.engine, self.prefix = engine, prefix
        self._interval = 1.0 / rate if rate > 0 else 0.0
        self._slack = (self.burst - 1.0) * self._interval  # how far ahead a bucket may run
        postgres = engine.dialect.name == 'postgresql'
        clock = DATABASE_CLOCK['postgresql' if postgres else 'sqlite']
        now = f'COALESCE(CAST(:now AS DOUBLE PRECISION), {clock})'
        # PostgreSQL: each statement its own transaction (no BEGIN/COMMIT round trips; the
        # row lock lasts one statement). SQLite: in the database's write turn.
        self._session = (partial(engine.execution_options(isolation_level='AUTOCOMMIT')
                                 .connect) if postgres else partial(writing, engine))
        later = 'GREATEST' if postgres else 'MAX'
        self._take = text(
            f'INSERT INTO rate_limits (subject, tat) VALUES (:subject, {now} + :interval) '
            f'ON CONFLICT (subject) DO UPDATE SET '
            f'tat = {later}(rate_limits.tat + :interval, excluded.tat) '
            f'WHERE rate_limits.tat <= excluded.tat - :interval + :slack RETURNING tat')
        self._ahead = text(f'SELECT tat - {now} FROM rate_limits WHERE subject = :subject')
        self._prune = text(f'DELETE FROM rate_limits WHERE tat < {now} - :after')

    def acquire(self, device: str, now: Optional[float] = None) -> Optional[int]:
        """Take one request from the shared budget of ``device`` (``now``: for tests)."""
        if self.rate <= 0:
            return None
        subject = self.prefix + device[:SUBJECT_CHARS - len(self.prefix)]
        with self._session() as connection:
            taken = connection.execute(self._take, {
                'subject': subject, 'now': now, 'interval': self._interval,
                'slack': self._slack}).first()
            if taken is None:
                ahead = connection.execute(self._ahead, {'subject': subject,
                                                         'now': now}).scalar()
            if random.random() < self.PRUNE_CHANCE:
                connection.execute(self._prune, {'now': now, 'after': self.PRUNE_AFTER_S})
        if taken is not None:
            return None
        return max(1, math.ceil((ahead or 0.0) - self._slack))
