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
The durable outbox: every event is on disk before any byte goes on the wire.

One SQLite file (WAL, ``synchronous=FULL``) holds every event (it is also the
local record of detection results) with the state of its alert and of its
snapshot; snapshots are JPEG files beside it, written by rename before the
row that names them is committed. After a crash or ``kill -9`` a pending
event is simply sent again: the server is idempotent on the event id. Sent
events are kept as local history for ``history_days`` or ``history_mb``
(:mod:`outbox_history`), then deleted, oldest first.
"""

from __future__ import annotations

from dataclasses import dataclass
import json
from pathlib import Path
import sqlite3
import threading
import time
from typing import Any, Dict, Iterable, List, Optional

from vehicle_detection.core.atomic_files import write_atomically
from vehicle_detection.core.bridge import outbox_history as history
from vehicle_detection.core.bridge.outbox_history import (
    FAILED_SQL, KeptHistory, OPEN_SQL, PENDING_IMAGE_SQL)

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL,
    alert TEXT NOT NULL,
    image_path TEXT,
    image_bytes INTEGER NOT NULL DEFAULT 0,
    alert_state TEXT NOT NULL DEFAULT 'pending',
    image_state TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    server_errors INTEGER NOT NULL DEFAULT 0,
    held_until REAL NOT NULL DEFAULT 0,
    kind TEXT NOT NULL DEFAULT 'alert',
    holds INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""

# Kinds of event: an alert (with its snapshot), or a period's traffic counts (no snapshot).
ALERT, COUNTS = 'alert', 'counts'
# States. An alert: pending -> sent | failed. A snapshot: pending -> sent | failed,
# or none (no snapshot taken), evicted (storage full), missing (file lost or
# corrupt), skipped (data budget spent), dropped (its alert failed for good: the
# snapshot can never go, its file is removed).
PENDING, SENT, FAILED, DROPPED = 'pending', 'sent', 'failed', 'dropped'
# An event the server keeps answering with an error while it accepts others (a
# poison event) is held back for a while so that the events behind it flow; it is
# kept and tried again, each hold twice the last (the uploader decides: Outbox.hold).
SET_ASIDE_AFTER = 5  # server errors in a row before the event is suspected
ADDED_COLUMNS = {'server_errors': 'INTEGER NOT NULL DEFAULT 0',
                 'held_until': 'REAL NOT NULL DEFAULT 0',
                 'kind': "TEXT NOT NULL DEFAULT 'alert'",
                 'holds': 'INTEGER NOT NULL DEFAULT 0'}  # outboxes of older versions


@dataclass(frozen=True)
class Event:
    """One queued event as the uploader sees it."""

    seq: int
    event_id: str
    created_at: float
    alert: Dict[str, Any]
    image_path: Optional[str]
    alert_state: str
    image_state: str
    kind: str = ALERT  # the body is an alert, or a count record (COUNTS)


@dataclass(frozen=True)
class OutboxStats:
    """Figures for diagnostics and heartbeats."""

    depth: int
    oldest_unsent_s: float
    stored_bytes: int
    evictions: int
    failed: int
    held: int  # open events set aside after repeated server errors


class Outbox(KeptHistory):
    """Events and their snapshots under ``folder``; safe to use from several threads."""

    def __init__(self, folder: str, max_storage_bytes: int = 0,
                 snapshot_dir: str = '', history_days: float = 0.0,
                 history_bytes: int = 0) -> None:
        self.folder = Path(folder).expanduser()
        self.folder.mkdir(parents=True, exist_ok=True)
        self.snapshots = Path(snapshot_dir).expanduser() if snapshot_dir else \
            self.folder / 'snapshots'
        self.snapshots.mkdir(parents=True, exist_ok=True)
        self.max_storage_bytes = max_storage_bytes
        # Local history of sent events: kept this long and within this size (0: no bound).
        self.history_days = history_days
        self.history_bytes = history_bytes
        self.pruned = 0  # done events deleted by this instance
        self._next_prune = 0.0  # monotonic time of the next prune by enqueue
        # Re-entrant: stats() reads meta() under the lock that meta() takes itself.
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.folder / 'outbox.db', check_same_thread=False,
                                   isolation_level=None, timeout=30)
        history.prepare(self._db)  # before the first table of a new outbox
        self._db.execute('PRAGMA journal_mode=WAL')
        self._db.execute('PRAGMA synchronous=FULL')
        self._db.executescript(SCHEMA)
        columns = {row[1] for row in self._db.execute('PRAGMA table_info(events)')}
        for name, declaration in ADDED_COLUMNS.items():
            if name not in columns:
                self._db.execute(f'ALTER TABLE events ADD COLUMN {name} {declaration}')
        self._db.executescript(history.INDEXES)
        history.convert_vacuum(self._db)  # an outbox of an older version, once
        self._remove_orphans()

    # -- writing ---------------------------------------------------------------------
    def enqueue(self, alert: Dict[str, Any], jpeg: Optional[bytes], kind: str = ALERT) -> bool:
        """
        Commit one event (and its snapshot file) to disk; False if already queued.

        ``alert`` is the body to send: an alert, or with ``kind`` COUNTS a count
        record (keyed by its ``record_id``, never with a snapshot).

        The snapshot is fsynced and renamed into place first, so a committed row
        never names a half-written file; a crash in between leaves an orphan
        file that the next start removes.
        """
        event_id = alert['event_id' if kind == ALERT else 'record_id']
        image_path = None
        if jpeg is not None:
            image_path = f'{event_id}.jpg'
            write_atomically(self.snapshots / image_path, jpeg)
        with self._lock:
            cursor = self._db.execute(
                'INSERT OR IGNORE INTO events (event_id, created_at, alert, image_path, '
                'image_bytes, image_state, kind) VALUES (?, ?, ?, ?, ?, ?, ?)',
                (event_id, time.time(), json.dumps(alert), image_path,
                 len(jpeg) if jpeg is not None else 0, PENDING if jpeg is not None else 'none',
                 kind))
            added = cursor.rowcount == 1
        self.enforce_limit()
        if time.monotonic() >= self._next_prune:
            self.prune_history()
        return added

    def mark(self, seq: int, part: str, state: str, error: Optional[str] = None) -> None:
        """Set the state of ``part`` ('alert' or 'image') of event ``seq``."""
        column = {'alert': 'alert_state', 'image': 'image_state'}[part]
        with self._lock:
            self._db.execute(f'UPDATE events SET {column} = ?, last_error = ? WHERE seq = ?',
                             (state, error, seq))
            if part == 'image' and state != PENDING:
                self._drop_snapshot(seq)
            elif part == 'alert' and state == FAILED:
                # Its snapshot can never go: free the disk and the storage bound.
                self._db.execute('UPDATE events SET image_state = ? WHERE seq = ? '
                                 "AND image_state = 'pending'", (DROPPED, seq))
                self._drop_snapshot(seq)

    def count_attempt(self, seq: int, error: str, server_error: bool = False) -> Optional[int]:
        """
        Record one failed try of event ``seq``; say whether it looks like a poison event.

        ``server_error``: the server answered this event with an error (not a
        network failure nor an unexpected answer). Returns None until
        :data:`SET_ASIDE_AFTER` of those came in a row, then how often the event
        was set aside before (:meth:`hold`).
        """
        with self._lock:
            self._db.execute(
                'UPDATE events SET attempts = attempts + 1, last_error = ?, '
                'server_errors = CASE WHEN ? THEN server_errors + 1 ELSE 0 END WHERE seq = ?',
                (error, server_error, seq))
            row = self._db.execute('SELECT server_errors, holds FROM events WHERE seq = ?',
                                   (seq,)).fetchone()
        return row[1] if row is not None and row[0] >= SET_ASIDE_AFTER else None

    def hold(self, seq: int, first_s: float, longest_s: float) -> float:
        """
        Set event ``seq`` aside so that the events behind it go first; return for how long.

        The first hold lasts ``first_s``, each next one twice the last, at most
        ``longest_s``.
        """
        with self._lock:
            row = self._db.execute('SELECT holds FROM events WHERE seq = ?', (seq,)).fetchone()
            seconds = min(longest_s, first_s * 2.0 ** min(row[0] if row else 0, 60))
            self._db.execute('UPDATE events SET held_until = ?, holds = holds + 1 '
                             'WHERE seq = ?', (time.time() + seconds, seq))
        return seconds

    def forgive(self, seqs: Iterable[int]) -> None:
        """Forget the server errors of ``seqs``: they failed with the others (an outage)."""
        with self._lock:
            self._db.executemany('UPDATE events SET server_errors = 0 WHERE seq = ?',
                                 [(seq,) for seq in seqs])

    def release_held(self) -> int:
        """Make every held event due now (the link is healthy again); return how many."""
        with self._lock:
            return self._db.execute(f'UPDATE events SET held_until = 0 WHERE {OPEN_SQL} '
                                    'AND held_until > ?', (time.time(),)).rowcount

    def next_release(self) -> Optional[float]:
        """Return the time (``time.time()``) when the next held event is due, None if none."""
        with self._lock:
            due = self._db.execute(f'SELECT MIN(held_until) FROM events WHERE {OPEN_SQL} '
                                   'AND held_until > ?', (time.time(),)).fetchone()[0]
        return None if due is None else float(due)

    def enforce_limit(self) -> int:
        """Evict the oldest unsent snapshots until storage fits; return how many."""
        if self.max_storage_bytes <= 0:
            return 0
        evicted = 0
        with self._lock:
            while self._stored_bytes() > self.max_storage_bytes:
                row = self._db.execute(
                    f'SELECT seq FROM events WHERE {PENDING_IMAGE_SQL} '
                    'ORDER BY seq LIMIT 1').fetchone()
                if row is None:
                    break  # only alerts left: those are never evicted
                self._db.execute("UPDATE events SET image_state = 'evicted' WHERE seq = ?",
                                 row)
                self._drop_snapshot(row[0])
                self._add_meta('evictions', 1)
                evicted += 1
        return evicted

    # -- reading ---------------------------------------------------------------------
    def next_open(self, after_seq: int = 0) -> Optional[Event]:
        """Return the oldest event still to send and not set aside, after ``after_seq``."""
        with self._lock:
            row = self._db.execute(
                'SELECT seq, event_id, created_at, alert, image_path, alert_state, image_state, '
                f'kind FROM events WHERE {OPEN_SQL} AND seq > ? AND held_until <= ? '
                'ORDER BY seq LIMIT 1', (after_seq, time.time())).fetchone()
        if row is None:
            return None
        return Event(row[0], row[1], row[2], json.loads(row[3]), row[4], row[5], row[6], row[7])

    def read_snapshot(self, event: Event) -> bytes:
        """Return the snapshot bytes of ``event``; OSError when the file is gone."""
        if event.image_path is None:
            raise FileNotFoundError('no snapshot was taken')
        return (self.snapshots / event.image_path).read_bytes()

    def stats(self, now: Optional[float] = None) -> OutboxStats:
        """Return queue depth, age of the oldest unsent event, storage, evictions."""
        now = time.time() if now is None else now
        with self._lock:
            depth, oldest = self._db.execute(
                f'SELECT COUNT(*), MIN(created_at) FROM events WHERE {OPEN_SQL}').fetchone()
            failed = self._db.execute(
                f'SELECT COUNT(*) FROM events WHERE {FAILED_SQL}').fetchone()[0]
            held = self._db.execute(
                f'SELECT COUNT(*) FROM events WHERE {OPEN_SQL} AND held_until > ?',
                (now,)).fetchone()[0]
            return OutboxStats(depth, max(0.0, now - oldest) if oldest else 0.0,
                               self._stored_bytes(), self.meta('evictions'), failed, held)

    def events(self, since: float = 0.0) -> List[Dict[str, Any]]:
        """Return the events recorded at or after ``since`` with their states (oldest first)."""
        with self._lock:
            rows = self._db.execute('SELECT seq, event_id, alert, alert_state, image_state, '
                                    'last_error, created_at, kind FROM events '
                                    'WHERE created_at >= ? ORDER BY seq', (since,)).fetchall()
        return [{'seq': r[0], 'event_id': r[1], 'alert': json.loads(r[2]),
                 'alert_state': r[3], 'image_state': r[4], 'last_error': r[5],
                 'created_at': r[6], 'kind': r[7]} for r in rows]

    # -- meta counters (also used by the data budget) -------------------------------------
    def meta(self, key: str) -> int:
        """Return a persisted counter (0 when unset)."""
        with self._lock:  # one sqlite3 connection serves several threads
            row = self._db.execute('SELECT value FROM meta WHERE key = ?', (key,)).fetchone()
        return int(row[0]) if row else 0

    def add_meta(self, key: str, amount: int) -> int:
        """Add to a persisted counter and return its new value."""
        with self._lock:
            return self._add_meta(key, amount)

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    # -- internals -------------------------------------------------------------------
    def _add_meta(self, key: str, amount: int) -> int:
        self._db.execute('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) '
                         'DO UPDATE SET value = value + excluded.value', (key, amount))
        return self.meta(key)

    def _stored_bytes(self) -> int:
        pending = self._db.execute('SELECT COALESCE(SUM(image_bytes), 0) FROM events '
                                   f'WHERE {PENDING_IMAGE_SQL}').fetchone()[0]
        # The database's logical size: the WAL file grows and shrinks with checkpoints.
        pages = self._db.execute('PRAGMA page_count').fetchone()[0]
        page_size = self._db.execute('PRAGMA page_size').fetchone()[0]
        return int(pending) + pages * page_size

    def _drop_snapshot(self, seq: int) -> None:
        row = self._db.execute('SELECT image_path FROM events WHERE seq = ?', (seq,)).fetchone()
        if row and row[0]:
            (self.snapshots / row[0]).unlink(missing_ok=True)

    def _remove_orphans(self) -> None:
        """Remove snapshot files no pending event names (a crash before the commit)."""
        # Older versions kept the snapshots of alerts that failed for good.
        self._db.execute("UPDATE events SET image_state = ? WHERE alert_state = 'failed' "
                         "AND image_state = 'pending'", (DROPPED,))
        wanted = {row[0] for row in self._db.execute(
            f'SELECT image_path FROM events WHERE {PENDING_IMAGE_SQL}')}
        for path in self.snapshots.iterdir():
            if path.name not in wanted:
                path.unlink(missing_ok=True)
