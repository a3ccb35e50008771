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
Outbox benchmark: enqueue latency, drain rate and bytes on the wire per alert.

Snapshots are the sample photos at 1280x720 encoded with the bridge's default
settings (640 px wide, quality 70). Three series, side by side: one alert per
frame (held to the targets), three alerts per frame with the snapshot's digest
(what the bridge sends: the server links them to one upload), and three per
frame without it (each alert uploads its copy, as before). Enqueue is the durable part (snapshot
fsync + SQLite commit with ``synchronous=FULL``); the drain goes to a real
server on 127.0.0.1. A fourth series runs the first again on an outbox that
already holds a month of sent history (``--history`` rows, a million by
default, pruned by ``history_days`` like on a box): the targets hold there too.
Targets: enqueue p99 < 10 ms, drain >= 50 events/s, <= 80 KB per alert with
its snapshot. The last line is one JSON object.

    python bench/outbox.py [--events 300] [--history 1000000]
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
import sqlite3
import sys
import tempfile
import threading
import time
import uuid

from bench_stats import percentile
import cv2

from vehicle_detection.core.bridge.budget import DataBudget, SnapshotPlan
from vehicle_detection.core.bridge.config import BridgeSettings
from vehicle_detection.core.bridge.outbox import Outbox
from vehicle_detection.core.bridge.snapshot import encode_snapshot
from vehicle_detection.core.bridge.upload_settings import UploadSettings
from vehicle_detection.core.bridge.uploader import Uploader
from vehicle_detection.wire import Alert

REPO = Path(__file__).resolve().parents[1]
TEST_HELPERS = REPO / 'test'


def fill_history(folder: str, rows: int) -> None:
    """
    Put ``rows`` sent events of the last 30 days into a new outbox (one statement).

    They end a minute ago: the first prune deletes a minute's worth, as on a box.
    """
    Outbox(f'{folder}/edge').close()
    db = sqlite3.connect(f'{folder}/edge/outbox.db', isolation_level=None)
    now = time.time()
    db.execute(
        'WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n LIMIT ?) '
        'INSERT INTO events (event_id, created_at, alert, alert_state, image_state) '
        "SELECT printf('old-%08d', i), ? + i * ?, ?, 'sent', 'sent' FROM n",
        (rows, now - 30 * 86400 - 60, 30 * 86400 / rows, json.dumps(Alert(
            str(uuid.uuid4()), 'bench', 'cam0', '2026-11-23T10:00:00Z', 1, 'car', 0.9,
            (100.0, 120.0, 400.0, 380.0), 1280, 720, 'f' * 64).to_json())))
    db.close()


