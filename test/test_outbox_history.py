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
The outbox's local history: bounded by age and size, on indexes, shrinking on disk.

Timings are measured by ``bench/outbox.py --history``; here the query plans
of the outbox's own statements (traced while they run) are checked over a
month of history.
"""

from __future__ import annotations

from pathlib import Path
import sqlite3
import time
from typing import List

from vehicle_detection.core.bridge.outbox import Outbox
from vehicle_detection.core.bridge.outbox_history import CACHE_KB, INCREMENTAL

DAY = 86400.0
MB = 1024 * 1024
# The schema of the outboxes written before the history was bounded (no partial
# indexes, no incremental vacuum): a box upgraded in the field opens one of these.
OLD_SCHEMA = """
CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL, alert TEXT NOT NULL, image_path TEXT,
    image_bytes INTEGER NOT NULL DEFAULT 0, alert_state TEXT NOT NULL DEFAULT 'pending',
    image_state TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT);
CREATE INDEX events_open ON events (alert_state, image_state);
CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


def fill_history(path: Path, rows: int, days: float, now: float) -> None:
    """Add ``rows`` sent events spread evenly over the last ``days`` (one SQL statement)."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute('PRAGMA synchronous=OFF')
    db.execute(
        'WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n LIMIT ?) '
        'INSERT INTO events (event_id, created_at, alert, alert_state, image_state) '
        "SELECT printf('old-%08d', i), ? + i * ?, '{\"event_id\": 1}', 'sent', "
        "CASE i % 3 WHEN 0 THEN 'sent' WHEN 1 THEN 'none' ELSE 'evicted' END FROM n",
        (rows, now - days * DAY, days * DAY / rows))
    db.close()


def plans_of(outbox: Outbox, statements: List[str]) -> List[str]:
    """Return the query plan lines of ``statements`` (the outbox's own, as traced)."""
    lines = []
    check = sqlite3.connect(outbox.folder / 'outbox.db')
    for sql in statements:
        if sql.split(None, 1)[0].upper() in ('SELECT', 'DELETE', 'UPDATE'):
            lines += [f'{row[3]}  <- {sql[:80]}'
                      for row in check.execute('EXPLAIN QUERY PLAN ' + sql)]
    check.close()
    return lines


def test_a_month_of_history_costs_the_queue_queries_nothing(tmp_path: Path) -> None:
    now = time.time()
    Outbox(str(tmp_path)).close()
    fill_history(tmp_path / 'outbox.db', 1_000_000, 31.0, now - 60.0)
    outbox = Outbox(str(tmp_path), max_storage_bytes=1024 * MB, history_days=30.0)
    for index in range(3):  # the queue: a few events still to send, one with a snapshot
        outbox.enqueue({'event_id': f'open-{index}'}, b'\xff\xd8jpeg\xff\xd9' if index else None)
    traced: List[str] = []
    outbox._db.set_trace_callback(traced.append)
    assert outbox.next_open().event_id == 'open-0'
    stats = outbox.stats()
    assert stats.depth == 3 and stats.failed == 0
    outbox.enforce_limit()
    outbox.disk_usage()
    outbox.prune_history(now)
    outbox._db.set_trace_callback(None)
    # Every query reads through an index (a partial one on open, done or pending-snapshot
    # events, or the key): none walks the million rows.
    plans = plans_of(outbox, traced)
    assert any('events_open_seq' in line for line in plans), plans
    assert any('events_done_age' in line for line in plans), plans
    assert any('events_pending_image' in line for line in plans), plans
    assert any('events_failed' in line for line in plans), plans
    walks = [line for line in plans if line.startswith('SCAN events')
             and 'INDEX' not in line]
    assert not walks, walks
    # A day's worth (1/31) was older than 30 days: gone (the first enqueue pruned it, the
    # history is pruned once a minute); the queue untouched.
    kept = outbox._db.execute("SELECT COUNT(*) FROM events WHERE alert_state = 'sent'")
    assert abs(kept.fetchone()[0] - 1_000_000 * 30 / 31) < 100  # 60 s: 22 rows
    assert outbox.pruned > 32_000 and outbox.stats().depth == 3


def test_history_is_bounded_by_size_and_the_file_shrinks(tmp_path: Path) -> None:
    now = time.time()
    Outbox(str(tmp_path)).close()
    fill_history(tmp_path / 'outbox.db', 200_000, 10.0, now - 60.0)
    outbox = Outbox(str(tmp_path), history_bytes=4 * MB)
    before = outbox.disk_usage().database
    assert before > 10 * MB
    outbox.enqueue({'event_id': 'unsent'}, None)  # prunes (at most once a minute)
    deleted = outbox.pruned
    after = outbox.disk_usage().database
    assert after <= 4 * MB < before, (before, after)
    assert 150_000 < deleted < 200_000
    events = outbox.events()
    assert [e['event_id'] for e in events if e['alert_state'] == 'pending'] == ['unsent']
    # The oldest went first: what is left is the newest of the history.
    kept = [e['created_at'] for e in events if e['alert_state'] == 'sent']
    assert min(kept) > now - 60.0 - 10.0 * DAY * (1 - len(kept) / 200_000) - 10.0


def test_events_still_to_send_are_never_pruned(tmp_path: Path) -> None:
    outbox = Outbox(str(tmp_path), history_days=1.0, history_bytes=1)
    for index in range(6):
        outbox.enqueue({'event_id': f'e{index}'}, b'\xff\xd8jpeg\xff\xd9')
    sent_alert, done, failed, held = 1, 2, 3, 4  # seq of each case; 5 and 6 stay pending
    outbox.mark(sent_alert, 'alert', 'sent')  # its snapshot is still to go
    outbox.mark(done, 'alert', 'sent')
    outbox.mark(done, 'image', 'sent')
    outbox.mark(failed, 'alert', 'failed', 'HTTP 422')
    outbox.count_attempt(held, 'HTTP 500', server_error=True)
    outbox._db.execute('UPDATE events SET created_at = created_at - 3 * 86400')
    assert outbox.prune_history() == 1
    left = {e['seq']: (e['alert_state'], e['image_state']) for e in outbox.events()}
    assert sorted(left) == [sent_alert, failed, held, 5, 6]
    assert left[sent_alert] == ('sent', 'pending') and outbox.next_open() is not None
    assert outbox.read_snapshot(outbox.next_open())  # its file is still there


def test_an_outbox_of_an_older_version_is_converted_once(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / 'outbox.db')  # one transaction for the rows
    db.executescript(OLD_SCHEMA)
    db.executemany('INSERT INTO events (event_id, created_at, alert, alert_state, image_state) '
                   "VALUES (?, ?, '{}', ?, 'none')",
                   [(f'e{i}', 1e9 + i, 'sent' if i % 2 else 'pending') for i in range(5000)])
    db.commit()
    assert db.execute('PRAGMA auto_vacuum').fetchone()[0] == 0
    db.close()
    outbox = Outbox(str(tmp_path), history_bytes=1)
    assert outbox._db.execute('PRAGMA auto_vacuum').fetchone()[0] == INCREMENTAL
    assert outbox._db.execute('PRAGMA cache_size').fetchone()[0] == -CACHE_KB  # bounded
    indexes = {row[0] for row in outbox._db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert 'events_open' not in indexes
    assert {'events_open_seq', 'events_done_age', 'events_pending_image'} <= indexes
    size = outbox.disk_usage().database
    outbox.prune_history()  # every sent event goes (size limit of 1 byte); pending stay
    assert outbox.stats().depth == 2500 and len(outbox.events()) == 2500
    assert outbox.disk_usage().database < size
    outbox.close()
    again = Outbox(str(tmp_path))  # converted already: opens without a rewrite
    assert again.stats().depth == 2500
