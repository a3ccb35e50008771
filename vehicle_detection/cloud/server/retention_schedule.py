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
Retention on a schedule: one pass at a time across workers and server instances.

Every worker process runs a :class:`RetentionSchedule` thread; each pass
first takes the database's retention lock without waiting
(:func:`retention_lock`: a PostgreSQL advisory lock, shared by every
instance on that database; for SQLite, whose instances all live on one
host, an ``flock`` beside the database file). A worker that finds it taken
skips that pass: two passes never run at once, and a pass that finds
nothing to do costs a few indexed queries and one listing.
"""

from __future__ import annotations

from contextlib import contextmanager
import fcntl
import logging
import os
import random
import threading
from typing import Iterator, Optional

from sqlalchemy import func, select
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import SQLAlchemyError

from vehicle_detection.cloud.server import metrics
from vehicle_detection.cloud.server.retention import Freed, prune, RetentionPolicy
from vehicle_detection.cloud.server.storage import ImageStore, StorageError

ADVISORY_KEY = 0x76645F726574  # 'vd_ret': the PostgreSQL advisory lock of retention
FIRST_PASS_S = 60.0  # the first pass comes this long after a start (at most the interval)
log = logging.getLogger('vehicle_detection.cloud.retention')
_memory_lock = threading.Lock()  # a SQLite database in memory: one process


@contextmanager
def retention_lock(engine: Engine) -> Iterator[bool]:
    """Yield True while this process holds the retention lock, False if another does."""
    if engine.dialect.name == 'postgresql':
        with engine.connect() as connection:
            got = connection.execute(select(func.pg_try_advisory_lock(ADVISORY_KEY))).scalar()
            connection.commit()  # the lock is the session's: no transaction stays open
            try:
                yield bool(got)
            finally:
                if got:
                    try:
                        connection.execute(select(func.pg_advisory_unlock(ADVISORY_KEY)))
                        connection.commit()
                    except SQLAlchemyError:
                        connection.invalidate()  # closed: the server drops the lock
        return
    database = make_url(str(engine.url)).database
    if not database or database == ':memory:':
        got = _memory_lock.acquire(blocking=False)
        try:
            yield got
        finally:
            if got:
                _memory_lock.release()
        return
    descriptor = os.open(f'{database}.retention.lock', os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(descriptor)  # releases the flock


def run_once(engine: Engine, store: ImageStore, policy: RetentionPolicy, dry_run: bool = False,
             stopping: Optional[threading.Event] = None) -> Optional[Freed]:
    """Apply ``policy`` once under the lock; None when another process holds it."""
    with retention_lock(engine) as got:
        if not got:
            return None
        freed = prune(engine, store, policy, dry_run=dry_run,
                      stopping=stopping.is_set if stopping is not None else lambda: False)
    if not dry_run:
        metrics.count_retention(freed)
    return freed


class RetentionSchedule:
    """A daemon thread that applies the policy every ``interval_s`` (with some jitter)."""

    def __init__(self, engine: Engine, store: ImageStore, policy: RetentionPolicy,
                 interval_s: float) -> None:
        self.engine, self.store, self.policy = engine, store, policy
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name='retention', daemon=True)
        self.passes = 0

    def start(self) -> None:
        """Start the thread (nothing when the policy keeps everything)."""
        if self.policy.active and self.interval_s > 0:
            _log_to_stderr()
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the thread to stop after its current batch, and wait a little for it."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _loop(self) -> None:
        # Workers started together spread their passes: the jitter keeps them apart.
        delay = min(self.interval_s, FIRST_PASS_S) * random.uniform(0.5, 1.0)
        while not self._stop.wait(delay):
            self._pass()
            delay = self.interval_s * random.uniform(0.9, 1.1)

    def _pass(self) -> None:
        try:
            freed = run_once(self.engine, self.store, self.policy, stopping=self._stop)
        except (StorageError, SQLAlchemyError, OSError) as error:
            metrics.RETENTION_PASSES.labels('failed').inc()
            log.warning('retention pass failed (tried again in %.0f s): %s', self.interval_s,
                        error)
            return
        if freed is None:
            return  # another worker or instance holds the lock
        self.passes += 1
        metrics.RETENTION_PASSES.labels('done').inc()
        if freed.anything:
            log.info('retention (%s) deleted %s', self.policy.describe(), freed.describe())


def _log_to_stderr() -> None:
    """Show this logger's INFO lines (the server configures no logging of its own)."""
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter('%(asctime)s retention: %(message)s'))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False
