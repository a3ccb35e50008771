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
The shared read cache on real servers: ETags and 304s, every write seen, workers and instances.

SQLite and PostgreSQL; two workers sharing the host's cache file; two
instances sharing one Redis (Debian's redis-server, started here); a hit
answered with the database stopped; the monitor route's figures.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path
import re
import subprocess
from typing import Dict, Iterator
import uuid

from cloud_helpers import (
    add_device, alert_body, cloud_cli, CloudServer, jpeg_bytes, PostgresServer)
import pytest
import requests
from vehicle_detection.cloud.server.schema import head_revision
from vehicle_detection.wire import CountRecord, utc_iso
from waiting import wait_until

READS = ('/api/v1/alerts?limit=60', '/api/v1/devices', '/api/v1/stats')


def metric(url: str, name: str, route: str) -> float:
    """Return the value of a counter of ``/metrics`` for one route (0 when absent)."""
    text = requests.get(f'{url}/metrics', timeout=10).text
    found = re.search(rf'^{name}{{route="{re.escape(route)}"}} ([0-9.e+]+)$', text, re.M)
    return float(found.group(1)) if found else 0.0


def get(url: str, path: str, etag: str = '') -> requests.Response:
    return requests.get(url + path, timeout=10,
                        headers={'If-None-Match': etag} if etag else {})


@pytest.fixture(params=['sqlite', 'postgresql'])
def database(request, tmp_path: Path) -> Iterator[str]:
    if request.param == 'sqlite':
        yield f'sqlite:///{tmp_path}/cloud.db'
    else:
        db = request.getfixturevalue('postgres').new_database()
        cloud_cli('migrate', db=db, storage=str(tmp_path / 'images'))
        yield db


def test_cached_reads_answer_304_until_a_write_changes_them(database: str,
                                                            tmp_path: Path) -> None:
    storage = str(tmp_path / 'images')
    key = add_device('edge-1', database, storage)
    # --cache-fresh 0: every read asks the database's versions, so each write shows at once.
    server = CloudServer(database, storage, ['--workers', '2', '--cache-fresh', '0'])
    url, headers = server.url, {'X-API-Key': key}
    try:
        first = {path: get(url, path) for path in READS}
        for path, answer in first.items():
            assert answer.status_code == 200 and answer.headers['X-Cache'] == 'miss', path
            assert answer.headers['Cache-Control'] == 'private, no-cache'
        # Over new connections, whichever worker answers: one computation, then the cache.
        for _ in range(20):
            again = get(url, READS[0])
            assert again.headers['X-Cache'] == 'hit'
            assert (again.content, again.headers['ETag']) == (
                first[READS[0]].content, first[READS[0]].headers['ETag'])
        assert metric(url, 'vd_cache_misses_total', '/api/v1/alerts') == 1
        assert metric(url, 'vd_cache_hits_total', '/api/v1/alerts') == 20
        unchanged = get(url, READS[0], first[READS[0]].headers['ETag'])
        assert (unchanged.status_code, unchanged.content) == (304, b'')

        def changed(path: str, before: requests.Response) -> requests.Response:
            answer = get(url, path, before.headers['ETag'])
            assert answer.status_code == 200, f'{path} did not change'
            assert answer.headers['ETag'] != before.headers['ETag']
            return answer

        body = alert_body('edge-1')
        assert requests.post(f'{url}/api/v1/alerts', json=body, headers=headers,
                             timeout=10).status_code == 201
        alerts = changed(READS[0], first[READS[0]])
        assert [a['event_id'] for a in alerts.json()['items']] == [body['event_id']]
        assert alerts.json()['items'][0]['image_url'] is None
        stats = changed(READS[2], first[READS[2]])
        assert stats.json()['total'] == 1
        devices = changed(READS[1], first[READS[1]])  # alerts_24h
        assert devices.json()[0]['alerts_24h'] == 1
        assert requests.post(f'{url}/api/v1/alerts', json=body, headers=headers,
                             timeout=10).status_code == 200  # a retry changes nothing
        assert get(url, READS[0], alerts.headers['ETag']).status_code == 304
        assert requests.put(f'{url}/api/v1/alerts/{body["event_id"]}/image',
                            data=jpeg_bytes(), timeout=10,
                            headers={**headers, 'Content-Type': 'image/jpeg'}).status_code == 201
        alerts = changed(READS[0], alerts)
        assert alerts.json()['items'][0]['image_url']
        assert requests.post(f'{url}/api/v1/devices/edge-1/heartbeat', timeout=10,
                             json={'cpu_percent': 12.5}, headers=headers).status_code == 200
        devices = changed(READS[1], devices)
        assert devices.json()[0]['health']['cpu_percent'] == 12.5
        assert devices.json()[0]['online']
        check_counts(url, headers)
        check_replays_and_prune(url, headers, database, storage)
        cloud_cli('revoke-device', 'edge-1', db=database, storage=storage)
        assert changed(READS[1], devices).json()[0]['revoked']
        check_after_id(url, headers)
        check_monitor(url, database)
    finally:
        server.stop()


def check_counts(url: str, headers: Dict[str, str]) -> None:
    """Check that a count record changes the counts (JSON and CSV) read before it."""
    minute = datetime.now(timezone.utc).replace(second=0, microsecond=0) - timedelta(minutes=2)
    window = (f'from={utc_iso(minute - timedelta(hours=1))}&to='
              f'{utc_iso(minute + timedelta(hours=1))}').replace('+', '%2B')
    before = {path: get(url, path) for path in (f'/api/v1/counts?{window}',
                                                f'/api/v1/counts.csv?{window}')}
    record = CountRecord(str(uuid.uuid4()), 'edge-1', 'cam0', utc_iso(minute), 60,
                         (('gate', 'in', 'car', 4),))
    assert requests.post(f'{url}/api/v1/counts', json=record.to_json(), headers=headers,
                         timeout=10).status_code == 201
    for path, answer in before.items():
        after = get(url, path, answer.headers['ETag'])
        assert after.status_code == 200 and after.headers['X-Cache'] == 'miss', path
        assert 'gate' in after.text
    csv = get(url, f'/api/v1/counts.csv?{window}')
    assert csv.headers['X-Cache'] == 'hit'  # with the route's own headers
    assert csv.headers['Content-Type'].startswith('text/csv')
    assert 'attachment' in csv.headers['Content-Disposition']
    # 20 operators at once after a write, over both workers: one computes, the others wait.
    record = CountRecord(str(uuid.uuid4()), 'edge-1', 'cam0',
                         utc_iso(minute - timedelta(minutes=1)), 60, (('gate', 'in', 'bus', 1),))
    assert requests.post(f'{url}/api/v1/counts', json=record.to_json(), headers=headers,
                         timeout=10).status_code == 201
    misses = metric(url, 'vd_cache_misses_total', '/api/v1/counts')
    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda _: get(url, f'/api/v1/counts?{window}'), range(20)))
    assert {a.status_code for a in answers} == {200} and len({a.text for a in answers}) == 1
    assert 'bus' in answers[0].text
    assert metric(url, 'vd_cache_misses_total', '/api/v1/counts') == misses + 1


