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
Two server instances sharing one PostgreSQL and one snapshot store: no state on one host.

The instances are two ``serve`` processes on their own ports, as on two
hosts: one with two workers, one with a single process (hosts need not be
alike). What they share is only the database and the store.
"""

from __future__ import annotations

import http.client
import json
from pathlib import Path
import re
import tempfile
import time
from typing import Dict, Iterator, List
import uuid

from cloud_helpers import add_device, alert_body, cloud_cli, CloudServer, jpeg_bytes
from load_balancer import HAProxy
from object_stores import BucketTestStore
import pytest
import requests
from sqlalchemy import select
from test_bridge_faults import make_alert

from vehicle_detection.cloud.server.db import Alert
from vehicle_detection.cloud.server.engine import make_engine
from vehicle_detection.cloud.server.rate_limits import buckets_for, SharedRateLimiter
from vehicle_detection.core.bridge.budget import DataBudget
from vehicle_detection.core.bridge.outbox import Outbox
from vehicle_detection.core.bridge.upload_settings import UploadSettings
from vehicle_detection.core.bridge.uploader import Uploader
from waiting import wait_until

PASSWORD = 'a long enough password'
DEVICES = ('edge-1', 'edge-2', 'edge-3')
EVENTS = 18  # sent by the uploader in the failover test
RATE = 5.0  # --rate-limit of both instances: a burst of 10, then 5 a second


@pytest.fixture(scope='module')
def shared_store(seaweedfs) -> BucketTestStore:
    """Return the snapshot store both instances use: a bucket of one SeaweedFS (S3)."""
    return BucketTestStore(seaweedfs)


class Instances:
    """Two running instances, ``a`` (2 workers) and ``b`` (1), and their devices' keys."""

    def __init__(self, a: CloudServer, b: CloudServer, keys: Dict[str, str]) -> None:
        self.a, self.b, self.keys = a, b, keys
        self.db, self.storage = a.db, a.storage

    def read(self, server: CloudServer, path: str) -> requests.Response:
        return requests.get(server.url + path, timeout=10,
                            headers={'Authorization': f'Bearer {server.token}'})


@pytest.fixture(scope='module')
def instances(postgres, shared_store: BucketTestStore) -> Iterator[Instances]:
    """Start two instances on one fresh PostgreSQL database and ``shared_store``."""
    db, storage = postgres.new_database(), shared_store.location
    cloud_cli('migrate', db=db, storage=storage)
    limit = ['--rate-limit', str(RATE)]
    keys = {name: add_device(name, db, storage) for name in DEVICES}
    cloud_cli('add-user', 'ana', '--password-stdin', db=db, storage=storage,
              stdin=PASSWORD + '\n')
    a = CloudServer(db, storage, ['--workers', '2', *limit], public=False,
                    env=shared_store.env)
    try:
        b = CloudServer(db, storage, limit, public=False, env=shared_store.env)
    except BaseException:
        a.stop()
        raise
    try:
        yield Instances(a, b, keys)
    finally:
        a.stop()
        b.stop()


def test_a_login_on_one_instance_reads_on_the_other(instances: Instances) -> None:
    login = requests.post(instances.a.url + '/api/v1/session', timeout=30,
                          json={'name': 'ana', 'password': PASSWORD})
    assert login.status_code == 200, login.text
    cookies = {'vd_session': login.cookies['vd_session']}
    on_b = requests.get(instances.b.url + '/api/v1/session', cookies=cookies, timeout=10)
    assert on_b.status_code == 200 and on_b.json()['name'] == 'ana'
    assert requests.get(instances.b.url + '/api/v1/alerts', cookies=cookies,
                        timeout=10).status_code == 200
    # Logged out on b: the session is gone on a too.
    assert requests.delete(instances.b.url + '/api/v1/session', cookies=cookies,
                           timeout=10).status_code == 204
    assert requests.get(instances.a.url + '/api/v1/alerts', cookies=cookies,
                        timeout=10).status_code == 401


