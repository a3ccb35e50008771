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

"""Fault tests of the outbox and uploader against the real cloud server process."""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import json
import os
from pathlib import Path
import random
import subprocess
import sys
import threading
import time
from typing import Dict, Iterator, List, Tuple
import uuid

from cloud_helpers import add_device, CloudServer, free_port, jpeg_bytes
from fake_cloud import expected_answer
import pytest
import requests

from vehicle_detection.core.bridge.budget import DataBudget
from vehicle_detection.core.bridge.outbox import Outbox
from vehicle_detection.core.bridge.uploader import Uploader, UploadSettings
from vehicle_detection.wire import Alert
from waiting import Inbox, wait_until

DRIVER = Path(__file__).resolve().parent / 'bridge_driver.py'


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[Tuple[CloudServer, str]]:
    db, storage = f'sqlite:///{tmp_path}/cloud.db', str(tmp_path / 'images')
    key = add_device('edge-1', db, storage)
    server = CloudServer(db, storage, ['--rate-limit', '0'])
    try:
        yield server, key
    finally:
        server.stop()


def server_alerts(url: str) -> List[dict]:
    """Every alert on the server, oldest first."""
    items: List[dict] = []
    cursor = None
    while True:
        params: Dict[str, object] = {'limit': 500}
        if cursor:
            params['before_id'] = cursor
        page = requests.get(f'{url}/api/v1/alerts', params=params, timeout=10).json()
        items += page['items']
        cursor = page['next_cursor']
        if cursor is None:
            return items[::-1]


def make_alert(index: int, device: str = 'edge-1') -> dict:
    return Alert(str(uuid.uuid4()), device, 'cam0', '2026-11-23T10:00:00Z', index, 'car', 0.9,
                 (1.0, 2.0, 30.0, 40.0), 320, 240).to_json()


def settings(url: str, key: str, **changes: object) -> UploadSettings:
    values = {'api_base_url': url, 'api_key': key, 'device_id': 'edge-1', 'retry_delay': 0.05,
              'retry_max_delay': 0.2, 'upload_interval': 0.2, 'health_interval': 0.2}
    values.update(changes)
    return UploadSettings(**values)  # type: ignore[arg-type]


def wait_for(predicate, timeout: float = 30.0, what: str = 'condition') -> None:
    wait_until(predicate, timeout, what, poll=0.05)


def drain(outbox: Outbox, uploader: Uploader) -> None:
    """Run ``uploader`` until ``outbox`` has nothing left to send."""
    uploader.start()
    try:
        wait_for(lambda: outbox.stats().depth == 0, what='outbox drained')
    finally:
        uploader.stop()


def test_kill_9_at_random_points_loses_and_duplicates_nothing(cloud, tmp_path: Path) -> None:
    server, key = cloud
    total, kills = 60, 20
    env = dict(os.environ, VD_CLOUD_API_KEY=key, PYTHONPATH=str(DRIVER.parent))
    command = [sys.executable, str(DRIVER), str(tmp_path / 'edge'), server.url, 'edge-1',
               str(total)]
    rng = random.Random(1)
    for _ in range(kills):
        process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE)
        try:
            process.wait(timeout=rng.uniform(0.4, 1.2))
        except subprocess.TimeoutExpired:
            process.kill()  # SIGKILL: no clean-up runs
            process.wait()
    final = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert final.returncode == 0 and 'all sent' in final.stdout, final.stderr
    alerts = server_alerts(server.url)
    outbox = Outbox(str(tmp_path / 'edge'))
    local = [event['event_id'] for event in outbox.events()]
    assert len(local) == total
    assert sorted(a['event_id'] for a in alerts) == sorted(local)  # each exactly once
    assert all(a['image_url'] for a in alerts)  # each with its image
    assert all(e['alert_state'] == 'sent' and e['image_state'] == 'sent'
               for e in outbox.events())


def test_backlog_drains_in_order_after_server_restart(cloud, tmp_path: Path) -> None:
    server, key = cloud
    outbox = Outbox(str(tmp_path / 'edge'))
    uploader = Uploader(settings(server.url, key), outbox, DataBudget(outbox, 0))
    uploader.start()
    try:
        ids = []
        for index in range(5):
            alert = make_alert(index)
            outbox.enqueue(alert, jpeg_bytes(seed=index))
            ids.append(alert['event_id'])
            uploader.wake()
        wait_for(lambda: outbox.stats().depth == 0, what='first events sent')
        server.stop()
        for index in range(5, 15):
            alert = make_alert(index)
            outbox.enqueue(alert, jpeg_bytes(seed=index))
            ids.append(alert['event_id'])
            uploader.wake()
        wait_for(lambda: uploader.stats.link_state == 'down', what='link down')
        assert outbox.stats().depth == 10
        restarted = CloudServer(server.db, server.storage, ['--rate-limit', '0'],
                                port=server.port)
        try:
            wait_for(lambda: outbox.stats().depth == 0, what='backlog drained')
            alerts = server_alerts(restarted.url)
        finally:
            restarted.stop()
    finally:
        uploader.stop()
    assert [a['event_id'] for a in alerts] == ids  # in order, nothing lost
    assert all(a['image_url'] for a in alerts)


class Scripted(BaseHTTPRequestHandler):
    """Answers from a script of statuses; records what it received."""

    script: List[Tuple[int, Dict[str, str]]] = []
    seen: List[Tuple[float, str, str]] = []
    inbox: Inbox

    def _answer(self) -> None:
        length = int(self.headers.get('Content-Length') or 0)
        request = self.rfile.read(length)
        Scripted.seen.append((time.monotonic(), self.command, self.path))
        if self.path.endswith(('/health', '/heartbeat')):  # not scripted
            status, headers = 200, {}
        else:
            status, headers = Scripted.script.pop(0) if Scripted.script else (201, {})
            Scripted.inbox((self.command, self.path, status))
        body = json.dumps(expected_answer(self.command, self.path, request)[1]).encode()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = _answer

    def log_message(self, *_args: object) -> None:
        """Keep test output quiet."""


