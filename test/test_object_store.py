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

"""Snapshots in a real S3 server (SeaweedFS on 127.0.0.1): outages, refusals, start-up checks."""

from __future__ import annotations

import os
from pathlib import Path
import subprocess
import time
from typing import Iterator

from botocore.exceptions import ClientError
from cloud_helpers import add_device, alert_body, CLOUD, CloudServer, free_port, jpeg_bytes
from object_stores import BucketTestStore, SeaweedServer
import pytest
import requests
from test_bridge_faults import make_alert, settings, wait_for
from test_shared_snapshots import with_digest

from vehicle_detection.cloud.server.object_store import S3ImageStore
from vehicle_detection.cloud.server.storage import (
    SnapshotMissing, StorageError, StorageFull, StorageUnavailable)
from vehicle_detection.core.bridge.budget import DataBudget
from vehicle_detection.core.bridge.outbox import Outbox
from vehicle_detection.core.bridge.uploader import Uploader


@pytest.fixture
def own_seaweed() -> Iterator[SeaweedServer]:
    """Start a SeaweedFS for one test alone (it gets stopped and started)."""
    server = SeaweedServer()
    try:
        yield server
    finally:
        server.stop()


def put(server: CloudServer, key: str, event: str, data: bytes) -> requests.Response:
    return requests.put(f'{server.url}/api/v1/alerts/{event}/image', data=data, timeout=30,
                        headers={'X-API-Key': key, 'Content-Type': 'image/jpeg'})


def post(server: CloudServer, key: str, body: dict) -> requests.Response:
    return requests.post(f'{server.url}/api/v1/alerts', json=body, timeout=30,
                         headers={'X-API-Key': key})


def test_stopped_store_is_503_the_alert_stays_and_the_edge_retries(
        own_seaweed: SeaweedServer, tmp_path: Path) -> None:
    store = BucketTestStore(own_seaweed)
    db = f'sqlite:///{tmp_path}/cloud.db'
    key = add_device('edge-1', db, store.location)
    server = CloudServer(db, store.location, ['--rate-limit', '0'], env=store.env)
    try:
        before = alert_body('edge-1')
        assert post(server, key, before).status_code == 201
        assert put(server, key, before['event_id'], jpeg_bytes(seed=1)).status_code == 201
        own_seaweed.pause()  # hung: connections are taken, nothing answers
        hung = alert_body('edge-1')
        assert post(server, key, hung).status_code == 201
        started = time.monotonic()
        answer = put(server, key, hung['event_id'], jpeg_bytes(seed=4))
        waited = time.monotonic() - started
        assert answer.status_code == 503 and 'does not answer' in answer.json()['detail']
        assert waited < 10, waited  # the edge's own time-out: it gets the 503 and Retry-After
        own_seaweed.kill()

        during = alert_body('edge-1')
        assert post(server, key, during).status_code == 201  # alerts still get in
        started = time.monotonic()
        answer = put(server, key, during['event_id'], jpeg_bytes(seed=2))
        assert answer.status_code == 503, answer.text
        assert answer.headers['Retry-After'] == '30'
        assert time.monotonic() - started < 2  # refused connections: answered at once
        alert = requests.get(f'{server.url}/api/v1/alerts/{during["event_id"]}', timeout=10)
        assert alert.status_code == 200 and alert.json()['image_url'] is None
        # A stored picture that cannot be fetched now is 503, not "no such picture".
        image = requests.get(f'{server.url}/api/v1/alerts/{before["event_id"]}/image',
                             timeout=30)
        assert image.status_code == 503, image.text

        # The edge: its alert is stored, its picture waits and goes once the store is back.
        outbox = Outbox(str(tmp_path / 'edge'))
        frame = jpeg_bytes(seed=3)
        queued = with_digest(make_alert(0), frame)
        outbox.enqueue(queued, frame)
        uploader = Uploader(settings(server.url, key, max_retry_after=0.5,
                                     health_interval=60.0), outbox, DataBudget(outbox, 0))
        uploader.start()
        try:
            wait_for(lambda: outbox.events()[0]['alert_state'] == 'sent', what='alert sent')
            wait_for(lambda: '503' in (outbox.events()[0]['last_error'] or ''),
                     what='the picture refused with 503')
            assert outbox.events()[0]['image_state'] == 'pending'
            own_seaweed.start()
            wait_for(lambda: outbox.stats().depth == 0, timeout=60, what='the picture sent')
        finally:
            uploader.stop()
        assert outbox.events()[0]['image_state'] == 'sent'
        shown = requests.get(f'{server.url}/api/v1/alerts/{queued["event_id"]}/image',
                             timeout=30)
        assert shown.content == frame
        again = requests.get(f'{server.url}/api/v1/alerts/{before["event_id"]}/image',
                             timeout=30)
        assert again.content == jpeg_bytes(seed=1)
    finally:
        server.stop()


