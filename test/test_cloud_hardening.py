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

"""Hostile and concurrent input against the real server (SQLite and PostgreSQL)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
import hashlib
import os
from pathlib import Path
import sqlite3
import struct
import subprocess
import uuid

from cloud_helpers import (
    add_device, alert_body, CloudServer, first_scan_of_one_component, flat_jpeg, Fleet,
    jpeg_bytes, PeakMemory)
import pytest
import requests

from vehicle_detection.wire import utc_iso


def huge_header(data: bytes, width: int, height: int) -> bytes:
    """Return ``data`` with its frame header claiming ``width`` x ``height`` pixels."""
    at = data.index(b'\xff\xc0')  # baseline start-of-frame: length, precision, height, width
    return data[:at + 5] + struct.pack('>HH', height, width) + data[at + 9:]


def post_raw(fleet: Fleet, path: str, text: str) -> requests.Response:
    return requests.post(f'{fleet.url}{path}', data=text.encode('utf-8', 'surrogatepass'),
                         timeout=10, headers={'X-API-Key': fleet.keys['edge-1'],
                                              'Content-Type': 'application/json'})


def test_implausible_detection_times_are_refused(fleet: Fleet) -> None:
    now = datetime.now(timezone.utc)
    for moment in ('9999-12-31T23:59:59.9995Z', utc_iso(now + timedelta(hours=1)),
                   '1999-12-31T23:59:59Z', '0001-01-01T00:00:00Z'):
        answer = fleet.post(alert_body('edge-1', detected_at=moment))
        assert answer.status_code == 422, (moment, answer.text)
        assert 'detected_at' in str(answer.json()['detail'][0]['loc'])
    assert fleet.post(alert_body('edge-1', detected_at=utc_iso(now))).status_code == 201
    stats = requests.get(f'{fleet.url}/stats', timeout=10)
    assert stats.status_code == 200 and stats.json()['total'] >= 1


@pytest.mark.parametrize('field, raw', [
    ('confidence', 'NaN'), ('confidence', 'Infinity'), ('confidence', '1e400'),
    ('bbox', '[0, 0, NaN, 5]'), ('bbox', '[0, 0, -Infinity, 5]'),
    ('class_name', '"\\ud800car"'), ('class_name', '"car\\u0000"'),
    ('camera_id', '"cam\\u0000"')])
def test_non_finite_numbers_and_bad_text_are_422(fleet: Fleet, field: str, raw: str) -> None:
    body = alert_body('edge-1')
    marker = f'"{field}": "@@"'
    text = str({**body, field: '@@'}).replace("'", '"').replace(marker, f'"{field}": {raw}')
    answer = post_raw(fleet, '/alerts', text)
    assert answer.status_code == 422, answer.text
    assert answer.json()['detail'][0]['loc'][-1] in (field, 0, 1, 2, 3)


def test_bad_heartbeats_and_queries_are_422(fleet: Fleet) -> None:
    for text in ('{"cpu_percent": NaN}', '{"uptime_s": 1e400}', '{"queue_depth": 1e400}',
                 '{"link_state": "up\\u0000"}', '{"link_state": "\\udfff"}',
                 '{"retries": 100000000000000000000000}', '{"\\ud800": 1}'):
        answer = post_raw(fleet, '/devices/edge-1/heartbeat', text)
        assert answer.status_code == 422, (text, answer.text)
    for query in ({'class_name': 'car\x00'}, {'device': 'edge\x00'}):
        answer = requests.get(f'{fleet.url}/alerts', params=query, timeout=10)
        assert answer.status_code == 422, answer.text
    assert requests.get(f'{fleet.url}/alerts/%00', timeout=10).status_code == 422
    assert requests.get(f'{fleet.url}/alerts/%00/image', timeout=10).status_code == 422


@pytest.mark.snapshots
def test_oversized_and_truncated_jpegs_are_refused(fleet: Fleet) -> None:
    good = jpeg_bytes()
    for data, why in ((huge_header(good, 20000, 20000), 'pixels'),
                      (good[:len(good) // 10] + b'\xff\xd9', 'cut short'),
                      (good[:len(good) * 9 // 10] + b'\xff\xd9', 'cut short')):
        body = alert_body('edge-1')
        assert fleet.post(body).status_code == 201
        answer = fleet.put_image(body['event_id'], data)
        assert answer.status_code == 415 and why in answer.json()['detail'], answer.text
        alert = requests.get(f'{fleet.url}/alerts/{body["event_id"]}', timeout=10).json()
        assert alert['image_url'] is None
    body = alert_body('edge-1')
    assert fleet.post(body).status_code == 201
    assert fleet.put_image(body['event_id'], good).status_code == 201


def test_progressive_and_multi_scan_jpegs_are_refused_from_their_headers(fleet: Fleet) -> None:
    """A 4096x4096 progressive JPEG needs 96 MiB to decode: 415 before any decoding."""
    costly = [flat_jpeg(4096, 4096, progressive=True, full_chroma=True),
              first_scan_of_one_component(flat_jpeg(4096, 4096, full_chroma=True))]
    events = []
    for _ in range(8):
        body = alert_body('edge-1')
        assert fleet.post(body).status_code == 201
        events.append(body['event_id'])
    with PeakMemory(fleet.server.process.pid) as memory:
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(fleet.put_image, events, costly * 4))
    for answer in answers:
        assert answer.status_code == 415, answer.text
        detail = answer.json()['detail']
        assert 'progressive or multi-scan' in detail and '96.0 MiB' in detail, detail
        assert 'send a baseline JPEG' in detail
    assert memory.growth_mb < 48, f'the server grew by {memory.growth_mb:.0f} MiB'
    # Progressive files within the limit (a 1920x1088 colour picture, or twice its pixels
    # with half-resolution chroma) are stored and thumbnailed; so are big baseline ones.
    accepted = [flat_jpeg(1920, 1088, progressive=True, full_chroma=True),
                flat_jpeg(2720, 1536, progressive=True), flat_jpeg(4096, 4096)]
    stored = events[:len(accepted)]
    for event, data in zip(stored, accepted):
        answer = fleet.put_image(event, data)
        assert answer.status_code == 201, answer.text
    with ThreadPoolExecutor(8) as pool:
        thumbnails = list(pool.map(lambda event: requests.get(
            f'{fleet.url}/alerts/{event}/image', params={'thumbnail': 'true'}, timeout=30),
            stored * 4))
    assert [t.status_code for t in thumbnails] == [200] * len(thumbnails)
    assert all(t.content.startswith(b'\xff\xd8') for t in thumbnails)


@pytest.mark.snapshots
def test_concurrent_uploads_of_one_event_have_one_winner(fleet: Fleet) -> None:
    # Rounds enough for the races to happen: a losing upload taking back the file that
    # a same-bytes winner's row names, a file gone between a failed link and its read.
    for round_ in range(20):
        body = alert_body('edge-1')
        assert fleet.post(body).status_code == 201
        different = [jpeg_bytes(seed=100 * round_ + i) for i in range(8)]
        same = [different[0]] * 4
        with ThreadPoolExecutor(12) as pool:
            answers = list(pool.map(fleet.put_image, [body['event_id']] * 12,
                                    different + same))
        codes = [a.status_code for a in answers]
        assert codes.count(201) == 1, codes
        assert set(codes) <= {200, 201, 409}, codes
        winner = answers[codes.index(201)]
        image = requests.get(f'{fleet.url}/alerts/{body["event_id"]}/image', timeout=10)
        assert image.status_code == 200
        stored = (different + same)[codes.index(201)]
        assert image.content == stored  # the file is the winner's, and so is the row
        assert winner.json()['bytes'] == len(stored)
        for answer, data in zip(answers, different + same):
            assert answer.status_code == (201 if answer is winner else
                                          200 if data == stored else 409)
        assert fleet.store.read(winner.json()['path']) == stored
        assert not [name for name in fleet.store.names() if '.upload-' in name]


@pytest.mark.snapshots
def test_thumbnails_fetched_concurrently(fleet: Fleet) -> None:
    events = []
    for seed in range(12):
        body = alert_body('edge-1')
        assert fleet.post(body).status_code == 201
        assert fleet.put_image(body['event_id'], jpeg_bytes(seed=500 + seed)).status_code == 201
        events.append(body['event_id'])
    urls = [f'{fleet.url}/alerts/{e}/image?thumbnail=true' for e in events] * 8
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda url: requests.get(url, timeout=30), urls))
    assert [a.status_code for a in answers] == [200] * len(urls)
    assert all(a.content.startswith(b'\xff\xd8') for a in answers)
    left = [name for name in fleet.store.names() if '.upload-' in name]
    assert not left, left


def test_left_over_temporary_files_are_removed_at_start(tmp_path: Path) -> None:
    db, storage = f'sqlite:///{tmp_path}/cloud.db', tmp_path / 'images'
    add_device('edge-1', db, str(storage))
    leftovers = [storage / '2026-11-24' / '.upload-k1ll3d', storage / '.upload-x']
    for path in leftovers:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b'half a jpeg')
    server = CloudServer(db, str(storage))
    server.stop()
    assert not any(path.exists() for path in leftovers)
    assert 'removed 2 temporary files' in server.output()


@pytest.fixture(params=['size=600k,nr_inodes=1000', 'size=16m,nr_inodes=16'],
                ids=['no-space', 'no-inodes'])
def small_disk(request, tmp_path: Path):
    """Mount a tmpfs that runs out of bytes, or of inodes (needs root, as CI runs)."""
    mount = tmp_path / 'disk'
    mount.mkdir()
    result = subprocess.run(['mount', '-t', 'tmpfs', '-o', request.param, 'tmpfs',
                             str(mount)], capture_output=True, text=True)
    if result.returncode != 0:  # needs root and mount rights: a desktop user has neither
        reason = f'cannot mount a small tmpfs here: {result.stderr.strip()}'
        if os.environ.get('VD_REQUIRE_ASSETS') == '1':  # CI runs as root: never skip there
            pytest.fail(reason + ' (VD_REQUIRE_ASSETS=1)')
        pytest.skip(reason)
    try:
        yield mount
    finally:
        subprocess.run(['umount', '-l', str(mount)], check=False)


def test_full_disk_and_no_inodes_are_507_and_leave_nothing(tmp_path: Path,
                                                           small_disk: Path) -> None:
    db = f'sqlite:///{tmp_path}/cloud.db'  # the database stays on the big disk
    key = add_device('edge-1', db, str(small_disk))
    # --min-free-mb 0: the start-up check would refuse a disk this small (test_server_checks)
    server = CloudServer(db, str(small_disk), ['--rate-limit', '0', '--min-free-mb', '0'])
    headers = {'X-API-Key': key}
    codes = []
    try:
        for seed in range(30):  # ~60 KB each, and a dated folder for every other one
            body = alert_body('edge-1')
            moment = datetime.now(timezone.utc) - timedelta(days=seed // 2)
            body['detected_at'] = utc_iso(moment)
            assert requests.post(f'{server.url}/api/v1/alerts', json=body, headers=headers,
                                 timeout=10).status_code == 201  # alerts still get in
            answer = requests.put(f'{server.url}/api/v1/alerts/{body["event_id"]}/image',
                                  data=jpeg_bytes(seed=seed), timeout=10,
                                  headers={**headers, 'Content-Type': 'image/jpeg'})
            codes.append(answer.status_code)
    finally:
        server.stop()
    assert codes[0] == 201 and 507 in codes and 500 not in codes, codes
    assert set(codes) <= {201, 507}, codes
    assert not list(small_disk.rglob('.upload-*'))
    with sqlite3.connect(tmp_path / 'cloud.db') as connection:
        rows = connection.execute('SELECT image_path, image_sha256 FROM alerts '
                                  'WHERE image_path IS NOT NULL').fetchall()
    assert len(rows) == codes.count(201)
    for path, digest in rows:  # every row's file is whole
        assert hashlib.sha256((small_disk / path).read_bytes()).hexdigest() == digest


def test_event_ids_are_uuids_everywhere(fleet: Fleet) -> None:
    assert requests.get(f'{fleet.url}/alerts/{uuid.uuid4()}', timeout=10).status_code == 404
