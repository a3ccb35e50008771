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

"""The cloud server's API against the real server, on SQLite and on PostgreSQL."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
import re
import sqlite3
import uuid

from cloud_helpers import add_device, alert_body, cloud_cli, CloudServer, Fleet, jpeg_bytes
import pytest
import requests

from vehicle_detection.cloud.server.models import AlertIn, HeartbeatIn
from vehicle_detection.wire import ALERT_FIELDS, HEARTBEAT_FIELDS


def test_models_follow_the_wire_contract() -> None:
    assert tuple(AlertIn.model_fields) == ALERT_FIELDS
    assert set(HeartbeatIn.model_fields) == set(HEARTBEAT_FIELDS)


def test_health_needs_no_key(fleet: Fleet) -> None:
    answer = requests.get(f'{fleet.url}/health', timeout=5)
    assert answer.status_code == 200 and answer.json()['status'] == 'ok'


def test_alert_is_idempotent_on_event_id(fleet: Fleet) -> None:
    body = alert_body('edge-1')
    first = fleet.post(body, **{'Idempotency-Key': body['event_id']})
    assert first.status_code == 201 and first.json()['created'] is True
    again = fleet.post(body)
    assert again.status_code == 200 and again.json()['id'] == first.json()['id']
    stored = requests.get(f'{fleet.url}/alerts/{body["event_id"]}', timeout=5).json()
    assert stored['class_name'] == 'car' and stored['bbox'] == [10.0, 20.0, 110.0, 90.0]
    assert stored['detected_at'].startswith(body['detected_at'][:-2])  # to the microsecond


def test_concurrent_duplicates_make_one_row(fleet: Fleet) -> None:
    body = alert_body('edge-1')
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda _: fleet.post(body), range(32)))
    assert {a.status_code for a in answers} <= {200, 201}
    assert [a.status_code for a in answers].count(201) == 1
    assert len({a.json()['id'] for a in answers}) == 1
    page = requests.get(f'{fleet.url}/alerts', params={'limit': 500}, timeout=5).json()
    assert [a['event_id'] for a in page['items']].count(body['event_id']) == 1


def test_keys_are_checked(fleet: Fleet) -> None:
    body = alert_body('edge-1')
    assert requests.post(f'{fleet.url}/alerts', json=body, timeout=5).status_code == 401
    bad = requests.post(f'{fleet.url}/alerts', json=body, headers={'X-API-Key': 'vdk_nope'},
                        timeout=5)
    assert bad.status_code == 401
    # A key writes for its own device only: whatever name the body or path gives, the
    # alert and the heartbeat are filed under the key's device (a device renamed in
    # its config.yaml keeps working), and the answer says which.
    answer = fleet.post(body, device='edge-2')
    assert answer.status_code == 201 and answer.json()['device_id'] == 'edge-2'
    stored = requests.get(f'{fleet.url}/alerts/{body["event_id"]}', timeout=5).json()
    assert stored['device_id'] == 'edge-2'
    heartbeat = requests.post(f'{fleet.url}/devices/edge-1/heartbeat', timeout=5,
                              json={'link_state': 'from-edge-2'},
                              headers={'X-API-Key': fleet.keys['edge-2']})
    assert heartbeat.status_code == 200 and heartbeat.json()['device_id'] == 'edge-2'
    devices = {d['name']: d for d in requests.get(f'{fleet.url}/devices', timeout=5).json()}
    assert devices['edge-1']['health'].get('link_state') != 'from-edge-2'
    assert devices['edge-2']['health']['link_state'] == 'from-edge-2'


def test_revoked_key_is_refused(fleet: Fleet) -> None:
    key = add_device('edge-old', fleet.server.db, fleet.server.storage)
    cloud_cli('revoke-device', 'edge-old', db=fleet.server.db, storage=fleet.server.storage)
    answer = requests.post(f'{fleet.url}/alerts', json=alert_body('edge-old'), timeout=5,
                           headers={'X-API-Key': key})
    assert answer.status_code == 401
    listing = cloud_cli('list-devices', db=fleet.server.db, storage=fleet.server.storage)
    assert re.search(r'edge-old\s+revoked', listing.stdout)


def test_invalid_bodies_are_422(fleet: Fleet) -> None:
    headers = {'X-API-Key': fleet.keys['edge-1'], 'Content-Type': 'application/json'}
    broken = requests.post(f'{fleet.url}/alerts', data=b'{"event_id": ', headers=headers,
                           timeout=5)
    assert broken.status_code == 422
    for change in ({'confidence': 1.5}, {'bbox': [5, 5, 1, 1]}, {'event_id': 'not-a-uuid'},
                   {'camera_id': '../etc'}, {'detected_at': '2026-11-23T10:11:12'},
                   {'unexpected': 1}):
        assert fleet.post(alert_body('edge-1', **change)).status_code == 422, change
    body = alert_body('edge-1')
    assert fleet.post(body, **{'Idempotency-Key': str(uuid.uuid4())}).status_code == 422


@pytest.mark.snapshots
def test_snapshot_stored_under_server_made_name(fleet: Fleet) -> None:
    body = alert_body('edge-1', detected_at='2026-11-23T08:09:10Z', camera_id='gate_2')
    assert fleet.post(body).status_code == 201
    data = jpeg_bytes()
    first = fleet.put_image(body['event_id'], data)
    assert first.status_code == 201, first.text
    name = f'2026-11-23/080910_gate_2_{body["event_id"]}.jpg'
    assert first.json()['path'] == name
    assert fleet.store.read(name) == data
    assert fleet.put_image(body['event_id'], data).status_code == 200  # same bytes: no-op
    assert fleet.put_image(body['event_id'], jpeg_bytes(seed=1)).status_code == 409
    assert fleet.store.read(name) == data  # the first stays
    image = requests.get(f'{fleet.url}/alerts/{body["event_id"]}/image', timeout=5)
    assert image.content == data and image.headers['content-type'] == 'image/jpeg'
    thumb = requests.get(f'{fleet.url}/alerts/{body["event_id"]}/image',
                         params={'thumbnail': 'true'}, timeout=5)
    assert thumb.status_code == 200 and len(thumb.content) < len(data)
    # The thumbnail is made once and kept beside the snapshots.
    assert fleet.store.read(f'.thumbnails/{name}') == thumb.content


def _image_fields(fleet: Fleet, event_id: str) -> tuple:
    alert = requests.get(f'{fleet.url}/alerts/{event_id}', timeout=5).json()
    return alert['image_url'], alert['image_bytes']


@pytest.mark.snapshots
def test_image_errors_store_nothing(fleet: Fleet) -> None:
    body = alert_body('edge-1')
    assert fleet.post(body).status_code == 201
    event = body['event_id']
    assert fleet.put_image(str(uuid.uuid4()), jpeg_bytes()).status_code == 404
    assert fleet.put_image(event, jpeg_bytes(), device='edge-2').status_code == 404
    assert fleet.put_image(event, b'\xff\xd8\xff garbage').status_code == 415
    assert fleet.put_image(event, jpeg_bytes()[:-300]).status_code == 415  # truncated
    assert fleet.put_image(event, jpeg_bytes(), content_type='image/png').status_code == 415
    big = jpeg_bytes(1600, 1200, quality=100)
    assert len(big) > 1024 * 1024
    assert fleet.put_image(event, big).status_code == 413

    def chunks():  # no Content-Length: the limit is applied while streaming
        for start in range(0, len(big), 65536):
            yield big[start:start + 65536]
    streamed = requests.put(f'{fleet.url}/alerts/{event}/image', data=chunks(), timeout=10,
                            headers={'X-API-Key': fleet.keys['edge-1'],
                                     'Content-Type': 'image/jpeg'})
    assert streamed.status_code == 413
    assert _image_fields(fleet, event) == (None, None)
    assert not any(event in name for name in fleet.store.names())


def test_path_traversal_is_impossible(fleet: Fleet) -> None:
    for path in ('/alerts/..%2F..%2Fetc%2Fpasswd/image', '/alerts/../../etc/passwd/image'):
        answer = requests.put(fleet.url + path, data=jpeg_bytes(), timeout=5,
                              headers={'X-API-Key': fleet.keys['edge-1'],
                                       'Content-Type': 'image/jpeg'})
        assert answer.status_code in (404, 422)
        assert requests.get(fleet.url + path, timeout=5).status_code in (404, 422)


def test_heartbeat_updates_the_device_panel(fleet: Fleet) -> None:
    figures = {'cpu_percent': 42.5, 'memory_percent': 61.0, 'queue_depth': 3,
               'upload_success_rate': 0.98, 'bytes_month': 123456, 'link_state': 'up',
               'outbox_db_bytes': 4096000, 'snapshot_bytes': 81920, 'log_bytes': 20480}
    answer = requests.post(f'{fleet.url}/devices/edge-2/heartbeat', json=figures, timeout=5,
                           headers={'X-API-Key': fleet.keys['edge-2']})
    assert answer.status_code == 200
    devices = {d['name']: d for d in requests.get(f'{fleet.url}/devices', timeout=5).json()}
    assert devices['edge-2']['online'] and devices['edge-2']['health'] == figures
    assert not devices['edge-1']['online']  # no heartbeat yet


def test_read_filters_and_pages(fleet: Fleet) -> None:
    events = []
    for index, name in enumerate(['bus', 'bus', 'truck']):
        body = alert_body('edge-2', class_name=name, detected_at=f'2026-01-0{index + 1}T00:00:00Z')
        assert fleet.post(body, device='edge-2').status_code == 201
        events.append(body['event_id'])
    buses = requests.get(f'{fleet.url}/alerts', params={'device': 'edge-2', 'class_name': 'bus',
                                                        'limit': 1}, timeout=5).json()
    assert len(buses['items']) == 1 and buses['next_cursor'] is not None
    rest = requests.get(f'{fleet.url}/alerts', params={
        'device': 'edge-2', 'class_name': 'bus', 'before_id': buses['next_cursor']},
        timeout=5).json()
    assert {a['event_id'] for a in buses['items'] + rest['items']} == set(events[:2])
    window = requests.get(f'{fleet.url}/alerts', params={
        'device': 'edge-2', 'since': '2026-01-02T00:00:00Z', 'until': '2026-01-03T00:00:00Z'},
        timeout=5).json()
    assert [a['event_id'] for a in window['items']] == [events[1]]
    stats = requests.get(f'{fleet.url}/stats', params={
        'device': 'edge-2', 'since': '2026-01-01T00:00:00Z', 'until': '2026-01-04T00:00:00Z'},
        timeout=5).json()
    assert stats['per_class'] == {'bus': 2, 'truck': 1} and stats['total'] == 3
    assert [count for _, count in stats['per_hour']] == [1, 1, 1]


def test_out_of_range_queries_are_422_not_500(fleet: Fleet) -> None:
    # Found by the OpenAPI property run: a cursor beyond 64 bits crashed the query.
    answer = requests.get(f'{fleet.url}/alerts', params={'before_id': 2 ** 80}, timeout=5)
    assert answer.status_code == 422
    early = requests.get(f'{fleet.url}/alerts', params={'since': '0583-10-29T00:41:06+08:41'},
                         timeout=5)
    assert early.status_code == 200


@pytest.mark.snapshots
def test_metrics_count_requests_and_storage(fleet: Fleet) -> None:
    body = alert_body('edge-1')
    assert fleet.post(body).status_code == 201
    assert fleet.put_image(body['event_id'], jpeg_bytes(seed=3)).status_code == 201
    for method in ('PROPFIND', 'MKCOL'):  # methods nobody serves: one label set for all
        requests.request(method, fleet.server.url + '/api/v1/health', timeout=5)
    text = requests.get(fleet.server.url + '/metrics', timeout=5).text
    assert 'method="OTHER"' in text and 'PROPFIND' not in text and 'MKCOL' not in text
    assert re.search(r'vd_http_requests_total\{method="POST",route="/api/v1/alerts",'
                     r'status="201"\} [1-9]', text)
    assert 'vd_http_request_duration_seconds_bucket' in text
    stored = float(re.search(r'^vd_snapshot_bytes_stored (\S+)$', text, re.M).group(1))
    assert stored >= len(jpeg_bytes(seed=3))


def test_keys_are_stored_hashed(tmp_path) -> None:
    db = f'sqlite:///{tmp_path}/cloud.db'
    key = add_device('edge-h', db, str(tmp_path / 'images'))
    assert re.fullmatch(r'vdk_[A-Za-z0-9_-]{43}', key)
    rows = sqlite3.connect(tmp_path / 'cloud.db').execute(
        'SELECT name, key_hash FROM devices').fetchall()
    import hashlib
    assert rows == [('edge-h', hashlib.sha256(key.encode()).hexdigest())]
    for path in tmp_path.glob('cloud.db*'):
        assert key.encode() not in path.read_bytes()
    again = cloud_cli('add-device', 'edge-h', db=db, storage=str(tmp_path), check=False)
    assert again.returncode == 1 and 'already exists' in again.stderr


def test_rate_limit_answers_429_with_retry_after(tmp_path) -> None:
    db, storage = f'sqlite:///{tmp_path}/cloud.db', str(tmp_path / 'images')
    key = add_device('edge-r', db, storage)
    server = CloudServer(db, storage, ['--rate-limit', '2'])
    try:
        answers = [requests.post(f'{server.url}/api/v1/devices/edge-r/heartbeat', json={},
                                 headers={'X-API-Key': key}, timeout=5) for _ in range(12)]
    finally:
        server.stop()
    limited = [a for a in answers if a.status_code == 429]
    assert limited and int(limited[0].headers['Retry-After']) >= 1
    assert answers[0].status_code == 200
