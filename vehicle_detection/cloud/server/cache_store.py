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
Where cached answers live: this process, a file every worker of the host opens, or Redis.

A :class:`LocalStore` also keeps the monitor's samples of this server
instance (:mod:`monitor`): in memory with one worker, in a SQLite file of
the instance's runtime folder with several (never under the storage root,
which other hosts or an object store may hold). Redis, when the operator
names one, holds the read cache of every instance.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import deque, OrderedDict
import logging
import os
from pathlib import Path
import sqlite3
import threading
import time
from typing import Any, Deque, List, Optional, Tuple

log = logging.getLogger('vehicle_detection.cloud.cache')
MAX_ENTRY_BYTES = 16 * 1024 * 1024  # a larger answer is not cached
SNAPSHOT_KEEP_S = 300.0  # the monitor compares with a sample about a minute old
PRUNE_EVERY = 200  # puts between two removals of expired entries from a file
REDIS_TIMEOUT_S = 1.0
REDIS_PAUSE_S = 5.0  # after a failure, Redis is left alone this long (reads are computed)


class CacheUnavailable(Exception):
    """The store could not be used for now; the answer is computed instead."""


class CacheStore(ABC):
    """Keys to bytes, each with a time to live."""

    kind = 'store'

    @abstractmethod
    def get(self, key: str) -> Optional[bytes]:
        """Return the value of ``key``, or None when absent or expired."""

    @abstractmethod
    def put(self, key: str, value: bytes, ttl_s: float) -> None:
        """Keep ``value`` under ``key`` for ``ttl_s`` seconds."""

    @abstractmethod
    def claim(self, key: str, ttl_s: float) -> bool:
        """Create ``key`` for ``ttl_s`` seconds unless it exists: True when this call did."""

    @abstractmethod
    def holds(self, key: str) -> bool:
        """Tell whether ``key`` exists (and has not expired)."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove ``key`` (absent: nothing to do)."""

    def ping(self) -> None:  # noqa: B027 (a local store is always there)
        """Raise :class:`CacheUnavailable` when the store cannot be reached."""

    def close(self) -> None:  # noqa: B027 (only connections need closing)
        """Release connections (nothing to do for most stores)."""


class LocalStore(CacheStore):
    """A store of this instance, also holding the monitor's samples."""

    @abstractmethod
    def add_sample(self, at: float, data: str) -> None:
        """Keep a monitor sample taken at ``at`` (epoch seconds)."""

    @abstractmethod
    def samples(self) -> List[Tuple[float, str]]:
        """Return the samples of the last :data:`SNAPSHOT_KEEP_S` seconds, oldest first."""


class MemoryStore(LocalStore):
    """This process only (one worker): a dictionary bounded in bytes, oldest out first."""

    kind = 'memory'

    def __init__(self, max_bytes: int = 256 * 1024 * 1024) -> None:
        self._entries: 'OrderedDict[str, Tuple[float, bytes]]' = OrderedDict()
        self._bytes = 0
        self._max_bytes = max_bytes
        self._samples: Deque[Tuple[float, str]] = deque()
        self._lock = threading.Lock()

    def get(self, key: str) -> Optional[bytes]:
        """Return the value of ``key`` unless it expired."""
        with self._lock:
            return self._live(key)

    def put(self, key: str, value: bytes, ttl_s: float) -> None:
        """Keep ``value``; drop the oldest entries past the byte bound."""
        with self._lock:
            old = self._entries.pop(key, None)
            self._bytes -= len(old[1]) if old else 0
            self._entries[key] = (time.time() + ttl_s, value)
            self._bytes += len(value)
            while self._bytes > self._max_bytes and self._entries:
                _, (_, dropped) = self._entries.popitem(last=False)
                self._bytes -= len(dropped)

    def claim(self, key: str, ttl_s: float) -> bool:
        """Create ``key`` unless it is there."""
        with self._lock:
            if self._live(key) is not None:
                return False
            self._entries[key] = (time.time() + ttl_s, b'')
            return True

    def _live(self, key: str) -> Optional[bytes]:
        """Return the value of ``key`` unless it expired (the caller holds the lock)."""
        found = self._entries.get(key)
        return found[1] if found is not None and found[0] > time.time() else None

    def holds(self, key: str) -> bool:
        """Tell whether ``key`` is there."""
        with self._lock:
            return self._live(key) is not None

    def delete(self, key: str) -> None:
        """Remove ``key``."""
        with self._lock:
            old = self._entries.pop(key, None)
            self._bytes -= len(old[1]) if old else 0

    def add_sample(self, at: float, data: str) -> None:
        """Keep a sample; forget those older than the window."""
        with self._lock:
            self._samples.append((at, data))
            while self._samples and self._samples[0][0] < at - SNAPSHOT_KEEP_S:
                self._samples.popleft()

    def samples(self) -> List[Tuple[float, str]]:
        """Return the samples kept."""
        with self._lock:
            return list(self._samples)


