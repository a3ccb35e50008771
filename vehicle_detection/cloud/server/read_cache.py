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
The shared read cache of the dashboard's reads, with ETags.

A layer around the read routes, which stay as they are: the dependency
:func:`read_cache` runs after the reader is authenticated and answers from
the cache (200 with the stored body, or 304 when the client's
``If-None-Match`` names its ETag) by raising :class:`CacheHit`; on a miss
it marks the request, and the middleware :class:`CacheFill` stores the
route's 200 answer with the data versions read *before* it was computed.

An entry is served without asking the database while younger than
``fresh_s`` since it was stored (the coalescing window: 50 operators
refreshing every 5 s share one computation; an answer is then at most
``fresh_s`` plus its computing time behind the data); after that only while
the versions of the tables its route reads are unchanged
(:mod:`data_version`, one small query) and it is younger than ``ttl_s``
(answers that move with the clock: a device going offline, the default
window ending now). Requests for a read that is being computed wait for
that answer instead of computing it again: in the same worker on an event,
in another worker (or instance, with Redis) by a claim in the store.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
import hashlib
import json
import logging
from pathlib import Path
import time
from typing import Dict, List, Optional, Tuple

from fastapi import Request, Response
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from vehicle_detection.cloud.server.cache_store import (
    CacheStore, CacheUnavailable, FileStore, LocalStore, MAX_ENTRY_BYTES, MemoryStore,
    RedisStore)
from vehicle_detection.cloud.server.data_version import DATABASE_ROW, read_versions
from vehicle_detection.cloud.server.metrics import CACHE_HITS, CACHE_MISSES
from vehicle_detection.cloud.server.settings import ServerSettings
from vehicle_detection.wire import ALERTS_PATH, API_PREFIX, COUNTS_PATH, DEVICES_PATH

# The dashboard's reads and the tables each one shows.
CACHED_ROUTES: Dict[str, Tuple[str, ...]] = {
    # Only answers of 200 are kept (an unknown device's 404 is asked again); the devices'
    # heartbeats change 'devices' every few seconds, so only the devices list watches it.
    ALERTS_PATH: ('alerts',),
    # alerts_24h from the rollups; each device's configuration state
    DEVICES_PATH: ('alerts', 'alert_hours', 'devices', 'device_configs'),
    API_PREFIX + '/stats': ('alerts', 'alert_hours'),
    # count_records also holds each period's quality; count_speed_bins the speed columns
    COUNTS_PATH: ('count_records', 'traffic_counts', 'count_quarters', 'count_coverage',
                  'count_speed_bins'),
    COUNTS_PATH + '.csv': ('count_records', 'traffic_counts', 'count_quarters',
                           'count_coverage', 'count_speed_bins'),
}
PENDING = 'vd_read_cache'  # in the request's scope state: the miss to store
KEPT_HEADERS = ('content-type', 'content-disposition')
CACHE_CONTROL = 'private, no-cache'  # a browser keeps it and asks again with its ETag
FOLLOW_WAIT_S = 10.0  # a request waits this long for the same read under way elsewhere
CLAIM = 'computing:'  # + key: a worker computes it (the others wait for its answer)
CLAIM_POLL_S = 0.02  # how often a worker asks whether another's answer is in
log = logging.getLogger('vehicle_detection.cloud.cache')


class CacheHit(Exception):
    """Raised by :func:`read_cache` with the answer taken from the cache."""

    def __init__(self, response: Response) -> None:
        super().__init__('answered from the read cache')
        self.response = response


async def answer_hit(request: Request, hit: Exception) -> Response:
    """Exception handler of :class:`CacheHit`: send its response."""
    assert isinstance(hit, CacheHit)
    return hit.response


@dataclass
class Entry:
    """A stored answer and what it was computed from."""

    versions: List[int]
    stored: float  # epoch seconds, when it was stored (computed from the versions before)
    etag: str
    headers: Dict[str, str]
    body: bytes

    def pack(self) -> bytes:
        """Return the entry as bytes: a JSON line, then the body."""
        head = {'v': self.versions, 's': self.stored, 'e': self.etag, 'h': self.headers}
        return json.dumps(head).encode() + b'\n' + self.body

    @classmethod
    def unpack(cls, data: bytes) -> 'Entry':
        """Read what :meth:`pack` wrote."""
        head, _, body = data.partition(b'\n')
        fields = json.loads(head)
        return cls(fields['v'], fields['s'], fields['e'], fields['h'], body)