def test_an_alert_posted_to_one_is_read_with_its_picture_from_the_other(
        instances: Instances, shared_store: BucketTestStore) -> None:
    body, picture = alert_body('edge-1'), jpeg_bytes(seed=27)
    key = {'X-API-Key': instances.keys['edge-1']}
    posted = requests.post(instances.a.url + '/api/v1/alerts', json=body, headers=key,
                           timeout=10)
    assert posted.status_code == 201, posted.text
    path = f'/api/v1/alerts/{body["event_id"]}'
    stored = requests.put(instances.b.url + path + '/image', data=picture, timeout=10,
                          headers={**key, 'Content-Type': 'image/jpeg'})
    assert stored.status_code == 201, stored.text
    # The edge retries the same event on the other instance: nothing is doubled.
    again = requests.post(instances.b.url + '/api/v1/alerts', json=body, headers=key,
                          timeout=10)
    assert again.status_code == 200 and again.json()['id'] == posted.json()['id']
    for server in (instances.a, instances.b):
        alert = instances.read(server, path)
        assert alert.status_code == 200 and alert.json()['event_id'] == body['event_id']
        image = instances.read(server, path + '/image')
        assert image.status_code == 200 and image.content == picture
    # One picture, and no other object in the store.
    assert shared_store.names() == [stored.json()['path']]


def _route_count(text: str, route: str, status: str) -> float:
    found = re.findall(rf'^vd_http_requests_total{{method="GET",route="{re.escape(route)}",'
                       rf'status="{status}"}} ([0-9.e+]+)$', text, re.MULTILINE)
    return sum(float(value) for value in found)


def test_metrics_of_each_instance_count_its_own_requests(instances: Instances,
                                                         shared_store: BucketTestStore
                                                         ) -> None:
    missing = '/api/v1/alerts/' + str(uuid.uuid4())  # 404: only this test asks it
    for server, times in ((instances.a, 7), (instances.b, 4)):
        for _ in range(times):  # new connections: spread over a's two workers
            assert instances.read(server, missing).status_code == 404
    for server, times in ((instances.a, 7), (instances.b, 4)):
        text = instances.read(server, '/metrics').text
        assert _route_count(text, '/api/v1/alerts/{event_id}', '404') == times, server.url
    # a's workers count in a folder of their own on this host, never in the store.
    folders = list(Path(tempfile.gettempdir()).glob(
        f'vd-cloud-metrics-{instances.a.process.pid}-*'))
    assert len(folders) == 1 and any(folders[0].iterdir())
    assert not [name for name in shared_store.names() if name.startswith('.')]


def _alternate(instances: Instances, send, count: int) -> List[int]:
    """Send ``count`` requests, every other one to b; return the status codes."""
    return [send(instances.b if index % 2 else instances.a).status_code
            for index in range(count)]


def test_a_device_alternating_between_instances_has_one_budget(instances: Instances) -> None:
    key = {'X-API-Key': instances.keys['edge-2']}
    started = time.monotonic()
    codes = _alternate(instances, lambda server: requests.post(
        server.url + '/api/v1/alerts', json=alert_body('edge-2'), headers=key, timeout=10), 60)
    elapsed = time.monotonic() - started
    allowed = 2 * RATE + RATE * elapsed  # the burst, then the rate: both instances together
    assert 2 * RATE <= codes.count(201) <= allowed + 1, (codes.count(201), elapsed)
    assert set(codes) == {201, 429}
    assert 429 in codes[0::2] and 429 in codes[1::2]  # refused by both instances


def test_failed_authentications_on_both_instances_share_one_limit(
        instances: Instances) -> None:
    def bad_key(server: CloudServer) -> int:
        # From an address of its own (the rest of this module is 127.0.0.1).
        connection = http.client.HTTPConnection('127.0.0.1', server.port, timeout=10,
                                                source_address=('127.0.0.2', 0))
        try:
            connection.request('POST', '/api/v1/alerts', json.dumps(alert_body('edge-1')),
                               {'X-API-Key': 'vdk_' + 'x' * 43,
                                'Content-Type': 'application/json'})
            return connection.getresponse().status
        finally:
            connection.close()

    started = time.monotonic()
    codes = [bad_key(instances.b if index % 2 else instances.a) for index in range(30)]
    elapsed = time.monotonic() - started
    # 10 failures, then one every 2 s (deps.FAILURE_*), from this address on both.
    assert 10 <= codes.count(401) <= 10 + 0.5 * elapsed + 1, (codes, elapsed)
    assert set(codes[-6:]) == {429}
    assert 429 in codes[0::2] and 429 in codes[1::2]


