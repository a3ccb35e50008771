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
``GET /api/v1/server``: the health of this server instance, for the dashboard's monitor panel.

Database (answer time, size, schema), snapshot storage (free space, or the
object store's own check), read cache (hit rate), workers, requests of the
last minute (rate, p95 latency, 5xx rate), CPU and memory of the server's
processes, uptime and version. A database that does not answer is a field
of the answer (``database.ok`` false, with the error), never an error of it.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor, TimeoutError as FutureTimeout
from datetime import datetime, timezone
import functools
import os
from pathlib import Path
import shutil
import threading
import time
from typing import Any, Optional, Tuple

from fastapi import APIRouter, Request
import psutil
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import SQLAlchemyError

from vehicle_detection import __version__
from vehicle_detection.cloud.server.cache_store import CacheUnavailable
from vehicle_detection.cloud.server.deps import ServerState, state
from vehicle_detection.cloud.server.monitor_figures import (
    count_workers, server_processes, take_sample, window)
from vehicle_detection.cloud.server.storage import LocalImageStore, StorageError
from vehicle_detection.wire import API_PREFIX

MONITOR_PATH = API_PREFIX + '/server'
DATABASE_TIMEOUT_S = 3.0  # a database that takes longer to answer SELECT 1 is shown down
MEMO_S = 1.0  # one worker computes the panel at most once a second, whoever asks
router = APIRouter(tags=['read'])
_probe = ThreadPoolExecutor(max_workers=1, thread_name_prefix='vd-monitor')


class DatabaseStatus(BaseModel):
    """Whether the database answers, how fast, how large, at which schema."""

    ok: bool
    backend: str
    answer_ms: Optional[float] = None
    size_bytes: Optional[int] = None
    schema_version: Optional[str] = None
    schema_head: Optional[str] = None
    error: Optional[str] = None


class StorageStatus(BaseModel):
    """Whether snapshots can be stored: free space of a folder, or an object store's check."""

    ok: bool
    kind: str  # 'local' or 'object'
    free_bytes: Optional[int] = None
    total_bytes: Optional[int] = None
    error: Optional[str] = None


class CacheStatus(BaseModel):
    """The read cache: where it is, and its hits and misses of the window."""

    ok: bool
    backend: str  # 'memory' (one worker), 'file' (this host's workers) or 'redis'
    hits: int
    misses: int
    hit_rate: Optional[float] = None
    error: Optional[str] = None


class RequestStatus(BaseModel):
    """Requests this instance answered in the window (the last minute, or since its start)."""

    window_s: float
    requests: int
    rate_per_s: float
    p95_ms: Optional[float] = None
    errors: int  # answered 5xx
    error_rate: Optional[float] = None


class ProcessStatus(BaseModel):
    """The instance's processes: workers, CPU (percent of one core) and resident memory."""

    workers: int
    workers_configured: int
    processes: int
    cpu_percent: float
    memory_bytes: int


class ServerStatus(BaseModel):
    """The whole panel."""

    version: str
    started_at: datetime
    uptime_s: float
    checked_at: datetime
    database: DatabaseStatus
    storage: StorageStatus
    cache: CacheStatus
    requests: RequestStatus
    process: ProcessStatus


class _Memo:
    """The last answer of one app, and the lock that makes one request compute the next."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.at = 0.0
        self.status: Optional[ServerStatus] = None


@router.get(MONITOR_PATH, response_model=ServerStatus)
def server_status(request: Request) -> ServerStatus:
    """Return the health of this server instance (computed at most once a second per worker)."""
    memo = getattr(request.app.state, 'monitor_memo', None)
    if memo is None:
        memo = request.app.state.monitor_memo = _Memo()
    with memo.lock:
        if memo.status is None or time.monotonic() - memo.at >= MEMO_S:
            memo.status, memo.at = _compute(state(request)), time.monotonic()
        return memo.status


def _compute(server: ServerState) -> ServerStatus:
    processes = server_processes()
    started = processes[0].create_time()
    sample = take_sample(processes)
    figures = window(server.read_cache.local, sample, started)
    memory = 0
    for process in processes:
        try:
            memory += process.memory_info().rss
        except psutil.Error:  # a worker that just ended
            continue
    lookups = figures.hits + figures.misses
    cache = server.read_cache.store
    try:
        cache.ping()
        cache_error = None
    except CacheUnavailable as error:
        cache_error = str(error)
    return ServerStatus(
        version=__version__, started_at=datetime.fromtimestamp(started, timezone.utc),
        uptime_s=round(sample.at - started, 1),
        checked_at=datetime.fromtimestamp(sample.at, timezone.utc),
        database=database_status(server.engine, server.settings.db),
        storage=storage_status(server),
        cache=CacheStatus(ok=cache_error is None, backend=cache.kind, hits=int(figures.hits),
                          misses=int(figures.misses), error=cache_error,
                          hit_rate=figures.hits / lookups if lookups else None),
        requests=RequestStatus(
            window_s=round(figures.seconds, 1), requests=int(figures.requests),
            rate_per_s=round(figures.requests / figures.seconds, 2), errors=int(figures.errors),
            p95_ms=None if figures.p95_s is None else round(figures.p95_s * 1000, 1),
            error_rate=figures.errors / figures.requests if figures.requests else None),
        process=ProcessStatus(workers=count_workers(processes),
                              workers_configured=server.settings.workers,
                              processes=len(processes), memory_bytes=memory,
                              cpu_percent=round(figures.cpu_percent, 1)))


def database_status(engine: Engine, url: str) -> DatabaseStatus:
    """Ask the database SELECT 1, its size and schema; down after :data:`DATABASE_TIMEOUT_S`."""
    backend = engine.dialect.name
    future = _probe.submit(_ask_database, engine, url)
    try:
        answer_ms, size, schema = future.result(DATABASE_TIMEOUT_S)
    except FutureTimeout:
        return DatabaseStatus(ok=False, backend=backend,
                              error=f'no answer in {DATABASE_TIMEOUT_S:g} s')
    except SQLAlchemyError as error:
        reason = getattr(error, 'orig', None) or error
        return DatabaseStatus(ok=False, backend=backend, error=str(reason).strip()[:300])
    head = _head_revision()
    return DatabaseStatus(ok=schema == head, backend=backend, answer_ms=round(answer_ms, 2),
                          size_bytes=size, schema_version=schema, schema_head=head,
                          error=None if schema == head else
                          f'the schema is at {schema}, this server needs {head}')


@functools.cache
def _head_revision() -> Optional[str]:
    """Return the code's newest schema (Alembic is imported on the first panel, not at start)."""
    from vehicle_detection.cloud.server.schema import head_revision

    return head_revision()


def _ask_database(engine: Engine, url: str) -> Tuple[float, Optional[int], Optional[str]]:
    from alembic.runtime.migration import MigrationContext

    begun = time.perf_counter()
    with engine.connect() as connection:
        connection.execute(text('SELECT 1'))
        answer_ms = (time.perf_counter() - begun) * 1000
        schema = MigrationContext.configure(connection).get_current_revision()
        size: Optional[int] = None
        if engine.dialect.name == 'postgresql':
            size = int(connection.execute(
                text('SELECT pg_database_size(current_database())')).scalar_one())
    if engine.dialect.name == 'sqlite':
        database = make_url(url).database or ''
        size = sum(os.path.getsize(path) for path in (database, database + '-wal')
                   if database and os.path.exists(path))
    return answer_ms, size, schema


def storage_status(server: ServerState) -> StorageStatus:
    """Return the free space of a snapshot folder, or what an object store's check says."""
    store: Any = server.store
    if not isinstance(store, LocalImageStore):
        # An object store (issue 27) checks itself: reachable and usable, else StorageError.
        try:
            store.check()
        except StorageError as error:
            return StorageStatus(ok=False, kind='object', error=str(error))
        return StorageStatus(ok=True, kind='object')
    folder = Path(server.settings.storage).resolve()
    while not folder.exists() and folder != folder.parent:  # made with the first snapshot
        folder = folder.parent
    try:
        usage = shutil.disk_usage(folder)
    except OSError as error:
        return StorageStatus(ok=False, kind='local', error=f'{folder}: {error.strerror}')
    low = usage.free < server.settings.min_free_mb * 1024 * 1024
    writable = os.access(folder, os.W_OK | os.X_OK)
    problem = None if writable else f'{folder} is not writable by this server'
    if writable and low:
        problem = f'{usage.free // 2 ** 20} MiB free, under {server.settings.min_free_mb} MiB'
    return StorageStatus(ok=writable and not low, kind='local', free_bytes=usage.free,
                         total_bytes=usage.total, error=problem)
