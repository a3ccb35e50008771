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
Rollups (migration 0012) on SQLite and PostgreSQL: the same answers as the rows, and indexed.

The rollups answer ``/stats``, ``/devices`` and ``/counts`` exactly as the
rows they sum, replays apart from live traffic as every read filter asks
(filled by the migration from an older database, kept by the server as rows
arrive, trimmed by ``prune``); concurrent posts lose no increment; and every
read the dashboard makes is bounded by an index.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
import random
import re
import threading
from typing import Callable, Dict, Iterator, List, Tuple
import uuid

from alembic import command
from cloud_helpers import alert_body, cloud_cli, CloudServer, free_port, jpeg_bytes
import pytest
import requests
from rollup_checks import (
    answered_counts, answered_stats, EPOCH, explain, full_scans, moment, postgres_indexes,
    selects, Stored)
from sqlalchemy import event, func, insert, select
from sqlalchemy.engine import Engine
from vehicle_detection.cloud.server.access import hash_key
from vehicle_detection.cloud.server.app import create_app
from vehicle_detection.cloud.server.db import (
    Alert, AlertHour, CountQuarter, CountRecord, Device, TrafficCount)
from vehicle_detection.cloud.server.engine import make_engine, utcnow
from vehicle_detection.cloud.server.schema import alembic_config, upgrade
from vehicle_detection.cloud.server.settings import ServerSettings
from vehicle_detection.wire import CountRecord as WireRecord, utc_iso
from waiting import wait_until

DEVICES = ('dev-a', 'dev-b', 'dev-c')
CLASSES = ('bus', 'car', 'truck')
LINES = ('l1', 'l2', 'l3')
DIRECTIONS = ('away', 'towards')
PERIODS = (15, 60, 60, 60, 300, 900, 1000, 3600, 86400)
BUCKETS = {'15min': 900, 'hour': 3600, 'day': 86400, '1min': 60}
BACKENDS = ['sqlite', 'postgresql']
BEFORE = '0011'  # the revision before the rollups
REPLAYS = ('exclude', 'include', 'only')


def database(backend: str, request, folder) -> str:
    """Return the URL of an empty database of ``backend``."""
    if backend == 'sqlite':
        return f'sqlite:///{folder}/cloud.db'
    return request.getfixturevalue('postgres').new_database()


def add_devices(engine: Engine) -> Dict[str, str]:
    """Register DEVICES (as ``add-device`` does) and return their keys."""
    keys = {name: f'key-{name}-{uuid.uuid4().hex}' for name in DEVICES}
    with engine.begin() as db:
        db.execute(insert(Device), [{'name': name, 'key_hash': hash_key(key),
                                     'created_at': utcnow()} for name, key in keys.items()])
    return keys


def random_time(rng: random.Random, now: datetime) -> datetime:
    """Return a time of the last three days, with microseconds, away from now - 24 h."""
    while True:
        moment_ = now - timedelta(seconds=rng.uniform(-200, 3 * 86400))
        if abs((moment_ - (now - timedelta(hours=24))).total_seconds()) > 900:
            return moment_


def hour_edges(now: datetime) -> List[datetime]:
    """Return times on and just before whole hours: where a rounding would move an alert."""
    hour = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    return [hour, hour - timedelta(microseconds=1), hour - timedelta(microseconds=400),
            hour + timedelta(microseconds=500)]


def random_records(rng: random.Random, now: datetime, count: int, taken: set
                   ) -> List[Tuple[str, str, int, int, list, bool]]:
    """
    Return count records (device, camera, start, period_s, rows, replay) of new periods.

    A quarter are replays; some replay the very period a live record has.
    """
    records: List[Tuple[str, str, int, int, list, bool]] = []
    while len(records) < count:
        replay = rng.random() < 0.25
        if replay and records and rng.random() < 0.5:  # the same period as a live one
            device, camera, start = rng.choice(records)[:3]
        else:
            start = int(random_time(rng, now).timestamp())
            device, camera = rng.choice(DEVICES), rng.choice(('cam0', 'cam1', 'cam2'))
        if (device, camera, start, replay) in taken or start > now.timestamp():
            continue
        taken.add((device, camera, start, replay))
        keys = rng.sample([(line, direction, name) for line in LINES for direction in DIRECTIONS
                           for name in CLASSES], rng.randint(0, 4))
        records.append((device, camera, start, rng.choice(PERIODS),
                        [(*key, rng.randint(0, 20)) for key in keys], replay))
    return records