@dataclass
class Pending:
    """A miss being computed: where to store it, and who waits for it in this worker."""

    key: str
    route: str
    versions: Optional[List[int]]  # None: the versions could not be read, nothing stored
    done: Optional[asyncio.Event] = field(default=None)  # this worker's requests waiting
    claimed: bool = False  # the other workers (or instances) wait for it too


class ReadCache:
    """The read cache of one worker: a shared store, the database's versions, in-flight reads."""

    def __init__(self, store: CacheStore, local: LocalStore, engine: Engine, fresh_s: float,
                 ttl_s: float) -> None:
        self.store, self.local, self.engine = store, local, engine
        self.fresh_s, self.ttl_s = fresh_s, ttl_s
        self._namespace = ''
        self._inflight: Dict[str, asyncio.Event] = {}

    def versions(self, tables: Tuple[str, ...]) -> Optional[List[int]]:
        """Return the database's versions of ``tables`` (None when it does not answer)."""
        try:
            with self.engine.connect() as connection:
                found = read_versions(connection)
        except SQLAlchemyError:
            return None  # the route will tell the database's error itself
        if not self._namespace:
            self._namespace = f'{found.get(DATABASE_ROW, 0):x}:'
        return [found.get(table, 0) for table in tables]

    def key(self, route: str, query: str) -> Optional[str]:
        """Return the store key of a read (None until the database was asked once)."""
        if not self._namespace:
            return None
        # The query as sent: in another order, a repeated parameter may mean another answer.
        digest = hashlib.sha256(f'{route}?{query}'.encode()).hexdigest()[:40]
        return f'read:{self._namespace}{digest}'

    def look_up(self, route: str, query: str, tables: Tuple[str, ...]
                ) -> Tuple[Optional[Entry], Optional[List[int]], Optional[str]]:
        """
        Return (an entry that may answer, or None; the versions read, if any; the key).

        A fresh entry answers without a question to the database; an older
        one when the versions of ``tables`` are still its own.
        """
        key = self.key(route, query)
        entry = self.get(key) if key else None
        if entry is not None and time.time() - entry.stored < self.fresh_s:
            return entry, None, key
        versions = self.versions(tables)
        key = key or self.key(route, query)
        if key is None or versions is None:
            return None, versions, key
        entry = entry or self.get(key)
        return (entry if self.current(entry, versions) else None), versions, key

    def get(self, key: str) -> Optional[Entry]:
        """Return the stored entry of ``key`` (None when absent or unavailable)."""
        try:
            data = self.store.get(key)
        except CacheUnavailable:
            return None
        try:
            return Entry.unpack(data) if data is not None else None
        except (ValueError, KeyError, TypeError):
            return None  # written by another version of this server: recomputed

    def put(self, key: str, entry: Entry) -> None:
        """Store ``entry`` until its time to live is over."""
        if len(entry.body) > MAX_ENTRY_BYTES:
            return
        try:
            self.store.put(key, entry.pack(), self.ttl_s)
        except CacheUnavailable as error:
            log.debug('not cached: %s', error)

    def current(self, entry: Optional[Entry], versions: Optional[List[int]]) -> bool:
        """Tell whether ``entry`` may answer now."""
        if entry is None:
            return False
        age = time.time() - entry.stored
        if age < self.fresh_s:
            return True
        return versions is not None and entry.versions == versions and age < self.ttl_s

    def lead(self, key: str) -> Tuple[bool, asyncio.Event]:
        """Return (True, event) to compute ``key``, or (False, event) to wait for a leader."""
        running = self._inflight.get(key)  # on the event loop: no other task runs meanwhile
        if running is not None:
            return False, running
        self._inflight[key] = asyncio.Event()
        return True, self._inflight[key]

    def claim(self, key: str) -> bool:
        """Tell the other workers this one computes ``key`` (False: another one does)."""
        try:
            return self.store.claim(CLAIM + key, FOLLOW_WAIT_S)
        except CacheUnavailable:
            return True

    def computing(self, key: str) -> bool:
        """Tell whether another worker still computes ``key``."""
        try:
            return self.store.holds(CLAIM + key)
        except CacheUnavailable:
            return False

    def release(self, key: str) -> None:
        """Tell the other workers that ``key`` is stored (or will not be)."""
        try:
            self.store.delete(CLAIM + key)
        except CacheUnavailable:
            pass

    def finished(self, key: str, done: asyncio.Event) -> None:
        """Wake the requests waiting for ``key`` (on the event loop)."""
        if self._inflight.get(key) is done:
            del self._inflight[key]
        done.set()


