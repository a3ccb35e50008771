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

"""Alerts of one frame share one snapshot: uploaded once, stored once, shown by every alert."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterator, Tuple
import uuid

from cloud_helpers import add_device, alert_body, CloudServer, jpeg_bytes
import pytest
import requests
from test_bridge_faults import drain, make_alert, settings

from vehicle_detection.core.bridge.budget import DataBudget
from vehicle_detection.core.bridge.outbox import Outbox
from vehicle_detection.core.bridge.uploader import Uploader


def with_digest(alert: dict, jpeg: bytes) -> dict:
    return {**alert, 'image_sha256': hashlib.sha256(jpeg).hexdigest()}


def stored_pictures(store) -> list:
    return [name for name in store.names() if name.endswith('.jpg')
            and not name.startswith('.thumbnails/')]


@pytest.fixture
def cloud(tmp_path: Path, snapshot_store) -> Iterator[Tuple[CloudServer, str]]:
    """Run a real server on SQLite, its snapshots on the local disk or in SeaweedFS."""
    db = f'sqlite:///{tmp_path}/cloud.db'
    key = add_device('edge-1', db, snapshot_store.location)
    server = CloudServer(db, snapshot_store.location, ['--rate-limit', '0'],
                         env=snapshot_store.env)
    try:
        yield server, key
    finally:
        server.stop()


def test_one_upload_for_the_alerts_of_one_frame(cloud, tmp_path: Path, snapshot_store) -> None:
    server, key = cloud
    outbox = Outbox(str(tmp_path / 'edge'))
    frame, other = jpeg_bytes(seed=1), jpeg_bytes(seed=2)
    alerts = [with_digest(make_alert(i), frame) for i in range(3)]
    alerts.append(with_digest(make_alert(3), other))
    for alert in alerts:
        outbox.enqueue(alert, frame if alert is not alerts[-1] else other)
    budget = DataBudget(outbox, 0)
    uploader = Uploader(settings(server.url, key, health_interval=60.0), outbox, budget)
    drain(outbox, uploader)

    events = outbox.events()
    assert [e['image_state'] for e in events] == ['sent'] * 4
    assert [bool(e['last_error'] and 'shared' in e['last_error']) for e in events] == [
        False, True, True, False]
    # Two pictures crossed the link (one per frame), not four: under 2.3 pictures' bytes
    # with the four alert bodies, request headers and the answers.
    sent = budget.figures().used
    assert sent < 2.3 * len(frame), (sent, len(frame))
    assert len(stored_pictures(snapshot_store)) == 2
    shown = [requests.get(f'{server.url}/api/v1/alerts/{a["event_id"]}', timeout=5).json()
             for a in alerts]
    pictures = [requests.get(server.url + s['image_url'], timeout=5).content for s in shown]
    assert pictures == [frame, frame, frame, other]  # every alert shows its picture


def test_server_links_by_content_per_device_only(tmp_path: Path, snapshot_store) -> None:
    db, storage = f'sqlite:///{tmp_path}/cloud.db', snapshot_store.location
    keys = {name: add_device(name, db, storage) for name in ('edge-1', 'edge-2')}
    server = CloudServer(db, storage, ['--rate-limit', '0'], env=snapshot_store.env)
    try:
        def post(device: str, **changes) -> requests.Response:
            return requests.post(f'{server.url}/api/v1/alerts', json=alert_body(device, **changes),
                                 headers={'X-API-Key': keys[device]}, timeout=5)

        def put(device: str, event: str, data: bytes) -> requests.Response:
            return requests.put(f'{server.url}/api/v1/alerts/{event}/image', data=data,
                                headers={'X-API-Key': keys[device],
                                         'Content-Type': 'image/jpeg'}, timeout=5)

        jpeg = jpeg_bytes(seed=5)
        digest = hashlib.sha256(jpeg).hexdigest()
        first = str(uuid.uuid4())
        answer = post('edge-1', event_id=first, image_sha256=digest)
        assert answer.status_code == 201 and answer.json()['image_stored'] is False
        assert put('edge-1', first, jpeg).status_code == 201
        # A retry of the first alert says its picture is there.
        assert post('edge-1', event_id=first, image_sha256=digest).json()['image_stored']
        second = post('edge-1', image_sha256=digest).json()
        assert second['created'] and second['image_stored']
        # Another device's identical bytes are not its picture: it must upload its own.
        foreign = post('edge-2', image_sha256=digest).json()
        assert foreign['image_stored'] is False
        assert put('edge-2', foreign['event_id'], jpeg).status_code == 201
        # An edge that does not send the digest uploads the same bytes: stored once.
        plain = post('edge-1').json()
        stored = put('edge-1', plain['event_id'], jpeg).json()
        assert stored['created'] and stored['path'].endswith(f'_{first}.jpg')
        assert len(stored_pictures(snapshot_store)) == 2  # edge-1's picture and edge-2's
        for bad in ('abc', digest.upper(), digest + '0'):
            assert post('edge-1', image_sha256=bad).status_code == 422
    finally:
        server.stop()


def test_alert_body_without_snapshot_has_no_digest() -> None:
    assert 'image_sha256' not in make_alert(0)
