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

"""Retention on back-dated alerts, pictures and counts: both stores, SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
import hashlib
import os
from pathlib import Path
import re
import time
from typing import Dict, List
import uuid

from cloud_helpers import add_device, alert_body, cloud_cli, CloudServer, jpeg_bytes
from object_stores import LocalTestStore
import pytest
import requests
from sqlalchemy import func, select
from test_bridge_faults import wait_for

from vehicle_detection.cloud.server.db import (
    CountRecord, CountSpeedBin, CountVehicle, TrafficCount)
from vehicle_detection.cloud.server.engine import make_engine
from vehicle_detection.cloud.server.retention_schedule import retention_lock
from vehicle_detection.wire import CountRecord as CountBody, utc_iso

POLICY = ['--keep-pictures-days', '30', '--keep-alerts-days', '400', '--keep-counts-days', '400']
DESCRIBED = 'pictures 30 days, alerts 400 days, counts 400 days'


@dataclass
class Filled:
    """What :func:`fill` stored, by the role each item plays."""

    events: Dict[str, str] = field(default_factory=dict)  # role -> event id
    pictures: Dict[str, str] = field(default_factory=dict)  # role -> stored name
    sizes: Dict[str, int] = field(default_factory=dict)  # role -> bytes


def fill(server: CloudServer, key: str, store) -> Filled:
    """
    Store back-dated alerts, pictures, thumbnails and counts through the API.

    ``old``: two alerts of one frame 45 days ago (their picture goes, they
    stay); ``shared``: a picture of 45 days ago that an alert of 10 days ago
    names too (it stays); ``ancient``: an alert of 500 days ago (it goes,
    picture and all); ``recent``: one of yesterday (untouched).
    """
    now = datetime.now(timezone.utc)
    url, headers = f'{server.url}/api/v1', {'X-API-Key': key}
    filled = Filled()

    def alert(role: str, days: float, picture: bytes, upload: bool) -> None:
        body = alert_body('edge-1', detected_at=utc_iso(now - timedelta(days=days)),
                          image_sha256=hashlib.sha256(picture).hexdigest())
        answer = requests.post(f'{url}/alerts', json=body, headers=headers, timeout=30)
        assert answer.status_code == 201 and answer.json()['image_stored'] != upload
        filled.events[role] = body['event_id']
        if upload:
            stored = requests.put(f'{url}/alerts/{body["event_id"]}/image', data=picture,
                                  timeout=30, headers={**headers, 'Content-Type': 'image/jpeg'})
            assert stored.status_code == 201, stored.text
            filled.pictures[role], filled.sizes[role] = stored.json()['path'], len(picture)

    old, shared, ancient, recent = (jpeg_bytes(seed=seed) for seed in (1, 2, 3, 4))
    alert('old', 45, old, upload=True)
    alert('old-2', 45, old, upload=False)  # the same frame: linked to the same picture
    alert('shared', 45, shared, upload=True)
    alert('shared-newer', 10, shared, upload=False)
    alert('ancient', 500, ancient, upload=True)
    alert('recent', 1, recent, upload=True)
    for role in ('old', 'recent'):  # thumbnails made (and cached) by a read
        assert requests.get(f'{url}/alerts/{filled.events[role]}/image', timeout=30,
                            params={'thumbnail': 'true'}).status_code == 200
    for days in (500, 1):
        body = CountBody(str(uuid.uuid4()), 'edge-1', 'cam0',
                         utc_iso((now - timedelta(days=days)).replace(second=0, microsecond=0)),
                         60, (('road', 'away', 'car', 3),), scheme='uk6',
                         quality={'flags': ['dark'], 'observed_s': 60},
                         speeds=(('road', 'away', 'car', ((45, 2), (46, 1))),),
                         vehicles=tuple((float(i), 'road', 'away', 'car', 91.0)
                                        for i in range(3))).to_json()
        assert requests.post(f'{url}/counts', json=body, headers=headers,
                             timeout=30).status_code == 201
    # A picture no row names, just written (an upload whose row comes next): it stays.
    day = filled.pictures['old'].split('/')[0]
    store.write(f'{day}/000000_cam0_{uuid.uuid4()}.jpg', jpeg_bytes(seed=5))
    if isinstance(store, LocalTestStore):  # a left-over of a failed upload, an hour old
        leftover = f'{day}/000001_cam0_{uuid.uuid4()}.jpg'
        store.write(leftover, jpeg_bytes(seed=6))
        os.utime(store.root / leftover, (time.time() - 3600,) * 2)
        filled.pictures['leftover'], filled.sizes['leftover'] = leftover, len(jpeg_bytes(seed=6))
    return filled


def counts_stored(db: str) -> List[int]:
    engine = make_engine(db)
    try:
        with engine.connect() as connection:
            return [connection.execute(select(func.count()).select_from(table)).scalar_one()
                    for table in (CountRecord, TrafficCount, CountSpeedBin, CountVehicle)]
    finally:
        engine.dispose()


def new_database(kind: str, request, tmp_path: Path, storage: str, env: dict) -> str:
    if kind == 'sqlite':
        return f'sqlite:///{tmp_path}/cloud.db'
    db = request.getfixturevalue('postgres').new_database()
    cloud_cli('migrate', db=db, storage=storage, env=env)
    return db


@pytest.mark.parametrize('database', ['sqlite', 'postgresql'])
def test_prune_deletes_by_kind_and_keeps_what_is_still_named(
        database: str, request, tmp_path: Path, snapshot_store) -> None:
    store = snapshot_store
    db = new_database(database, request, tmp_path, store.location, store.env)
    key = add_device('edge-1', db, store.location)
    server = CloudServer(db, store.location, ['--rate-limit', '0'], env=store.env)
    try:
        filled = fill(server, key, store)
    finally:
        server.stop()
    before = store.names()
    gone = ['old', 'ancient'] + (['leftover'] if 'leftover' in filled.pictures else [])
    freed_bytes = sum(filled.sizes[role] for role in gone)

    dry = cloud_cli('prune', '--dry-run', *POLICY, db=db, storage=store.location,
                    env=store.env)
    assert f'retention ({DESCRIBED}) would delete 1 alerts, pictures of 4 alerts, ' \
           f'{len(gone)} pictures ({freed_bytes / 1e6:.1f} MB), 1 thumbnails' in dry.stdout, \
        dry.stdout
    assert dry.stdout.rstrip().endswith(', 1 count records')
    # A dry run deletes nothing (records, rows, speed bins, vehicles).
    assert store.names() == before and counts_stored(db) == [2, 2, 4, 6]

    done = cloud_cli('prune', *POLICY, db=db, storage=store.location, env=store.env)
    assert done.stdout == dry.stdout.replace('would delete', 'deleted'), done.stdout
    left = store.names()
    for role in gone:
        assert filled.pictures[role] not in left
    for role in ('shared', 'recent'):
        assert filled.pictures[role] in left
    thumbnails = [name for name in left if name.startswith('.thumbnails/')]
    assert thumbnails == [f'.thumbnails/{filled.pictures["recent"]}']
    assert len(left) == len(before) - len(gone) - 1  # the fresh unnamed picture stays
    assert counts_stored(db) == [1, 1, 2, 3]  # rows, speed bins and vehicles went with it

    server = CloudServer(db, store.location, env=store.env)
    try:
        def shown(role: str) -> requests.Response:
            return requests.get(f'{server.url}/api/v1/alerts/{filled.events[role]}', timeout=30)

        assert shown('ancient').status_code == 404
        for role in ('old', 'old-2', 'shared'):  # the alerts stay, without their picture
            assert shown(role).json()['image_url'] is None
        for role in ('shared-newer', 'recent'):
            image = requests.get(server.url + shown(role).json()['image_url'], timeout=30)
            assert image.status_code == 200 and image.content.startswith(b'\xff\xd8')
    finally:
        server.stop()
    again = cloud_cli('prune', *POLICY, db=db, storage=store.location, env=store.env)
    assert 'deleted 0 alerts, pictures of 0 alerts, 0 pictures' in again.stdout


def test_server_prunes_on_a_schedule_once_across_workers(tmp_path: Path) -> None:
    store = LocalTestStore(tmp_path / 'images')
    db = f'sqlite:///{tmp_path}/cloud.db'
    key = add_device('edge-1', db, store.location)
    server = CloudServer(db, store.location, ['--rate-limit', '0'])
    try:
        filled = fill(server, key, store)
    finally:
        server.stop()
    server = CloudServer(db, store.location, ['--workers', '2', '--retention-interval', '1',
                                              *POLICY])
    try:
        def figure(name: str, labels: str = '') -> float:
            text = requests.get(server.url + '/metrics', timeout=30).text
            found = re.search(rf'^{name}{re.escape(labels)} (\S+)$', text, re.M)
            return float(found.group(1)) if found else 0.0

        wait_for(lambda: figure('vd_retention_rows_deleted_total', '{table="count_records"}')
                 >= 1, timeout=60, what='a scheduled retention pass')
        wait_for(lambda: figure('vd_retention_passes_total', '{result="done"}') >= 3,
                 timeout=60, what='more passes')
        # Every pass after the first finds nothing: the figures are those of one pass.
        picture_bytes = sum(filled.sizes[role] for role in ('old', 'ancient', 'leftover'))
        assert figure('vd_retention_objects_deleted_total', '{kind="picture"}') == 3
        assert figure('vd_retention_bytes_freed_total', '{kind="picture"}') == picture_bytes
        assert figure('vd_retention_objects_deleted_total', '{kind="thumbnail"}') == 1
        assert figure('vd_retention_rows_deleted_total', '{table="alerts"}') == 1
        assert figure('vd_retention_pictures_expired_total') == 4
        assert figure('vd_retention_rows_deleted_total', '{table="count_records"}') == 1
    finally:
        server.stop()
    lines = [line for line in server.output().splitlines() if 'retention' in line]
    assert f'retention: {DESCRIBED}, a pass every 1 s' in lines[0]
    deleted = [line for line in lines if ' deleted ' in line]
    assert len(deleted) == 1 and deleted[0].endswith(
        f'retention: retention ({DESCRIBED}) deleted 1 alerts, pictures of 4 alerts, '
        f'3 pictures ({picture_bytes / 1e6:.1f} MB), 1 thumbnails '
        f'({deleted[0].split(" thumbnails (")[1].split(")")[0]}), 1 count records'), deleted


@pytest.mark.parametrize('database', ['sqlite', 'postgresql'])
def test_one_pass_at_a_time(database: str, request, tmp_path: Path) -> None:
    storage = str(tmp_path / 'images')
    db = new_database(database, request, tmp_path, storage, {})
    engine = make_engine(db)
    try:
        with retention_lock(engine) as held:  # a server's pass, on another host for all we know
            assert held
            busy = cloud_cli('prune', db=db, storage=storage, check=False)
            assert busy.returncode == 1
            assert 'another retention pass is running' in busy.stderr
        assert cloud_cli('prune', db=db, storage=storage).returncode == 0
    finally:
        engine.dispose()


def test_prune_options_are_checked(tmp_path: Path) -> None:
    db, storage = f'sqlite:///{tmp_path}/cloud.db', str(tmp_path / 'images')
    result = cloud_cli('prune', '--keep-alerts-days', '-1', db=db, storage=storage, check=False)
    assert result.returncode == 2 and '--keep-alerts-days' in result.stderr, result.stderr
    assert 'days must be 0 (forever) or more, not -1' in result.stderr
    forever = cloud_cli('prune', '--keep-pictures-days', '0', '--keep-alerts-days', '0',
                        '--keep-counts-days', '0', db=db, storage=storage)
    assert 'keeps everything' in forever.stdout