class FileStore(LocalStore):
    """
    A SQLite file every worker process of this instance opens (its runtime folder).

    Write-ahead log without fsync: a cache lost with the machine is only
    recomputed. One connection per thread and process.
    """

    kind = 'file'

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._puts = 0
        with self._connection() as connection:
            connection.executescript(
                'CREATE TABLE IF NOT EXISTS entries (key TEXT PRIMARY KEY, expires REAL, '
                'value BLOB);'
                'CREATE TABLE IF NOT EXISTS samples (at REAL, data TEXT);'
                'CREATE INDEX IF NOT EXISTS samples_at ON samples (at);')

    def _connection(self) -> sqlite3.Connection:
        connection = getattr(self._local, 'connection', None)
        if connection is None or getattr(self._local, 'pid', None) != os.getpid():
            connection = sqlite3.connect(str(self.path), timeout=5.0, isolation_level=None,
                                         check_same_thread=False)
            connection.execute('PRAGMA journal_mode=WAL')
            connection.execute('PRAGMA synchronous=OFF')
            self._local.connection, self._local.pid = connection, os.getpid()
        return connection

    def _run(self, statement: str, *parameters: Any) -> List[Any]:
        try:
            return self._connection().execute(statement, parameters).fetchall()
        except sqlite3.Error as error:
            raise CacheUnavailable(f'cache file {self.path}: {error}') from error

    def get(self, key: str) -> Optional[bytes]:
        """Return the value of ``key`` unless it expired."""
        rows = self._run('SELECT value FROM entries WHERE key = ? AND expires > ?', key,
                         time.time())
        return bytes(rows[0][0]) if rows else None

    def put(self, key: str, value: bytes, ttl_s: float) -> None:
        """Keep ``value``; now and then remove what expired."""
        now = time.time()
        self._run('INSERT OR REPLACE INTO entries (key, expires, value) VALUES (?, ?, ?)',
                  key, now + ttl_s, sqlite3.Binary(value))
        self._puts += 1
        if self._puts % PRUNE_EVERY == 0:
            self._run('DELETE FROM entries WHERE expires <= ?', now)

    def claim(self, key: str, ttl_s: float) -> bool:
        """Create ``key`` unless it is there (an expired one is taken over)."""
        now = time.time()
        try:
            cursor = self._connection().execute(
                'INSERT INTO entries (key, expires, value) VALUES (?, ?, ?) ON CONFLICT (key) '
                'DO UPDATE SET expires = excluded.expires, value = excluded.value '
                'WHERE entries.expires <= ?', (key, now + ttl_s, b'', now))
        except sqlite3.Error as error:
            raise CacheUnavailable(f'cache file {self.path}: {error}') from error
        return cursor.rowcount == 1

    def holds(self, key: str) -> bool:
        """Tell whether ``key`` is there."""
        return bool(self._run('SELECT 1 FROM entries WHERE key = ? AND expires > ?', key,
                              time.time()))

    def delete(self, key: str) -> None:
        """Remove ``key``."""
        self._run('DELETE FROM entries WHERE key = ?', key)

    def add_sample(self, at: float, data: str) -> None:
        """Keep a sample; forget those older than the window."""
        self._run('INSERT INTO samples (at, data) VALUES (?, ?)', at, data)
        self._run('DELETE FROM samples WHERE at < ?', at - SNAPSHOT_KEEP_S)

    def samples(self) -> List[Tuple[float, str]]:
        """Return the samples kept, oldest first."""
        return [(float(at), str(data)) for at, data in self._run(
            'SELECT at, data FROM samples WHERE at >= ? ORDER BY at',
            time.time() - SNAPSHOT_KEEP_S)]

    def close(self) -> None:
        """Close this thread's connection."""
        connection = getattr(self._local, 'connection', None)
        if connection is not None:
            connection.close()
            self._local.connection = None


class RedisStore(CacheStore):
    """
    Redis shared by every server instance (``serve --redis redis://host:6379/0``).

    Each call waits at most :data:`REDIS_TIMEOUT_S`; after a failure Redis is
    left alone for :data:`REDIS_PAUSE_S` (answers are computed meanwhile), so
    a Redis that is down costs the reads nothing but their cache.
    """

    kind = 'redis'

    def __init__(self, url: str, prefix: str = 'vd:') -> None:
        import redis  # only a server configured with Redis needs the client

        self.url = url
        self.prefix = prefix
        self._errors = (redis.RedisError, OSError)
        self._client = redis.Redis.from_url(url, socket_timeout=REDIS_TIMEOUT_S,
                                            socket_connect_timeout=REDIS_TIMEOUT_S)
        self._paused_until = 0.0

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        if time.monotonic() < self._paused_until:
            raise CacheUnavailable(f'Redis {self.url} failed less than {REDIS_PAUSE_S:g} s ago')
        try:
            return getattr(self._client, method)(*args, **kwargs)
        except self._errors as error:
            self._paused_until = time.monotonic() + REDIS_PAUSE_S
            log.warning('Redis %s: %s (the cache is skipped for %g s)', self.url, error,
                        REDIS_PAUSE_S)
            raise CacheUnavailable(f'Redis {self.url}: {error}') from error

    def get(self, key: str) -> Optional[bytes]:
        """Return the value of ``key``."""
        value = self._call('get', self.prefix + key)
        return bytes(value) if value is not None else None

    def put(self, key: str, value: bytes, ttl_s: float) -> None:
        """Keep ``value`` with Redis's own expiry."""
        self._call('set', self.prefix + key, value, px=max(1, int(ttl_s * 1000)))

    def claim(self, key: str, ttl_s: float) -> bool:
        """Create ``key`` unless it is there (SET NX)."""
        return bool(self._call('set', self.prefix + key, b'', px=max(1, int(ttl_s * 1000)),
                               nx=True))

    def holds(self, key: str) -> bool:
        """Tell whether ``key`` is there."""
        return bool(self._call('exists', self.prefix + key))

    def delete(self, key: str) -> None:
        """Remove ``key``."""
        self._call('delete', self.prefix + key)

    def ping(self) -> None:
        """Ask Redis for a PONG (not paused: the monitor tells when it is back)."""
        try:
            self._client.ping()
        except self._errors as error:
            raise CacheUnavailable(f'Redis {self.url}: {error}') from error

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()