def store_old_rows(engine: Engine, rng: random.Random, now: datetime, taken: set,
                   alerts: int = 200, records: int = 80) -> None:
    """Insert what a server before the rollups stored: alerts, count records and rows."""
    with engine.begin() as db:
        ids = dict(db.execute(select(Device.name, Device.id)).all())
        times = [random_time(rng, now) for _ in range(alerts)] + hour_edges(now)
        db.execute(insert(Alert), [
            {'event_id': str(uuid.uuid4()), 'device_id': ids[rng.choice(DEVICES)],
             'camera_id': 'cam0', 'detected_at': detected.replace(tzinfo=None),
             'received_at': utcnow(), 'track_id': 1, 'class_name': rng.choice(CLASSES),
             'confidence': 0.5, 'bbox': [1, 2, 3, 4], 'image_width': 64, 'image_height': 48,
             'kind': 'vehicle', 'replay': rng.random() < 0.25} for detected in times])
        for device, camera, start, period_s, rows, replay in random_records(rng, now, records,
                                                                            taken):
            record = db.execute(insert(CountRecord).values(
                record_id=str(uuid.uuid4()), device_id=ids[device], camera_id=camera,
                period_start=start, period_s=period_s, received_at=utcnow(), replay=replay)
                .returning(CountRecord.id)).scalar_one()
            if rows:
                db.execute(insert(TrafficCount), [
                    {'record_id': record, 'device_id': ids[device], 'line': line,
                     'direction': direction, 'class_name': name, 'period_start': start,
                     'count': n, 'replay': replay} for line, direction, name, n in rows])


def post_live_rows(url: str, keys: Dict[str, str], rng: random.Random, now: datetime,
                   taken: set) -> None:
    """Post alerts (retries too) and count records (a period twice too) to the server."""
    bodies = []
    for detected in [random_time(rng, now) for _ in range(100)] + hour_edges(now):
        kind = rng.choice(('vehicle', 'vehicle', 'stopped_vehicle', 'wrong_way'))
        places = {'stopped_vehicle': {'zone': 'z1'},
                  'wrong_way': {'line': 'l1', 'direction': 'away'}}.get(kind, {})
        bodies.append((rng.choice(DEVICES), alert_body(
            'x', detected_at=utc_iso(detected), class_name=rng.choice(CLASSES), kind=kind,
            replay=rng.random() < 0.25, **places)))
    bodies += bodies[:10]  # retries: stored and counted once
    records = [(device, WireRecord(str(uuid.uuid4()), device, camera,
                                   utc_iso(datetime.fromtimestamp(start, timezone.utc)),
                                   period_s, tuple(rows), replay).to_json())
               for device, camera, start, period_s, rows, replay
               in random_records(rng, now, 50, taken)]
    records += [(device, {**body, 'record_id': str(uuid.uuid4())})
                for device, body in records[:5]]  # a stored period again: 200, not added

    def send(item: Tuple[str, str, dict]) -> int:
        path, device, body = item
        return requests.post(f'{url}/api/v1/{path}', json=body, timeout=30,
                             headers={'X-API-Key': keys[device]}).status_code

    with ThreadPoolExecutor(6) as pool:
        codes = list(pool.map(send, [('alerts', d, b) for d, b in bodies] +
                              [('counts', d, b) for d, b in records]))
    assert set(codes) <= {200, 201}, codes