def run_series(folder: str, events: int, snapshots: list, per_frame: int,
               shared: bool, history: int = 0) -> dict:
    """
    Enqueue ``events`` alerts, ``per_frame`` of them per frame, and drain them to a server.

    ``shared``: alerts carry the snapshot's SHA-256, as the bridge sends them, so the
    server links the alerts of one frame to one upload; without it each alert
    uploads its own copy (how it went before).
    """
    from cloud_helpers import add_device, CloudServer
    settings = BridgeSettings()
    if history:
        fill_history(folder, history)
    # A month of history by days alone: at this traffic the default history_mb would
    # keep about two weeks of it.
    outbox = Outbox(f'{folder}/edge', int(settings.max_storage_mb * 1024 * 1024),
                    history_days=settings.history_days)
    budget = DataBudget(outbox, int(settings.monthly_budget_mb * 1024 * 1024))
    enqueue_ms = []
    for index in range(events):
        jpeg = snapshots[index // per_frame]
        alert = Alert(str(uuid.uuid4()), 'bench', 'cam0', '2026-11-23T10:00:00Z', index,
                      'car', 0.9, (100.0, 120.0, 400.0, 380.0), 1280, 720,
                      hashlib.sha256(jpeg).hexdigest() if shared else None).to_json()
        start = time.perf_counter()
        outbox.enqueue(alert, jpeg)
        enqueue_ms.append((time.perf_counter() - start) * 1e3)
    db, storage = f'sqlite:///{folder}/cloud.db', f'{folder}/images'
    key = add_device('bench', db, storage)
    server = CloudServer(db, storage, ['--rate-limit', '0'])
    uploader = Uploader(UploadSettings(server.url, key, 'bench', health_interval=3600),
                        outbox, budget)
    try:
        start = time.perf_counter()
        uploader.start()
        uploader.wake()
        pause = threading.Event()
        while outbox.stats().depth:
            pause.wait(0.01)
        drain_s = time.perf_counter() - start
    finally:
        uploader.stop()
        server.stop()
    # Includes one /health check: slightly pessimistic.
    return {'enqueue_ms': enqueue_ms, 'drain_s': drain_s,
            'bytes_per_alert': budget.figures().used / events}


def main() -> None:
    """Run the series side by side, then print the figures and one JSON line."""
    parser = argparse.ArgumentParser(description='outbox enqueue/drain benchmark')
    parser.add_argument('--events', type=int, default=300)
    parser.add_argument('--samples', default=str(REPO.parent / 'shared/samples'))
    parser.add_argument('--history', type=int, default=1_000_000,
                        help='sent events already in the outbox of the history series')
    args = parser.parse_args()
    sys.path.insert(0, str(TEST_HELPERS))  # the tests' server fixture, shared

    settings = BridgeSettings()
    photos = [cv2.resize(cv2.imread(str(p)), (1280, 720))
              for p in sorted(Path(args.samples).iterdir()) if p.suffix in ('.png', '.jpg')]
    plan = SnapshotPlan(True, 1.0, settings.snapshot_quality)  # a fresh month: full size
    # One picture per frame, each different (a frame number drawn in): a camera never
    # sends the same bytes twice.
    snapshots = []
    for index in range(args.events):
        frame = photos[index % len(photos)].copy()
        cv2.putText(frame, f'frame {index}', (40, 80), cv2.FONT_HERSHEY_SIMPLEX, 2.0,
                    (255, 255, 255), 3)
        snapshots.append(encode_snapshot(frame, settings.snapshot_max_width,
                                         settings.snapshot_quality,
                                         int(settings.max_image_size_mb * 1024 * 1024), plan))
    series = {}
    for name, per_frame, shared, history in (
            ('one_per_frame', 1, True, 0), ('three_per_frame', 3, True, 0),
            ('three_per_frame_unshared', 3, False, 0),
            ('one_per_frame_month_of_history', 1, True, args.history)):
        with tempfile.TemporaryDirectory() as folder:
            series[name] = run_series(folder, args.events, snapshots, per_frame, shared,
                                      history)
    main_series = series['one_per_frame']
    enqueue_ms, per_alert = main_series['enqueue_ms'], main_series['bytes_per_alert']
    result = {
        'events': args.events,
        'snapshot_bytes_mean': round(sum(map(len, snapshots)) / len(snapshots)),
        'enqueue_p50_ms': round(percentile(enqueue_ms, 0.5), 2),
        'enqueue_p99_ms': round(percentile(enqueue_ms, 0.99), 2),
        'drain_events_per_s': round(args.events / main_series['drain_s'], 1),
        'bytes_per_alert': round(per_alert),
        'projected_month_mb_at_1000_per_day': round(per_alert * 1000 * 30 / 1024 / 1024, 1)}
    shared_bytes = series['three_per_frame']['bytes_per_alert']
    unshared_bytes = series['three_per_frame_unshared']['bytes_per_alert']
    result.update(bytes_per_alert_three_per_frame=round(shared_bytes),
                  bytes_per_alert_three_per_frame_unshared=round(unshared_bytes),
                  shared_over_unshared=round(shared_bytes / unshared_bytes, 3))
    month = series['one_per_frame_month_of_history']
    result.update(history_rows=args.history,
                  history_enqueue_p99_ms=round(percentile(month['enqueue_ms'], 0.99), 2),
                  history_drain_events_per_s=round(args.events / month['drain_s'], 1))
    result['enqueue_ratio'] = round(result['enqueue_p99_ms'] / 10, 3)
    result['drain_ratio'] = round(result['drain_events_per_s'] / 50, 3)
    result['history_enqueue_ratio'] = round(result['history_enqueue_p99_ms'] / 10, 3)
    result['history_drain_ratio'] = round(result['history_drain_events_per_s'] / 50, 3)
    result['bytes_ratio'] = round(per_alert / (80 * 1024), 3)
    result['meets_targets'] = (result['enqueue_ratio'] < 1 and result['drain_ratio'] >= 1
                               and result['history_enqueue_ratio'] < 1
                               and result['history_drain_ratio'] >= 1
                               and result['bytes_ratio'] <= 1)
    print(f'enqueue p50 {result["enqueue_p50_ms"]} ms, p99 {result["enqueue_p99_ms"]} ms '
          f'(target < 10); drain {result["drain_events_per_s"]} events/s (target >= 50); '
          f'{per_alert / 1024:.1f} KB per alert on the wire (target <= 80), '
          f'{result["projected_month_mb_at_1000_per_day"]} MB/month at 1,000 alerts/day')
    print(f'three alerts per frame: {shared_bytes / 1024:.1f} KB per alert with the shared '
          f'snapshot, {unshared_bytes / 1024:.1f} KB when each alert uploads its copy '
          f'({result["shared_over_unshared"]}x)')
    print(f'with {args.history} sent events of history: enqueue p99 '
          f'{result["history_enqueue_p99_ms"]} ms, drain {result["history_drain_events_per_s"]} '
          'events/s')
    print(json.dumps(result))


if __name__ == '__main__':
    main()
