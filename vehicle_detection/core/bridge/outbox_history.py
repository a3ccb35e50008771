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
The outbox's sent events are the box's local history: kept for a time or a size.

Events whose alert went out and whose snapshot is settled (sent, shared,
evicted, skipped, missing, failed or never taken) are *done*. The oldest done
events are deleted once older than ``history_days`` or while the database
holds more than ``history_mb``; an event still to send is never deleted. The
database runs with ``auto_vacuum=INCREMENTAL`` (an outbox of an older version
is converted once, at its first start), so the pages freed go back to the
file system instead of staying in the file.

Every query of the outbox that runs often has an index: partial indexes on
the few open events (the queue) and on the done events by age (pruning), so
a month of history costs an enqueue or a drain nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
import logging
import math
from pathlib import Path
import sqlite3
import time
from typing import Any, ContextManager, Iterable, Optional

# An event to send: its alert, or its snapshot after the alert.
OPEN_SQL = "(alert_state = 'pending' OR (alert_state = 'sent' AND image_state = 'pending'))"
# An event delivered and settled: local history, deletable once old.
DONE_SQL = "(alert_state = 'sent' AND image_state != 'pending')"
FAILED_SQL = "(alert_state = 'failed' OR image_state = 'failed')"
PENDING_IMAGE_SQL = "image_state = 'pending'"
INDEXES = f"""
DROP INDEX IF EXISTS events_open;
CREATE INDEX IF NOT EXISTS events_open_seq ON events (seq, held_until, created_at)
    WHERE {OPEN_SQL};
CREATE INDEX IF NOT EXISTS events_done_age ON events (created_at) WHERE {DONE_SQL};
CREATE INDEX IF NOT EXISTS events_failed ON events (seq) WHERE {FAILED_SQL};
CREATE INDEX IF NOT EXISTS events_pending_image ON events (seq, image_bytes)
    WHERE {PENDING_IMAGE_SQL};
"""
INCREMENTAL = 2  # PRAGMA auto_vacuum value
WAL_LIMIT_BYTES = 1024 * 1024  # the WAL: checkpointed at this size and cut back to it
# SQLite's page cache of the connection (default 2 MB): every query is on an index, the
# hot pages fit in far less, and the rest is in the system's file cache anyway. A small
# bound is reached within minutes instead of creeping up as the history is walked.
CACHE_KB = 512
PRUNE_BATCH = 5000  # rows deleted per statement: the lock is let go between batches
SIZE_MARGIN = 0.05  # a size prune goes this far below the limit, so it runs rarely
PRUNE_EVERY_S = 60.0  # the history is pruned by enqueue at most this often
DAY_S = 86400.0

log = logging.getLogger(__name__)


def prepare(db: sqlite3.Connection) -> None:
    """
    Ask for incremental vacuum, a small WAL and a small page cache.

    Call before the first table of a new database is made; an existing
    database keeps its vacuum mode until :func:`convert_vacuum` runs.
    """
    db.execute('PRAGMA auto_vacuum = INCREMENTAL')
    db.execute(f'PRAGMA cache_size = -{CACHE_KB}')
    db.execute(f'PRAGMA journal_size_limit = {WAL_LIMIT_BYTES}')
    db.execute(f'PRAGMA wal_autocheckpoint = {WAL_LIMIT_BYTES // 4096}')  # pages of 4 KB


def convert_vacuum(db: sqlite3.Connection) -> bool:
    """
    Convert an outbox of an older version to incremental vacuum; True when it was.

    A full VACUUM rewrites the file once (it needs as much free disk again);
    when it cannot run (no room) the outbox works on, its file just does not
    shrink, and the next start tries again.
    """
    if db.execute('PRAGMA auto_vacuum').fetchone()[0] == INCREMENTAL:
        return False
    db.execute('PRAGMA auto_vacuum = INCREMENTAL')
    try:
        db.execute('VACUUM')
    except sqlite3.OperationalError as error:
        log.warning('outbox not converted to incremental vacuum: %s', error)
        return False
    return db.execute('PRAGMA auto_vacuum').fetchone()[0] == INCREMENTAL


def used_bytes(db: sqlite3.Connection) -> int:
    """Return the bytes of the database's pages in use (free pages left out)."""
    pages = db.execute('PRAGMA page_count').fetchone()[0]
    free = db.execute('PRAGMA freelist_count').fetchone()[0]
    return (pages - free) * db.execute('PRAGMA page_size').fetchone()[0]


