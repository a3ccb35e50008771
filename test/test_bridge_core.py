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

"""Unit tests of the bridge core without ROS or network: policy, budget, snapshots, outbox."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
import threading
import time
import uuid

import numpy as np
import pytest

from vehicle_detection.core.bridge.budget import DataBudget, PROTOCOL_OVERHEAD_BYTES
from vehicle_detection.core.bridge.config import BRIDGE_PARAMS, insecure_url, resolve_api_key
from vehicle_detection.core.bridge.outbox import Outbox
from vehicle_detection.core.bridge.snapshot import encode_snapshot, FrameRing
from vehicle_detection.core.params import defaults
from vehicle_detection.wire import Alert


class MemoryCounters(dict):
    def meta(self, key: str) -> int:
        return self.get(key, 0)

    def add_meta(self, key: str, amount: int) -> int:
        self[key] = self.meta(key) + amount
        return self[key]


def test_budget_counts_projects_and_plans() -> None:
    mid_month = datetime(2026, 11, 16, tzinfo=timezone.utc).timestamp()  # 15 of 30 days
    counters = MemoryCounters()
    budget = DataBudget(counters, 1000 * 1000, clock=lambda: mid_month)
    budget.record(1000, 100)
    figures = budget.figures()
    assert figures.used == 1100 + PROTOCOL_OVERHEAD_BYTES
    assert figures.projected == pytest.approx(2 * figures.used, rel=0.01)
    assert budget.plan(70).scale == 1.0 and budget.plan(70).quality == 70  # plenty left
    counters['bytes:2026-11'] = 425_000  # projects 850 kB: 85 % of budget
    half = budget.plan(70)
    assert half.send_images and 0.5 < half.scale < 1.0 and half.quality == 70
    counters['bytes:2026-11'] = 550_000  # projects 1.1 MB: resolution and quality cut
    cut = budget.plan(70)
    assert cut.scale == 0.5 and 40 <= cut.quality < 70
    counters['bytes:2026-11'] = 1_000_000
    assert not budget.plan(70).send_images
    december = DataBudget(counters, 1000 * 1000, clock=lambda: datetime(
        2026, 12, 2, tzinfo=timezone.utc).timestamp())
    assert december.figures().used == 0  # a new month starts from zero


def test_budget_persists_across_restarts(tmp_path: Path) -> None:
    first = Outbox(str(tmp_path))
    DataBudget(first, 10**9).record(5000, 0)
    first.close()
    assert DataBudget(Outbox(str(tmp_path)), 10**9).figures().used == 5000 + \
        PROTOCOL_OVERHEAD_BYTES


def test_snapshot_respects_size_cap_and_plan() -> None:
    from vehicle_detection.core.bridge.budget import SnapshotPlan
    image = np.random.default_rng(0).integers(0, 255, (720, 1280, 3), np.uint8)
    full = encode_snapshot(image, 640, 80, 10**7, SnapshotPlan(True, 1.0, 80))
    capped = encode_snapshot(image, 640, 80, 40_000, SnapshotPlan(True, 1.0, 80))
    assert len(capped) <= 40_000 < len(full)
    small = encode_snapshot(image, 640, 80, 10**7, SnapshotPlan(True, 0.5, 80))
    import cv2
    assert cv2.imdecode(np.frombuffer(small, np.uint8), cv2.IMREAD_COLOR).shape[1] == 320


def test_frame_ring_finds_the_exact_stamp() -> None:
    ring = FrameRing(3)
    for stamp in range(5):
        ring.add(stamp, np.full((2, 2, 3), stamp, np.uint8))
    assert ring.get(4)[0, 0, 0] == 4 and ring.get(2)[0, 0, 0] == 2
    assert ring.get(1) is None  # fell out of the ring


def test_frame_ring_finds_the_nearest_frame_within_a_bound() -> None:
    ring = FrameRing(3)
    for stamp in (100, 200, 300):
        ring.add(stamp, np.full((2, 2), stamp // 100, np.uint8))
    assert int(ring.nearest(240, 50)[0, 0]) == 2
    assert int(ring.nearest(290, 50)[0, 0]) == 3
    assert ring.nearest(400, 50) is None and FrameRing(3).nearest(0, 10) is None


def test_frame_ring_waits_for_a_frame_that_lags_its_detections() -> None:
    ring = FrameRing(3)
    ring.add(5, np.full((2, 2, 3), 5, np.uint8))
    found: list = []
    waiter = threading.Thread(target=lambda: found.append(ring.wait_for(7, 30.0)))
    waiter.start()
    ring.add(7, np.full((2, 2, 3), 7, np.uint8))
    waiter.join(10.0)
    assert not waiter.is_alive() and found[0][0, 0, 0] == 7
    # A later frame means this one is lost: the wait ends well before its timeout.
    waiter = threading.Thread(target=lambda: found.append(ring.wait_for(8, 30.0)))
    waiter.start()
    ring.add(9, np.full((2, 2, 3), 9, np.uint8))
    waiter.join(10.0)
    assert not waiter.is_alive() and found[1] is None
    assert ring.wait_for(20, 0.01) is None  # nothing came: gives up after the timeout


def test_outbox_survives_reopen_and_removes_orphans(tmp_path: Path) -> None:
    outbox = Outbox(str(tmp_path))
    assert outbox.enqueue({'event_id': 'e1'}, b'\xff\xd8jpeg\xff\xd9')
    assert not outbox.enqueue({'event_id': 'e1'}, None)  # same event: one row
    (outbox.snapshots / 'orphan.jpg').write_bytes(b'x')  # a crash before the commit
    outbox.close()
    again = Outbox(str(tmp_path))
    assert not (again.snapshots / 'orphan.jpg').exists()
    event = again.next_open()
    assert event is not None and again.read_snapshot(event) == b'\xff\xd8jpeg\xff\xd9'
    assert again.stats().depth == 1


def test_api_key_comes_from_env_then_file(tmp_path: Path, monkeypatch) -> None:
    values = defaults(BRIDGE_PARAMS)
    monkeypatch.delenv('VD_CLOUD_API_KEY', raising=False)
    assert resolve_api_key(values) == ('', 'nowhere')
    (tmp_path / 'key').write_text('from-file\n')
    values['api_key_file'] = str(tmp_path / 'key')
    assert resolve_api_key(values)[0] == 'from-file'
    monkeypatch.setenv('VD_CLOUD_API_KEY', 'from-env')
    assert resolve_api_key(values) == ('from-env', 'VD_CLOUD_API_KEY')
    monkeypatch.delenv('VD_CLOUD_API_KEY')
    values['api_key_file'] = str(tmp_path / 'missing')
    with pytest.raises(ValueError, match='missing'):
        resolve_api_key(values)


def test_system_figures_are_plausible() -> None:
    from vehicle_detection.core.bridge.system_health import system_figures

    figures = system_figures()
    assert 0 <= figures['cpu_percent'] <= 100 * 1024 and 0 < figures['memory_percent'] <= 100
    assert 'gpu_percent' not in figures or 0 <= figures['gpu_percent'] <= 100


@pytest.mark.parametrize('change', [
    {'confidence': float('nan')}, {'confidence': 1.5}, {'bbox': (0.0, 0.0, float('inf'), 5.0)},
    {'class_name': 'car\x00'}, {'class_name': '\ud800'}, {'device_id': 'edge 1'},
    {'camera_id': '../cam'}])
def test_alerts_the_server_would_refuse_are_never_built(change: dict) -> None:
    fields = {'event_id': str(uuid.uuid4()), 'device_id': 'edge-1', 'camera_id': 'cam0',
              'detected_at': '2026-11-24T10:00:00.000000Z', 'track_id': 3,
              'class_name': 'car', 'confidence': 0.8, 'bbox': (1.0, 2.0, 30.0, 40.0),
              'image_width': 640, 'image_height': 360}
    Alert(**fields)  # valid as given
    with pytest.raises(ValueError):
        Alert(**{**fields, **change})


def test_plain_http_only_to_this_machine_unless_allowed() -> None:
    for url in ('http://127.0.0.1:8000', 'http://localhost:8000/', 'http://[::1]:80',
                'https://cloud.example.com', 'https://10.0.0.7'):
        assert insecure_url(url, allowed=False) is None, url
    for url in ('http://cloud.example.com', 'http://10.0.0.7:8000', 'http://127.0.0.1.nip.io'):
        assert 'unencrypted' in (insecure_url(url, allowed=False) or ''), url
        assert insecure_url(url, allowed=True) is None


def test_run_figures_count_this_run_and_the_whole_queue(tmp_path: Path) -> None:
    from vehicle_detection.core.bridge.run_summary import run_figures

    outbox = Outbox(str(tmp_path))
    outbox.enqueue({'event_id': 'earlier'}, None)  # left by an earlier run, unsent
    since = time.time()
    for name in ('a', 'b', 'c'):
        outbox.enqueue({'event_id': name}, b'\xff\xd8 jpeg \xff\xd9')
    first = next(e for e in outbox.events() if e['event_id'] == 'a')
    outbox.mark(first['seq'], 'alert', 'sent')
    outbox.mark(first['seq'], 'image', 'sent')
    figures = run_figures(outbox, since)
    assert (figures.alerts_this_run, figures.alerts_sent_this_run,
            figures.images_sent_this_run, figures.pending) == (3, 1, 1, 3)


def test_recorder_shares_a_frames_snapshot_and_refuses_what_the_server_would(
        tmp_path: Path) -> None:
    from vehicle_detection.core.bridge.config import BridgeSettings
    from vehicle_detection.core.bridge.recorder import AlertRecorder
    from vehicle_detection.core.events.event import VehicleEvent
    from vehicle_detection.core.events.vehicles import Sighting

    def seen(track: int, stamp: int, confidence: float = 0.8) -> VehicleEvent:
        return VehicleEvent('vehicle', Sighting(track, 'car', confidence, (1.0, 2.0, 30.0, 40.0)),
                            stamp / 1e9, stamp)

    outbox = Outbox(str(tmp_path))
    recorder = AlertRecorder(outbox, DataBudget(outbox, 0))
    settings = BridgeSettings(device_id='gate-1')
    frame = np.random.default_rng(3).integers(0, 255, (360, 640, 3), np.uint8)
    stamp = 1_700_000_000_000_000_000
    for track in (1, 2):  # two vehicles in one frame
        recorder.record(settings, seen(track, stamp), frame)
    recorder.record(settings, seen(3, stamp + 1), None)
    with pytest.raises(ValueError):
        recorder.record(settings, seen(4, stamp, float('nan')), frame)
    events = outbox.events()
    assert recorder.recorded == 3 and len(events) == 3
    digests = [e['alert'].get('image_sha256') for e in events]
    assert digests[0] == digests[1] is not None and digests[2] is None
    assert {e['alert']['device_id'] for e in events} == {'gate-1'}


def test_an_older_outbox_drops_the_snapshots_of_failed_alerts_at_open(tmp_path: Path) -> None:
    import sqlite3

    outbox = Outbox(str(tmp_path))
    outbox.enqueue({'event_id': 'refused'}, b'\xff\xd8 jpeg \xff\xd9')
    outbox.enqueue({'event_id': 'waiting'}, b'\xff\xd8 other \xff\xd9')
    outbox.close()
    with sqlite3.connect(tmp_path / 'outbox.db') as db:  # as an older version left it
        db.execute("UPDATE events SET alert_state = 'failed' WHERE event_id = 'refused'")
    again = Outbox(str(tmp_path))
    assert [e['image_state'] for e in again.events()] == ['dropped', 'pending']
    assert [p.name for p in again.snapshots.iterdir()] == ['waiting.jpg']


@pytest.mark.parametrize('header, seconds', [
    ('120', 120.0), ('86400', 300.0), ('0', 0.0), (' 7 ', 7.0),
    ('Sun, 06 Nov 1994 08:49:37 GMT', 0.0),  # a date past: go now
    ('Sun, 06 Nov 2994 08:49:37 GMT', 300.0),  # far ahead: the cap
    ('', None), ('soon', None), ('-5', None), ('1.5', None), ('\u0661\u0662', None)])
def test_retry_after_reads_seconds_and_http_dates_capped(header: str, seconds) -> None:
    from email.utils import formatdate

    from vehicle_detection.core.bridge.transport import retry_after_seconds

    assert retry_after_seconds(header, 300.0) == seconds
    now = 1_800_000_000.0
    assert retry_after_seconds(formatdate(now + 42, usegmt=True), 300.0, now) == 42.0