def check_answers(url: str, engine: Engine, rng: random.Random) -> None:
    """Compare what the server answers with the recomputation from the rows."""
    stored = Stored.read(engine)
    api = url + '/api/v1'

    def get(path: str, **params: str) -> dict:
        answer = requests.get(f'{api}/{path}', params=params, timeout=30)
        assert answer.status_code == 200, (path, params, answer.text)
        return answer.json()

    def at_one_time(ask: Callable[[], dict], expect: Callable[[datetime], object]) -> None:
        """Compare an answer that depends on the server's clock (retried over a boundary)."""
        for _ in range(3):
            before = datetime.now(timezone.utc)
            answer = ask()
            if expect(before) == expect(datetime.now(timezone.utc)):
                assert answer == expect(before)
                return
        raise AssertionError('the clock kept crossing a boundary')

    now = datetime.now(timezone.utc)
    at_one_time(lambda: {d['name']: d['alerts_24h'] for d in get('devices') if d['alerts_24h']},
                stored.alerts_24h)
    at_one_time(lambda: answered_stats(get('stats')), lambda at: stored.stats(
        (at - timedelta(hours=24)).replace(minute=0, second=0, microsecond=0)))
    at_one_time(lambda: answered_stats(get('stats', replay='only')), lambda at: stored.stats(
        (at - timedelta(hours=24)).replace(minute=0, second=0, microsecond=0), replay='only'))
    hour = now.replace(minute=0, second=0, microsecond=0)
    windows = [(now - timedelta(hours=30), None), (hour - timedelta(hours=40), hour),
               (hour - timedelta(hours=5, minutes=20), hour - timedelta(hours=5, minutes=1)),
               (hour - timedelta(hours=6, minutes=20), hour - timedelta(hours=4, minutes=59)),
               (hour, hour - timedelta(hours=1)), (EPOCH, None)]
    windows += [tuple(sorted((random_time(rng, now), random_time(rng, now))))
                for _ in range(4)]
    for since, until in windows:
        if until is not None and until <= since:
            continue  # refused (422) by every read route
        for device, class_name, kind, replay in (
                (None, None, None, 'exclude'), ('dev-b', None, None, 'include'),
                (None, 'car', None, 'only'), ('dev-a', 'truck', None, 'exclude'),
                (None, None, 'wrong_way', 'include'), ('dev-c', None, 'vehicle', 'only')):
            params = {'since': utc_iso(since), **({'until': utc_iso(until)} if until else {}),
                      **({'device': device} if device else {}),
                      **({'class_name': class_name} if class_name else {}),
                      **({'kind': kind} if kind else {}), 'replay': replay}
            assert answered_stats(get('stats', **params)) == stored.stats(
                since, until, device, class_name, kind, replay), params
    for bucket, size in BUCKETS.items():
        spans = [(now - timedelta(hours=26), now), (now - timedelta(days=3, hours=2), now)]
        spans += [tuple(sorted((random_time(rng, now), random_time(rng, now))))
                  for _ in range(2)]
        for start, end in spans[:2 if size == 60 else 4]:
            for device, line, by, replay in (
                    (None, None, 'direction,class_name', 'exclude'),
                    (None, None, 'direction,class_name', 'include'),
                    ('dev-c', None, 'direction', 'only'), (None, 'l2', 'class_name', 'exclude')):
                params = {'since': utc_iso(start), 'until': utc_iso(end), 'bucket': bucket,
                          'by': by, 'replay': replay, **({'device': device} if device else {}),
                          **({'line': line} if line else {})}
                answer = get('counts', **params)
                first, last = (int((moment(answer[k]) - EPOCH).total_seconds())
                               for k in ('start', 'end'))
                assert answered_counts(answer) == stored.counts(
                    size, first, last, device, line, by.split(','), replay), params


@pytest.mark.parametrize('backend', BACKENDS)
def test_rollups_answer_as_the_stored_rows(backend: str, request, tmp_path) -> None:
    """
    Filled by the migration, kept as rows arrive, trimmed by prune: as the rows say.

    A database of the last revision before the rollups holds random alerts
    and count records, live and replayed; after ``migrate`` the server
    answers from its rollups what a computation from the rows gives, for
    each replay filter, also after it stored more (retries and a period
    sent twice included), after ``prune`` deleted old rows, and after a
    downgrade and upgrade filled them again.
    """
    url = database(backend, request, tmp_path)
    rng = random.Random(28)
    now = datetime.now(timezone.utc)
    taken: set = set()
    command.upgrade(alembic_config(url), BEFORE)
    engine = make_engine(url)
    try:
        keys = add_devices(engine)
        store_old_rows(engine, rng, now, taken)
        upgrade(url)
        # --cache-fresh 0: each read asks the data versions, so the read cache (which may
        # answer up to 2 s old by default) shows every write at once, as the rollups do.
        server = CloudServer(url, str(tmp_path / 'images'),
                             ['--rate-limit', '0', '--cache-fresh', '0'])
        try:
            check_answers(server.url, engine, rng)
            post_live_rows(server.url, keys, rng, now, taken)
            check_answers(server.url, engine, rng)
            before = rollup_sums(engine)
            days = str((30 * 3600 + 17 * 60) / 86400)  # cutoffs within hours and buckets
            pruned = cloud_cli('prune', '--keep-alerts-days', days, '--keep-counts-days', days,
                               db=url, storage=str(tmp_path / 'images'))
            deleted = re.search(r'(\d+) alerts, .* (\d+) count records', pruned.stdout)
            assert deleted and all(int(n) > 0 for n in deleted.groups()), pruned.stdout
            after = rollup_sums(engine)
            assert after < before and after == rows_sums(engine), (before, after)
            check_answers(server.url, engine, rng)
            command.downgrade(alembic_config(url), BEFORE)
            upgrade(url)
            check_answers(server.url, engine, rng)
        finally:
            server.stop()
    finally:
        engine.dispose()


