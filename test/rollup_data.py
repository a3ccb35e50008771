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
Random alerts and count records for the rollup tests, stored as a server before the rollups did.

Shared by ``test_rollups.py`` (answers) and ``test_rollup_indexes.py`` (plans).
"""

from __future__ import annotations

from datetime import datetime, timedelta
import random
from typing import Dict, List, Tuple
import uuid

from sqlalchemy import insert, select
from sqlalchemy.engine import Engine
from vehicle_detection.cloud.server.access import hash_key
from vehicle_detection.cloud.server.db import Alert, CountRecord, Device, TrafficCount
from vehicle_detection.cloud.server.engine import utcnow

DEVICES = ('dev-a', 'dev-b', 'dev-c')
CLASSES = ('bus', 'car', 'truck')
LINES = ('l1', 'l2', 'l3')
DIRECTIONS = ('away', 'towards')
PERIODS = (15, 60, 60, 60, 300, 900, 1000, 3600, 86400)
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