@pytest.mark.parametrize('backend', ['sqlite', 'postgresql'])
def test_the_shared_rate_limit_refills_at_its_rate(backend: str, request,
                                                   tmp_path: Path) -> None:
    url = (f'sqlite:///{tmp_path}/cloud.db' if backend == 'sqlite'
           else request.getfixturevalue('postgres').new_database())
    cloud_cli('migrate', db=url, storage=str(tmp_path / 'images'))
    engine = make_engine(url)
    try:
        limiter = SharedRateLimiter(buckets_for(engine), 'dev:', rate=2.0, burst=2.0)
        # Another worker: its own connections.
        other = SharedRateLimiter(buckets_for(engine), 'dev:', rate=2.0, burst=2.0)
        assert limiter.acquire('a', now=100.0) is None and other.acquire('a', now=100.0) is None
        assert limiter.acquire('a', now=100.0) == 1  # empty: wait a second
        assert other.acquire('a', now=100.2) == 1
        assert limiter.acquire('b', now=100.0) is None  # per device
        assert other.acquire('a', now=100.6) is None  # refilled 1.2 requests
        assert limiter.acquire('a', now=100.6) == 1
        assert limiter.acquire('a', now=110.0) is None  # full again, not more than full
        assert other.acquire('a', now=110.0) is None and limiter.acquire('a', now=110.0) == 1
        # The database's clock when none is given: a fresh subject gets its burst.
        assert limiter.acquire('c') is None and limiter.acquire('c') is None
        assert limiter.acquire('c') == 1
    finally:
        engine.dispose()


def _ingested(server: CloudServer) -> float:
    """Return the alerts and pictures an instance stored, from its own /metrics."""
    text = requests.get(server.url + '/metrics', timeout=10).text
    return sum(float(value) for value in re.findall(
        r'^vd_http_requests_total{method="(?:POST|PUT)",route="/api/v1/alerts[^"]*",'
        r'status="201"} ([0-9.e+]+)$', text, re.MULTILINE))


def test_an_instance_killed_behind_the_balancer_loses_and_doubles_nothing(
        instances: Instances, shared_store: BucketTestStore, tmp_path: Path) -> None:
    """The real uploader sends through HAProxy; one of two instances is killed mid-way."""
    servers = [CloudServer(instances.db, instances.storage, env=shared_store.env)
               for _ in range(2)]
    balancer = None
    try:
        balancer = HAProxy([f'127.0.0.1:{server.port}' for server in servers], 'roundrobin')
        outbox = Outbox(str(tmp_path / 'outbox'))
        events = [make_alert(index, 'edge-3') for index in range(EVENTS)]
        for index, event in enumerate(events):
            outbox.enqueue(event, jpeg_bytes(seed=100 + index))
        uploader = Uploader(UploadSettings(
            balancer.url, instances.keys['edge-3'], 'edge-3', retry_delay=0.05,
            retry_max_delay=0.2, upload_interval=0.2), outbox, DataBudget(outbox, 0))
        uploader.start()
        try:
            wait_until(lambda: outbox.stats().depth <= EVENTS * 2 // 3, 60, 'a third sent')
            assert all(_ingested(server) > 0 for server in servers)  # both were serving
            servers[0].process.kill()  # mid-way, maybe mid-request
            wait_until(lambda: outbox.stats().depth == 0, 60, 'the rest sent')
        finally:
            uploader.stop()
        assert uploader.stats.permanent_failures == 0
    finally:
        if balancer is not None:
            balancer.stop()
        for server in servers:
            server.stop()
    ids = [event['event_id'] for event in events]
    engine = make_engine(instances.db)
    try:
        with engine.connect() as connection:
            rows = connection.execute(select(Alert.event_id, Alert.image_path).where(
                Alert.event_id.in_(ids))).all()
            every_path = set(connection.execute(select(Alert.image_path).where(
                Alert.image_path.is_not(None))).scalars())
    finally:
        engine.dispose()
    assert sorted(row.event_id for row in rows) == sorted(ids)  # each once
    assert all(row.image_path for row in rows)
    pictures = {name for name in shared_store.names() if not name.startswith('.')}
    assert pictures == every_path  # an object per stored picture, none without its row