def expired_batch(db: sqlite3.Connection, cutoff: float, limit: int) -> int:
    """Delete up to ``limit`` done events created before ``cutoff``; return how many."""
    return db.execute(
        f'DELETE FROM events WHERE seq IN (SELECT seq FROM events WHERE {DONE_SQL} '
        'AND created_at < ? ORDER BY created_at LIMIT ?)', (cutoff, limit)).rowcount


def oversize_batch(db: sqlite3.Connection, max_bytes: int, limit: int) -> int:
    """
    Delete the oldest done events while the database is over ``max_bytes``.

    The number of rows is estimated from the mean row size, aiming a little
    below the limit; at most ``limit`` rows per call. Returns how many went.
    """
    used = used_bytes(db)
    if used <= max_bytes:
        return 0
    # About the number of rows, from the ends of the key (COUNT(*) would read them all):
    # rows go oldest first, so few holes lie between the two ends.
    first, last = db.execute('SELECT MIN(seq), MAX(seq) FROM events').fetchone()
    if first is None:
        return 0
    rows = last - first + 1
    excess = used - max_bytes * (1.0 - SIZE_MARGIN)
    wanted = min(limit, max(1, math.ceil(excess / (used / rows))))
    return db.execute(
        f'DELETE FROM events WHERE seq IN (SELECT seq FROM events WHERE {DONE_SQL} '
        'ORDER BY created_at LIMIT ?)', (wanted,)).rowcount


def release_free_pages(db: sqlite3.Connection) -> None:
    """Give the free pages back to the file system (the file shrinks at the checkpoint)."""
    # executescript steps the pragma to its end; execute() would free one page only.
    db.executescript('PRAGMA incremental_vacuum;')
    db.execute('PRAGMA wal_checkpoint(TRUNCATE)')


def files_bytes(paths: Iterable[Path]) -> int:
    """Return the summed size of the files that exist among ``paths``."""
    total = 0
    for path in paths:
        try:
            total += path.stat().st_size
        except OSError:
            continue  # not there (no WAL yet): nothing on disk
    return total


@dataclass(frozen=True)
class DiskUsage:
    """Bytes on disk of the outbox: its database (with WAL) and its snapshot files."""

    database: int
    snapshots: int


class KeptHistory:
    """The outbox's part that keeps its history within bounds (mixed into ``Outbox``)."""

    folder: Path
    history_days: float  # sent events are kept this long (0: no bound)
    history_bytes: int  # and the database within this size (0: no bound)
    pruned: int  # done events deleted by this instance
    _next_prune: float  # monotonic time of the next prune by enqueue
    _db: sqlite3.Connection
    _lock: ContextManager[Any]

    def prune_history(self, now: Optional[float] = None) -> int:
        """
        Delete the oldest sent events past ``history_days`` or ``history_bytes``.

        Never an event still to send. Rows go in batches (the lock is let go
        between them), then the freed pages are handed back to the file
        system. Returns how many events were deleted.
        """
        now = time.time() if now is None else now
        self._next_prune = time.monotonic() + PRUNE_EVERY_S
        deleted = 0
        while True:
            with self._lock:
                batch = 0
                if self.history_days > 0:
                    batch = expired_batch(self._db, now - self.history_days * DAY_S,
                                          PRUNE_BATCH)
                if not batch and self.history_bytes > 0:
                    batch = oversize_batch(self._db, self.history_bytes, PRUNE_BATCH)
            deleted += batch
            if not batch:
                break
        if deleted:
            with self._lock:
                release_free_pages(self._db)
            self.pruned += deleted
        return deleted

    def disk_usage(self) -> DiskUsage:
        """Return the bytes on disk of the database (WAL included) and of the snapshots."""
        database = files_bytes(self.folder / f'outbox.db{suffix}'
                               for suffix in ('', '-wal', '-shm'))
        with self._lock:  # the files of pending snapshots: the others are deleted
            snapshots = self._db.execute(
                f'SELECT COALESCE(SUM(image_bytes), 0) FROM events WHERE {PENDING_IMAGE_SQL}'
            ).fetchone()[0]
        return DiskUsage(database, int(snapshots))