def test_store_refusing_for_space_keeps_the_alert_and_stores_nothing(
        seaweedfs: SeaweedServer, tmp_path: Path) -> None:
    """
    Answer 503 when SeaweedFS made the bucket read-only (over its quota).

    SeaweedFS (4.48) refuses such a write, like one with no volume left, with a
    plain 500 InternalError: nothing says "full", so it is answered as a store
    that cannot take it now (503, try later), and the alert row stays.
    """
    store = BucketTestStore(seaweedfs)
    db = f'sqlite:///{tmp_path}/cloud.db'
    key = add_device('edge-1', db, store.location)
    server = CloudServer(db, store.location, ['--rate-limit', '0'], env=store.env)
    try:
        for seed in range(20):  # 1.2 MB in 60 KB pictures
            body = alert_body('edge-1')
            assert post(server, key, body).status_code == 201
            assert put(server, key, body['event_id'], jpeg_bytes(seed=seed)).status_code == 201
        seaweedfs.shell(f's3.bucket.quota -name={store.bucket} -op=set -sizeMB=1')
        # The usage it compares comes with the volumes' heartbeats: apply until it bites.
        wait_for(lambda: 'read only' in seaweedfs.shell('s3.bucket.quota.enforce -apply'),
                 timeout=60, what='the bucket made read-only')
        refused = alert_body('edge-1')
        assert post(server, key, refused).status_code == 201
        answer = put(server, key, refused['event_id'], jpeg_bytes(seed=99))
        assert answer.status_code == 503, answer.text
        assert 'InternalError' in answer.json()['detail']
        alert = requests.get(f'{server.url}/api/v1/alerts/{refused["event_id"]}', timeout=10)
        assert alert.status_code == 200 and alert.json()['image_url'] is None
        assert not [name for name in store.names() if refused['event_id'] in name]
    finally:
        server.stop()
        seaweedfs.shell(f's3.bucket.quota -name={store.bucket} -op=remove\n'
                        's3.bucket.quota.enforce -apply')


def test_answers_that_say_full_are_507_the_rest_503(seaweedfs: SeaweedServer) -> None:
    """The S3 error codes of stores that do say "full" (MinIO, Ceph) map to 507."""
    store = S3ImageStore(seaweedfs.new_bucket(), 'snapshots', client=seaweedfs.client())

    def answer(code: str, status: int) -> ClientError:
        return ClientError({'Error': {'Code': code, 'Message': 'refused'},
                            'ResponseMetadata': {'HTTPStatusCode': status}}, 'PutObject')

    for code, status in (('XMinioStorageFull', 507), ('QuotaExceeded', 403),
                         ('InsufficientStorage', 507), ('SomethingElse', 507)):
        assert isinstance(store._error('store', 'a.jpg', answer(code, status)), StorageFull)
    for code, status in (('InternalError', 500), ('SlowDown', 503), ('AccessDenied', 403),
                         ('NoSuchBucket', 404)):
        assert isinstance(store._error('store', 'a.jpg', answer(code, status)),
                          StorageUnavailable), code
    assert isinstance(store._error('read', 'a.jpg', answer('NoSuchKey', 404)), SnapshotMissing)
    # And from the real server: a missing object, a missing bucket.
    with pytest.raises(SnapshotMissing):
        store.get('2026-11-23/missing.jpg')
    with pytest.raises(StorageUnavailable, match='does not exist'):
        S3ImageStore('vd-no-such-bucket', 'p', client=seaweedfs.client()).get('2026-11-23/a.jpg')


def test_names_cannot_leave_the_prefix(seaweedfs: SeaweedServer) -> None:
    bucket = seaweedfs.new_bucket()
    store = S3ImageStore(bucket, 'snapshots', client=seaweedfs.client())
    data = jpeg_bytes()
    for name in ('../escape.jpg', '/abs.jpg', '2026-11-23//a.jpg', '2026-11-23/./a.jpg',
                 '2026-11-23/../../a.jpg', '', '2026-11-23/a b.jpg', '2026-11-23\\a.jpg'):
        with pytest.raises(StorageError):
            store.put(name, data)
    assert store.put('2026-11-23/a.jpg', data) is True
    assert store.put('2026-11-23/a.jpg', data) is False  # the same bytes: a no-op
    keys = [item['Key'] for item in seaweedfs.client().list_objects_v2(
        Bucket=bucket).get('Contents', [])]
    assert keys == ['snapshots/2026-11-23/a.jpg']
    with pytest.raises(StorageError):
        S3ImageStore(bucket, '../other', client=seaweedfs.client())
    with pytest.raises(StorageError, match='the bucket is missing'):
        S3ImageStore.from_url('s3:///snapshots')


def serve_error(storage: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([CLOUD, 'serve', '--storage', storage, '--port', str(free_port()),
                           '--db', 'sqlite:///' + env.pop('DB')], capture_output=True, text=True,
                          timeout=60, env={**os.environ, **env})


def test_serve_refuses_a_store_it_cannot_use(seaweedfs: SeaweedServer, tmp_path: Path) -> None:
    db = str(tmp_path / 'cloud.db')
    good = seaweedfs.env()
    cases = [
        ('s3://vd-no-such-bucket/p', good, 'bucket vd-no-such-bucket does not exist'),
        (f's3://{seaweedfs.new_bucket()}/p', {**good, 'AWS_SECRET_ACCESS_KEY': 'wrong'},
         'check the credentials'),
        ('s3://vd-any/p', {**good, 'AWS_ENDPOINT_URL_S3': f'http://127.0.0.1:{free_port()}'},
         'does not answer'),
        ('s3://vd-any/../p', good, 'is not a snapshot name'),
    ]
    for storage, env, expected in cases:
        started = time.monotonic()
        result = serve_error(storage, {**env, 'DB': db})
        assert result.returncode == 2, (storage, result.stdout, result.stderr)
        # The start-up check's line (vehicle-detection-cloud check), with its fix.
        assert f'error: FAIL  storage: {storage}: ' in result.stderr \
            and expected in result.stderr and 'fix: ' in result.stderr, result.stderr
        assert time.monotonic() - started < 30