def rollup_sums(engine: Engine) -> Tuple[int, int]:
    """Return the alerts and the vehicles the rollups hold."""
    with engine.connect() as db:
        return (db.execute(select(func.coalesce(func.sum(AlertHour.alerts), 0))).scalar_one(),
                db.execute(select(func.coalesce(func.sum(CountQuarter.vehicles), 0))
                           ).scalar_one())


def rows_sums(engine: Engine) -> Tuple[int, int]:
    """Return the alerts and the vehicles the stored rows hold."""
    with engine.connect() as db:
        return (db.execute(select(func.count()).select_from(Alert)).scalar_one(),
                db.execute(select(func.coalesce(func.sum(TrafficCount.count), 0))).scalar_one())


@pytest.mark.parametrize('backend', BACKENDS)
def test_concurrent_posts_lose_no_increment(backend: str, request, tmp_path) -> None:
    """Three workers, many threads, one rollup row: every alert and count is added once."""
    url = database(backend, request, tmp_path)
    upgrade(url)
    engine = make_engine(url)
    try:
        keys = add_devices(engine)
    finally:
        engine.dispose()
    server = CloudServer(url, str(tmp_path / 'images'), ['--workers', '3', '--rate-limit', '0'])
    try:
        detected = datetime.now(timezone.utc).replace(minute=0, second=1, microsecond=0) - \
            timedelta(hours=2)
        alerts = [alert_body('dev-a', detected_at=utc_iso(detected + timedelta(seconds=i)))
                  for i in range(120)]
        start = detected.replace(minute=15, second=0)
        records = [WireRecord(str(uuid.uuid4()), device, f'cam{i}', utc_iso(start), 15,
                              (('l1', 'away', 'car', 3),)).to_json()
                   for device in ('dev-a', 'dev-b') for i in range(30)]
        work = [('alerts', 'dev-a', body) for body in alerts + alerts[:40]] + \
            [('counts', body['device_id'], body) for body in records]
        random.Random(5).shuffle(work)

        def send(item: Tuple[str, str, dict]) -> int:
            path, device, body = item
            return requests.post(f'{server.url}/api/v1/{path}', json=body, timeout=60,
                                 headers={'X-API-Key': keys[device]}).status_code

        with ThreadPoolExecutor(16) as pool:
            codes = list(pool.map(send, work))
        assert codes.count(201) == 120 + 60 and set(codes) == {200, 201}, codes
        api = server.url + '/api/v1'
        since = utc_iso(detected - timedelta(hours=1))
        stats = requests.get(f'{api}/stats', params={'since': since}, timeout=30).json()
        assert stats['total'] == 120 and stats['per_class'] == {'car': 120}
        devices = requests.get(f'{api}/devices', timeout=30).json()
        assert {d['name']: d['alerts_24h'] for d in devices} == {
            'dev-a': 120, 'dev-b': 0, 'dev-c': 0}
        series = requests.get(f'{api}/counts', timeout=30, params={
            'from': utc_iso(start), 'to': utc_iso(start + timedelta(minutes=15))}).json()
        assert [(r['device_id'], r['count']) for r in series['rows']] == [
            ('dev-a', 90), ('dev-b', 90)]
        assert [(c['device_id'], c['seconds']) for c in series['coverage']] == [
            ('dev-a', 450), ('dev-b', 450)]
    finally:
        server.stop()


class ServerInProcess:
    """The server's app under uvicorn on 127.0.0.1, in a thread: its statements can be seen."""

    def __init__(self, url: str, storage: str) -> None:
        import uvicorn

        # No read cache: each read runs the statements of its route, to be explained.
        self.app = create_app(ServerSettings(db=url, storage=storage, public_dashboard=True,
                                             rate_limit=0.0, cache_ttl_s=0.0))
        self.statements: List[Tuple[str, object]] = []
        self._lock = threading.Lock()
        event.listen(self.app.state.server.engine, 'before_cursor_execute', self._seen)
        port = free_port()
        self.url = f'http://127.0.0.1:{port}'
        self.server = uvicorn.Server(uvicorn.Config(self.app, host='127.0.0.1', port=port,
                                                    log_level='warning'))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        wait_until(lambda: self.server.started, 30, 'the server to start')

    def _seen(self, _connection, _cursor, statement: str, parameters: object, _context,
              _many: bool) -> None:
        with self._lock:
            self.statements.append((statement, parameters))

    def reads_of(self, path: str) -> List[Tuple[str, object]]:
        """GET ``path`` (200 expected) and return the SELECTs it ran."""
        with self._lock:
            self.statements.clear()
        answer = requests.get(self.url + path, timeout=30)
        assert answer.status_code == 200, (path, answer.text)
        with self._lock:
            return selects(self.statements)

    def stop(self) -> None:
        """Stop serving and release the engine."""
        self.server.should_exit = True
        self.thread.join(30)
        self.app.state.server.engine.dispose()


