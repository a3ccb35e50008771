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
A box runs for months: the core's own state must not grow with the frames it has seen.

Generated traffic (no images, no model) goes through the bridge's event
rules, its counting session and the recorder for 100 000 frames (almost
three hours at 10 fps), and through the tracker for 6 000; every object each
of them keeps (tracks, per-track dicts, remembered places, counted ids,
outbox rows) is counted along the way and must stay within what the traffic
in view needs. The
server's rate limits keep a bucket per client: those of clients gone are dropped;
the runner's monitor counts distinct vehicles without keeping every track id.
"""

from __future__ import annotations

from collections import Counter, deque
from pathlib import Path
import random
import tempfile
from typing import Dict, Iterator, List, Set, Tuple

from cloud_helpers import cloud_cli
import numpy as np
import pytest

from vehicle_detection.cli.run import Monitor, RECENT_IDS_S
from vehicle_detection.cloud.server import rate_limits
from vehicle_detection.cloud.server.access import PRUNE_AT, RateLimiter
from vehicle_detection.cloud.server.engine import make_engine
from vehicle_detection.core.bridge.budget import DataBudget
from vehicle_detection.core.bridge.config import BridgeSettings
from vehicle_detection.core.bridge.outbox import Outbox
from vehicle_detection.core.bridge.recorder import AlertRecorder
from vehicle_detection.core.bridge.watch import TrafficWatch
from vehicle_detection.core.detection.detections import Detections
from vehicle_detection.core.detection.tracker import ByteTracker
from vehicle_detection.core.events.vehicles import Sighting

FPS = 10.0
START = 1_780_000_000.0  # a clock in 2026: the wire refuses times before 2000
SIZE = (640, 360)
LANES = (80.0, 200.0, 360.0, 480.0)  # x of each lane; the first two drive down the picture
LINES = 'road 0,0.5 1,0.5 towards/away; ramp 0,0.3 1,0.3 towards/away oneway=towards'
ZONES = 'shoulder 0,0.75 0.2,0.75 0.2,1 0,1 dwell=20'
Box = Tuple[float, float, float, float]


def traffic(frames: int, seed: int = 7) -> Iterator[List[Tuple[int, str, Box, float]]]:
    """
    Yield each frame's vehicles: (id, class, box, score), ids as a tracker gives them.

    A vehicle enters every 1.5 s on average and crosses the picture in 4.5 s;
    one in twenty is lost for half a second midway and comes back under a new
    id (as after an occlusion), and every ten minutes one parks on the shoulder
    zone for a minute.
    """
    rng = random.Random(seed)
    moving: List[Dict] = []
    next_id = 1
    parked: Dict = {}
    for index in range(frames):
        if rng.random() < 1 / (1.5 * FPS):
            lane = rng.randrange(len(LANES))
            moving.append({'id': next_id, 'x': LANES[lane] + rng.uniform(-10, 10),
                           'y': -40.0 if lane < 2 else 400.0, 'vy': 8.0 if lane < 2 else -8.0,
                           'kind': rng.choice(('car', 'car', 'truck', 'bus')),
                           'gap': rng.random() < 0.05})
            next_id += 1
        if index % int(600 * FPS) == 300:
            parked = {'id': next_id, 'until': index + 60 * FPS}
            next_id += 1
        seen = []
        for vehicle in moving:
            vehicle['y'] += vehicle['vy']
            if vehicle['gap'] and 170 < vehicle['y'] < 210:
                continue  # hidden: its track is lost here
            if vehicle['gap'] and vehicle['y'] >= 210 and not vehicle.get('refound'):
                vehicle['refound'], vehicle['id'] = True, next_id
                next_id += 1
            x, y = vehicle['x'], vehicle['y']
            seen.append((vehicle['id'], vehicle['kind'], (x, y, x + 60.0, y + 40.0),
                         rng.uniform(0.4, 0.95)))
        moving = [v for v in moving if -60 < v['y'] < 420]
        if parked:
            if index < parked['until']:
                seen.append((parked['id'], 'car', (20.0, 300.0, 90.0, 345.0), 0.9))
            else:
                parked = {}
        yield seen


def held_objects(root: object) -> int:
    """
    Count the elements of every container reachable from ``root`` (each once).

    Walks attributes (``__dict__``, ``__slots__``), dicts, lists, sets, tuples
    and deques: whatever a rule, the counter or the session keeps per track,
    place or period shows up here, whatever its name.
    """
    seen: Set[int] = set()
    stack, total = [root], 0
    while stack:
        item = stack.pop()
        if id(item) in seen or isinstance(item, (str, bytes, int, float, bool, type(None))):
            continue
        seen.add(id(item))
        if isinstance(item, dict):
            total += len(item)
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset, deque)):
            total += len(item)
            stack.extend(item)
        else:
            stack.extend(getattr(item, '__dict__', {}).values())
            stack.extend(getattr(item, name) for name in getattr(item, '__slots__', ())
                         if hasattr(item, name))
    return total


def test_event_rules_counting_and_recorder_stay_bounded_over_100k_frames() -> None:
    # The bridge's own pieces: the event rules (an alert per vehicle, a stopped vehicle
    # in the zone, wrong-way drivers on the one-way line) and the line counts.
    settings = BridgeSettings(counting_lines=LINES, counting_zones=ZONES, count_period=60,
                              min_track_hits=3, track_cooldown=60.0)
    watch = TrafficWatch(settings)
    watch.on_image(SIZE)
    # On tmpfs where there is one: thousands of fsynced enqueues take seconds on a disk.
    shm = Path('/dev/shm')
    with tempfile.TemporaryDirectory(dir=shm if shm.is_dir() else None) as folder:
        outbox = Outbox(folder, history_bytes=256 * 1024)
        recorder = AlertRecorder(outbox, DataBudget(outbox, 0))
        figures: List[Tuple[int, int]] = []
        kinds: Counter = Counter()
        crossings = 0
        for index, vehicles in enumerate(traffic(100_000)):
            sightings = [Sighting(i, kind, score, box) for i, kind, box, score in vehicles]
            watched = watch.update(sightings, int((START + index / FPS) * 1e9))
            for event in watched.events:
                recorder.record(settings, event, None)
                kinds[event.kind] += 1
            crossings += len(watched.crossings)
            for period in watched.closed:
                recorder.record_counts(settings, period)
            if index % 1000 == 999:
                while (queued := outbox.next_open()) is not None:  # as the uploader does
                    outbox.mark(queued.seq, 'alert', 'sent')
                outbox.prune_history()  # what enqueue does once a minute of real time
                figures.append((held_objects(watch), outbox.disk_usage().database))
        outbox.close()
    # It did its work all along: thousands of alerts and crossings, a stop per parking,
    # wrong-way drivers, a count record a minute.
    assert kinds['vehicle'] > 5000 and crossings > 5000, (kinds, crossings)
    assert kinds['stopped_vehicle'] >= 16 and kinds['wrong_way'] > 1000, kinds
    assert recorder.count_records >= 160
    first, second = figures[:len(figures) // 2], figures[len(figures) // 2:]
    for column, limit in ((0, 20_000), (1, 2 * 1024 * 1024)):
        early, late = max(f[column] for f in first), max(f[column] for f in second)
        assert late <= limit, (column, late, limit)
        assert late <= early * 1.25 + 10, (column, early, late)  # no drift upwards


def test_tracker_state_stays_bounded() -> None:
    tracker = ByteTracker()
    rng = np.random.default_rng(3)
    counts = []
    for index, vehicles in enumerate(traffic(6_000, seed=11)):
        boxes = np.array([box for _, _, box, _ in vehicles], np.float32).reshape(-1, 4)
        boxes += rng.normal(0, 1.0, boxes.shape).astype(np.float32)
        tracker.update(Detections(boxes, np.array([s for *_, s in vehicles], np.float32),
                                  np.full(len(vehicles), 2, np.int64),
                                  [kind for _, kind, _, _ in vehicles],
                                  np.full(len(vehicles), -1, np.int64)), SIZE, index / FPS)
        if index % 100 == 99:
            counts.append(len(tracker.tracks) + sum(len(t.votes) for t in tracker.tracks))
    assert tracker._next_id > 350  # many vehicles went through
    half = len(counts) // 2
    assert max(counts) <= 60 and max(counts[half:]) <= max(counts[:half]) + 10, counts


def _scan(limiter: RateLimiter, held) -> List[int]:
    """Acquire for 20 000 clients that each come once (one every 0.1 s); return sizes."""
    sizes = []
    for index in range(20_000):
        limiter.acquire(f'client-{index}', now=1000.0 + index / 10)
        if index % 1000 == 999:
            sizes.append(held())
    # Still a limit: a client hammering now is refused after its burst.
    assert [limiter.acquire('hammer', now=4000.0) for _ in range(11)][-1] is not None
    return sizes


def test_rate_limits_forget_clients_that_went_away(tmp_path: Path, monkeypatch) -> None:
    # Failed logins are limited per client address: an address scan must not pile up
    # one bucket per address for ever (a million addresses here would be 100 MB).
    limiter = RateLimiter(rate=0.5, burst=10.0)
    sizes = _scan(limiter, lambda: len(limiter))
    assert max(sizes) <= 2 * PRUNE_AT, sizes
    # The server's limiter keeps its buckets in the database (shared by instances):
    # an acquisition now and then also deletes those full for a minute. Its draws
    # are seeded here so the bound is the same every run.
    monkeypatch.setattr(rate_limits.random, 'random', random.Random(3).random)
    url = f'sqlite:///{tmp_path}/cloud.db'
    cloud_cli('migrate', db=url, storage=str(tmp_path / 'images'))
    engine = make_engine(url)
    try:
        shared = rate_limits.SharedRateLimiter(rate_limits.buckets_for(engine), 'addr:',
                                               rate=0.5, burst=10.0)

        def rows() -> int:
            with engine.connect() as connection:
                return int(connection.exec_driver_sql(
                    'SELECT COUNT(*) FROM rate_limits').scalar_one())
        sizes = _scan(shared, rows)
        assert max(sizes) <= 6000 and sizes[-1] < 20_000, sizes
    finally:
        engine.dispose()


@pytest.mark.ros
def test_the_runners_monitor_counts_vehicles_without_keeping_every_id(ros_context) -> None:
    monitor = Monitor(ros_context, quiet=True)
    clock = [1000.0]
    monitor.clock = lambda: clock[0]
    try:
        for second in range(7200):  # two hours, a new vehicle a second, each seen for 2 s
            clock[0] = 1000.0 + second
            monitor._count_vehicles([str(second), str(second - 1)] if second else ['0'])
        assert monitor.vehicles == 7200
        assert len(monitor._recent_ids) <= 2 * RECENT_IDS_S  # not one per vehicle ever seen
    finally:
        monitor.close()
        monitor.destroy_node()