@pytest.fixture
def scripted() -> Iterator[str]:
    Scripted.script, Scripted.seen, Scripted.inbox = [], [], Inbox()
    server = ThreadingHTTPServer(('127.0.0.1', free_port()), Scripted)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f'http://127.0.0.1:{server.server_address[1]}'
    finally:
        server.shutdown()
        server.server_close()


def test_500_and_429_are_retried_per_policy(scripted: str, tmp_path: Path) -> None:
    Scripted.script = [(500, {}), (429, {'Retry-After': '1'}), (201, {}), (201, {})]
    outbox = Outbox(str(tmp_path))
    uploader = Uploader(settings(scripted, 'k', retry_attempts=5), outbox, DataBudget(outbox, 0))
    outbox.enqueue(make_alert(0), jpeg_bytes())
    uploader.start()
    try:
        got = Scripted.inbox.wait_count(4, timeout=10)
        wait_for(lambda: outbox.stats().depth == 0, what='event sent')
    finally:
        uploader.stop()
    assert [(m, s) for m, _, s in got] == [('POST', 500), ('POST', 429), ('POST', 201),
                                           ('PUT', 201)]
    posts = [t for t, m, p in Scripted.seen if m == 'POST' and p.endswith('/alerts')]
    assert len(posts) == 3, Scripted.seen
    assert posts[2] - posts[1] >= 0.95  # Retry-After: 1 honoured
    assert uploader.stats.retries == 2


def test_401_is_reported_not_hammered(scripted: str, tmp_path: Path) -> None:
    Scripted.script = [(401, {})] * 50
    outbox = Outbox(str(tmp_path))
    uploader = Uploader(settings(scripted, 'bad-key'), outbox, DataBudget(outbox, 0))
    outbox.enqueue(make_alert(0), None)
    uploader.start()
    try:
        assert Scripted.inbox.wait_count(1, timeout=10)[0][2] == 401
        wait_for(lambda: uploader.stats.link_state == 'unauthorized', what='401 reported')
        with pytest.raises(AssertionError, match='timed out'):
            Scripted.inbox.wait_count(2, timeout=1.5)  # no second try during the pause
    finally:
        uploader.stop()
    assert 'API key' in uploader.stats.last_error
    assert outbox.events()[0]['alert_state'] == 'pending'  # kept, not dropped


def test_storage_full_evicts_images_first_and_keeps_alerts(cloud, tmp_path: Path) -> None:
    server, key = cloud
    image = jpeg_bytes()
    outbox = Outbox(str(tmp_path / 'edge'))
    base = outbox.stats().stored_bytes
    outbox.max_storage_bytes = base + 4 * len(image) + 64 * 1024
    ids = []
    for index in range(12):
        alert = make_alert(index)
        outbox.enqueue(alert, image)
        ids.append(alert['event_id'])
    stats = outbox.stats()
    assert stats.evictions >= 6 and stats.stored_bytes <= outbox.max_storage_bytes
    states = [e['image_state'] for e in outbox.events()]
    assert states[:stats.evictions] == ['evicted'] * stats.evictions  # oldest first
    assert set(states[stats.evictions:]) == {'pending'}
    uploader = Uploader(settings(server.url, key), outbox, DataBudget(outbox, 0))
    drain(outbox, uploader)
    alerts = {a['event_id']: a for a in server_alerts(server.url)}
    assert list(alerts) == ids or set(alerts) == set(ids)  # every alert kept
    assert sum(1 for a in alerts.values() if a['image_url']) == 12 - stats.evictions


def test_budget_spent_sends_alerts_without_images(cloud, tmp_path: Path) -> None:
    server, key = cloud
    outbox = Outbox(str(tmp_path / 'edge'))
    budget = DataBudget(outbox, 1_000_000)
    budget.record(1_000_000, 0)  # the month's budget is spent
    alert = make_alert(0)
    outbox.enqueue(alert, jpeg_bytes())
    uploader = Uploader(settings(server.url, key), outbox, budget)
    drain(outbox, uploader)
    stored = requests.get(f'{server.url}/api/v1/alerts/{alert["event_id"]}', timeout=5).json()
    assert stored['image_url'] is None
    assert uploader.stats.budget_skipped_images == 1
    assert outbox.events()[0]['image_state'] == 'skipped'


def test_missing_or_corrupt_snapshot_still_sends_the_alert(cloud, tmp_path: Path) -> None:
    server, key = cloud
    outbox = Outbox(str(tmp_path / 'edge'))
    missing, corrupt = make_alert(0), make_alert(1)
    outbox.enqueue(missing, jpeg_bytes())
    outbox.enqueue(corrupt, jpeg_bytes())
    (outbox.snapshots / f'{missing["event_id"]}.jpg').unlink()
    (outbox.snapshots / f'{corrupt["event_id"]}.jpg').write_bytes(jpeg_bytes()[:500])
    uploader = Uploader(settings(server.url, key), outbox, DataBudget(outbox, 0))
    drain(outbox, uploader)
    on_server = {a['event_id'] for a in server_alerts(server.url)}
    assert {missing['event_id'], corrupt['event_id']} <= on_server
    assert [e['image_state'] for e in outbox.events()] == ['missing', 'missing']
    assert uploader.stats.missing_snapshots == 2 and 'snapshot' in uploader.stats.last_error