def check_replays_and_prune(url: str, headers: Dict[str, str], database: str,
                            storage: str) -> None:
    """
    Check that the cached rollup reads keep replays apart and lose what ``prune`` deletes.

    Alerts and counts of three days ago, live and replayed: each shows in the
    next read of its own filter only (the other one's answer stays, 304);
    ``prune`` (another process) deletes them, and the next reads show that.
    """
    old = datetime.now(timezone.utc).replace(minute=20, second=0, microsecond=0) - \
        timedelta(days=3)
    since = utc_iso(old - timedelta(hours=2))
    reads = {replay: (f'/api/v1/stats?since={since}&replay={replay}',
                      f'/api/v1/counts?since={since}&until={utc_iso(old + timedelta(hours=2))}'
                      f'&bucket=hour&replay={replay}') for replay in ('exclude', 'only')}
    first = {replay: [get(url, path) for path in paths] for replay, paths in reads.items()}
    totals = {replay: answers[0].json()['total'] for replay, answers in first.items()}
    assert not first['only'][1].json()['rows']

    def post(replay: bool) -> None:
        alert = alert_body('edge-1', detected_at=utc_iso(old), replay=replay)
        record = CountRecord(str(uuid.uuid4()), 'edge-1', 'cam0', utc_iso(old), 60,
                             (('gate', 'in', 'van', 2),), replay)
        for path, body in (('alerts', alert), ('counts', record.to_json())):
            assert requests.post(f'{url}/api/v1/{path}', json=body, headers=headers,
                                 timeout=10).status_code == 201

    post(replay=True)
    for path, answer in zip(reads['exclude'], first['exclude']):  # live figures: unchanged
        assert get(url, path, answer.headers['ETag']).status_code == 304, path
    stats, counts = (get(url, path) for path in reads['only'])
    assert stats.json()['total'] == totals['only'] + 1
    assert [(r['class_name'], r['count']) for r in counts.json()['rows']] == [('van', 2)]
    post(replay=False)
    stats, counts = (get(url, path) for path in reads['exclude'])
    assert stats.json()['total'] == totals['exclude'] + 1
    assert ('van', 2) in [(r['class_name'], r['count']) for r in counts.json()['rows']]
    cloud_cli('prune', '--keep-alerts-days', '2', '--keep-counts-days', '2', db=database,
              storage=storage)
    for replay, paths in reads.items():
        stats, counts = (get(url, path) for path in paths)
        assert stats.json()['total'] == totals[replay], replay
        assert 'van' not in counts.text, replay


