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
Rollups (migration 0012) on SQLite and PostgreSQL: the same answers as the rows.

The rollups answer ``/stats``, ``/devices`` and ``/counts`` exactly as the
rows they sum, replays apart from live traffic as every read filter asks
(filled by the migration from an older database, kept by the server as rows
arrive, trimmed by ``prune``); concurrent posts lose no increment. That every
read the dashboard makes is bounded by an index: ``test_rollup_indexes.py``.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
import random
import re
from typing import Callable, Dict, Tuple
import uuid

from alembic import command
from cloud_helpers import alert_body, cloud_cli, CloudServer
import pytest
import requests
from rollup_checks import answered_counts, answered_stats, EPOCH, moment, Stored
from rollup_data import (
    add_devices, BACKENDS, BEFORE, CLASSES, database, DEVICES, hour_edges, random_records,
    random_time, store_old_rows)
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from vehicle_detection.cloud.server.db import Alert, TrafficCount
from vehicle_detection.cloud.server.db_rollups import AlertHour, CountQuarter
from vehicle_detection.cloud.server.engine import make_engine
from vehicle_detection.cloud.server.schema import alembic_config, upgrade
from vehicle_detection.wire import CountRecord as WireRecord, utc_iso

BUCKETS = {'15min': 900, 'hour': 3600, 'day': 86400, '1min': 60}


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