def open_read_cache(settings: ServerSettings, engine: Engine) -> ReadCache:
    """
    Return the read cache of a worker with ``settings``.

    Several workers share a file in the instance's runtime folder, one
    worker keeps it in memory; Redis, when named, is shared by every
    instance (the monitor's samples stay local: they are this instance's).
    """
    local: LocalStore = (FileStore(Path(settings.runtime_dir) / 'cache.sqlite')
                         if settings.runtime_dir else MemoryStore())
    shared: CacheStore = RedisStore(settings.redis) if settings.redis else local
    return ReadCache(shared, local, engine, settings.cache_fresh_s, settings.cache_ttl_s)


async def read_cache(request: Request) -> None:
    """
    Dependency of the read routes: answer a cached read, or mark a miss to store.

    Routes not in :data:`CACHED_ROUTES` pass through untouched. The store and
    the database are asked in the thread pool; a request waiting for the
    same read of another holds no thread.
    """
    route = getattr(request.scope.get('route'), 'path', None)
    tables = CACHED_ROUTES.get(route or '')
    cache: Optional[ReadCache] = getattr(request.app.state.server, 'read_cache', None)
    if tables is None or cache is None or request.method != 'GET' or cache.ttl_s <= 0:
        return
    assert route is not None
    arrived = time.time()
    entry, versions, key = await run_in_threadpool(cache.look_up, route, request.url.query,
                                                   tables)
    if entry is not None:
        _hit(request, route, entry)
    if key is None or versions is None:
        CACHE_MISSES.labels(route).inc()
        return
    leader, done = cache.lead(key)
    claimed = False
    if not leader:  # the same read is being computed by this worker: take its answer
        try:
            await asyncio.wait_for(done.wait(), FOLLOW_WAIT_S)
        except asyncio.TimeoutError:
            pass
        entry = await run_in_threadpool(cache.get, key)
    else:
        claimed = await run_in_threadpool(cache.claim, key)
        if not claimed:  # another worker computes it: wait for its answer, by polling
            deadline = time.monotonic() + FOLLOW_WAIT_S
            while time.monotonic() < deadline and await run_in_threadpool(cache.computing, key):
                await asyncio.sleep(CLAIM_POLL_S)
        # Claimed or not, the answer may have been stored since this request looked.
        entry = await run_in_threadpool(cache.get, key)
    if entry is not None and (cache.current(entry, versions) or entry.stored >= arrived):
        if claimed:
            await run_in_threadpool(cache.release, key)
        if leader:
            cache.finished(key, done)  # with the answer this one takes
        _hit(request, route, entry)
    CACHE_MISSES.labels(route).inc()
    setattr(request.state, PENDING, Pending(key, route, versions, done if leader else None,
                                            claimed))


def _hit(request: Request, route: str, entry: Entry) -> None:
    CACHE_HITS.labels(route).inc()
    headers = {'ETag': entry.etag, 'Cache-Control': CACHE_CONTROL, 'X-Cache': 'hit'}
    if etag_matches(request.headers.get('if-none-match'), entry.etag):
        raise CacheHit(Response(status_code=304, headers=headers))
    raise CacheHit(Response(entry.body, headers={**entry.headers, **headers}))


def etag_matches(if_none_match: Optional[str], etag: str) -> bool:
    """Tell whether an ``If-None-Match`` header names ``etag`` (weak comparison)."""
    if not if_none_match:
        return False
    wanted = [tag.strip().removeprefix('W/') for tag in if_none_match.split(',')]
    return '*' in wanted or etag in wanted


def etag_of(body: bytes) -> str:
    """Return the strong ETag of a body."""
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