def check_after_id(url: str, headers: Dict[str, str]) -> None:
    """Check that ``after_id`` gives the alerts newer than one shown, and refuses bad values."""
    for bad in ('-1', 'x', str(2 ** 63), '1.5'):
        assert get(url, f'/api/v1/alerts?after_id={bad}').status_code == 422, bad
    page = get(url, '/api/v1/alerts?limit=60').json()['items']
    newest = page[0]['id']
    assert get(url, f'/api/v1/alerts?after_id={newest}').json() == {
        'items': [], 'next_cursor': None}
    assert [a['id'] for a in get(url, f'/api/v1/alerts?after_id={newest - 1}').json()[
        'items']] == [newest]
    assert get(url, '/api/v1/alerts?after_id=0&limit=60').json()['items'] == page


def check_monitor(url: str, database: str) -> None:
    """Check what the monitor route tells of this instance."""
    status = requests.get(f'{url}/api/v1/server', timeout=10).json()
    db = status['database']
    assert db['ok'] and db['schema_version'] == db['schema_head'] == head_revision()
    assert db['backend'] == ('sqlite' if database.startswith('sqlite') else 'postgresql')
    assert db['answer_ms'] > 0 and db['size_bytes'] > 0
    assert status['storage']['ok'] and status['storage']['free_bytes'] > 0
    cache = status['cache']
    assert cache['ok'] and cache['backend'] == 'file' and cache['hits'] >= 20
    assert 0 < cache['hit_rate'] < 1
    assert status['process']['workers'] == status['process']['workers_configured'] == 2
    assert status['process']['memory_bytes'] > 50 * 2 ** 20
    assert status['process']['cpu_percent'] >= 0
    requests_ = status['requests']
    assert requests_['requests'] > 40 and requests_['rate_per_s'] > 0
    assert requests_['p95_ms'] > 0 and requests_['error_rate'] == 0
    assert status['uptime_s'] > 0 and status['version']


def test_a_cached_read_needs_no_database(tmp_path: Path) -> None:
    cluster = PostgresServer()  # its own: stopped here
    try:
        db = cluster.new_database()
        storage = str(tmp_path / 'images')
        cloud_cli('migrate', db=db, storage=storage)
        server = CloudServer(db, storage, ['--cache-fresh', '60'])
        try:
            before = get(server.url, '/api/v1/stats')
            assert before.headers['X-Cache'] == 'miss'
            subprocess.run([*cluster.prefix, cluster.pg_ctl, '-D', cluster.data, '-m',
                            'immediate', 'stop'], capture_output=True, timeout=60, check=True)
            assert requests.get(f'{server.url}/api/v1/health', timeout=10).status_code == 503
            hit = get(server.url, '/api/v1/stats')
            assert (hit.status_code, hit.headers['X-Cache'], hit.content) == (
                200, 'hit', before.content)
            assert get(server.url, '/api/v1/stats', before.headers['ETag']).status_code == 304
            assert get(server.url, '/api/v1/alerts?limit=3').status_code == 500  # not cached
            down = requests.get(f'{server.url}/api/v1/server', timeout=10).json()['database']
            assert not down['ok'] and down['error']
        finally:
            server.stop()
    finally:
        cluster.stop()


def test_redis_shares_reads_between_instances(postgres, redis_server, tmp_path: Path) -> None:
    db = postgres.new_database()
    storage = str(tmp_path / 'images')
    cloud_cli('migrate', db=db, storage=storage)
    key = add_device('edge-1', db, storage)
    options = ['--redis', redis_server.url, '--cache-fresh', '0']
    one, two = CloudServer(db, storage, options), CloudServer(db, storage, options)
    try:
        first = get(one.url, '/api/v1/stats')
        assert first.headers['X-Cache'] == 'miss'
        second = get(two.url, '/api/v1/stats')  # computed by the other instance
        assert (second.headers['X-Cache'], second.headers['ETag']) == (
            'hit', first.headers['ETag'])
        assert requests.post(f'{two.url}/api/v1/alerts', json=alert_body('edge-1'),
                             headers={'X-API-Key': key}, timeout=10).status_code == 201
        after = get(one.url, '/api/v1/stats', first.headers['ETag'])
        assert after.status_code == 200 and after.json()['total'] == 1
        assert requests.get(f'{one.url}/api/v1/server', timeout=10).json()['cache'][
            'backend'] == 'redis'
        redis_server.stop()  # reads go on without their cache; the monitor says so
        for server in (one, two):
            answer = get(server.url, '/api/v1/stats')
            assert (answer.status_code, answer.headers['X-Cache']) == (200, 'miss')
            assert answer.json()['total'] == 1
            wait_until(lambda url=server.url: _cache_down(url), 10,
                       'the monitor to show Redis down', poll=0.2)
    finally:
        one.stop()
        two.stop()


def _cache_down(url: str) -> bool:
    cache = requests.get(f'{url}/api/v1/server', timeout=10).json()['cache']
    return not cache['ok'] and 'Redis' in cache['error']