def dashboard_reads(event_id: str) -> Iterator[str]:
    """Yield every read the dashboard makes (static/dashboard.js and traffic.js), filtered too."""
    now = datetime.now(timezone.utc)
    since, until = utc_iso(now - timedelta(hours=7, minutes=13)), utc_iso(now)
    for filters in ({}, {'device': 'dev-a'}, {'class_name': 'car'},
                    {'since': since, 'until': until}, {'replay': 'include'},
                    {'replay': 'only', 'kind': 'wrong_way'},
                    {'device': 'dev-b', 'class_name': 'car', 'since': since, 'until': until}):
        query = '&'.join(f'{k}={v}' for k, v in filters.items())
        yield '/api/v1/devices'
        yield '/api/v1/alerts?' + '&'.join(filter(None, (query, 'limit=60')))
        yield '/api/v1/stats?' + query
        for bucket, span in (('15min', 24), ('1min', 3), ('hour', 168), ('day', 720)):
            device = f"device={filters['device']}&" if 'device' in filters else ''
            replay = f"replay={filters['replay']}&" if 'replay' in filters else ''
            start = filters.get('since') or utc_iso(now - timedelta(hours=span))
            end = filters.get('until') or utc_iso(now)
            window = f'{device}{replay}since={start}&until={end}&bucket={bucket}'
            for by in ('direction', 'class_name'):
                yield f'/api/v1/counts?{window}&by={by}'
            yield f'/api/v1/counts.csv?{window}'  # the export link
    yield f'/api/v1/alerts/{event_id}/image?thumbnail=true'
    yield '/api/v1/alerts?limit=60&before_id=2'  # the next page


@pytest.mark.parametrize('backend', BACKENDS)
def test_dashboard_reads_use_their_indexes(backend: str, request, tmp_path) -> None:
    """
    No read of the dashboard walks a table that grows (alerts, counts, rollups) whole.

    Each statement the server runs for the dashboard is explained by the
    database (PostgreSQL analysed, with sequential scans priced out so that
    a test table smaller than a fleet's does not hide a missing index).
    """
    url = database(backend, request, tmp_path)
    command.upgrade(alembic_config(url), BEFORE)
    engine = make_engine(url)
    try:  # rows enough for PostgreSQL's statistics to tell a small table from a large one
        keys = add_devices(engine)
        store_old_rows(engine, random.Random(7), datetime.now(timezone.utc), set(),
                       alerts=3000, records=600)
    finally:
        engine.dispose()
    upgrade(url)
    server = ServerInProcess(url, str(tmp_path / 'images'))
    try:
        body = alert_body('dev-a')
        event_id = body['event_id']
        assert requests.post(f'{server.url}/api/v1/alerts', json=body, timeout=30,
                             headers={'X-API-Key': keys['dev-a']}).status_code == 201
        assert requests.put(f'{server.url}/api/v1/alerts/{event_id}/image', data=jpeg_bytes(),
                            headers={'X-API-Key': keys['dev-a'], 'Content-Type': 'image/jpeg'},
                            timeout=30).status_code == 201
        engine = server.app.state.server.engine
        with engine.connect() as connection:
            raw = connection.connection.dbapi_connection
            indexes = None
            if backend == 'postgresql':
                raw.cursor().execute('ANALYZE')
                raw.cursor().execute('SET enable_seqscan = off')
                indexes = postgres_indexes(raw)
            problems: List[str] = []
            for path in dashboard_reads(event_id):
                reads = server.reads_of(path)
                assert reads, path
                for statement, parameters in reads:
                    plan = explain(raw, backend, statement, parameters)
                    problems += [f'{path}: {scan}\n    {" ".join(statement.split())[:300]}'
                                 for scan in full_scans(backend, plan, statement, indexes)]
            connection.rollback()
        assert not problems, '\n'.join(problems)
    finally:
        server.stop()
