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

"""Migrations from empty, the PostgreSQL start-up check, storage safety, the rate limiter."""

from __future__ import annotations

from datetime import datetime, timezone
import json
from pathlib import Path
import subprocess

from alembic import command
from cloud_helpers import CLOUD, free_port
import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from vehicle_detection.cloud.server.access import RateLimiter
from vehicle_detection.cloud.server.engine import make_engine, to_stored
from vehicle_detection.cloud.server.schema import (
    alembic_config, current_revision, head_revision, upgrade)
from vehicle_detection.cloud.server.storage import LocalImageStore, StorageError
from vehicle_detection.wire import is_retryable, snapshot_name


def _tables(url: str) -> set:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_sqlite_migrates_up_from_empty(tmp_path: Path) -> None:
    url = f'sqlite:///{tmp_path}/fresh.db'
    assert current_revision(url) is None
    upgrade(url)
    assert current_revision(url) == head_revision() is not None
    assert {'devices', 'alerts', 'alembic_version'} <= _tables(url)
    upgrade(url)  # idempotent
    assert current_revision(url) == head_revision()


def test_postgres_behind_refuses_to_start(postgres, tmp_path: Path) -> None:
    url = postgres.new_database()
    result = subprocess.run([CLOUD, 'serve', '--db', url, '--storage', str(tmp_path),
                             '--port', str(free_port())], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2
    assert f'vehicle-detection-cloud migrate --db {url}' in result.stderr
    migrated = subprocess.run([CLOUD, 'migrate', '--db', url], capture_output=True, text=True,
                              timeout=60)
    assert migrated.returncode == 0, migrated.stderr
    assert current_revision(url) == head_revision()
    assert {'devices', 'alerts'} <= _tables(url)


@pytest.mark.parametrize('backend', ['sqlite', 'postgresql'])
def test_migration_0005_sets_duplicate_periods_aside(backend: str, request,
                                                     tmp_path: Path) -> None:
    """An old database with periods stored twice migrates; nothing is lost, nothing summed."""
    url = (f'sqlite:///{tmp_path}/old.db' if backend == 'sqlite'
           else request.getfixturevalue('postgres').new_database())
    command.upgrade(alembic_config(url), '0004')
    engine = make_engine(url)
    try:
        with engine.begin() as db:
            db.execute(text('INSERT INTO devices (id, name, key_hash, created_at) VALUES '
                            "(1, 'edge-1', 'k1', '2026-01-01'), "
                            "(2, 'edge-2', 'k2', '2026-01-01')"))
            # edge-1 cam0 08:00 three times (ids 1, 2, 3), edge-1 cam1 08:00 and edge-2 cam0
            # 08:00 once each: only two records of the first period are duplicates.
            for pk, device, camera, record_id in ((1, 1, 'cam0', 'a'), (2, 1, 'cam0', 'b'),
                                                  (3, 1, 'cam0', 'c'), (4, 1, 'cam1', 'd'),
                                                  (5, 2, 'cam0', 'e')):
                db.execute(text('INSERT INTO count_records (id, record_id, device_id, camera_id, '
                                'period_start, period_s, received_at) VALUES (:pk, :rid, :dev, '
                                ":cam, 1772438400, 60, '2026-03-02 08:01:00.000000')"),
                           {'pk': pk, 'rid': record_id * 8, 'dev': device, 'cam': camera})
                db.execute(text('INSERT INTO traffic_counts (record_id, device_id, line, '
                                'direction, class_name, period_start, count) VALUES (:pk, :dev, '
                                "'bar', 'away', 'car', 1772438400, :n)"),
                           {'pk': pk, 'dev': device, 'n': 10 * pk})
        command.upgrade(alembic_config(url), '0005')
        with engine.begin() as db:
            kept = db.execute(text('SELECT r.record_id, t.count FROM count_records r JOIN '
                                   'traffic_counts t ON t.record_id = r.id ORDER BY r.id')).all()
            assert [tuple(row) for row in kept] == [('a' * 8, 10), ('d' * 8, 40), ('e' * 8, 50)]
            aside = db.execute(text('SELECT record_id, kept_record_id, counts, period_start '
                                    'FROM count_duplicates ORDER BY record_id')).all()
            assert [(r[0], r[1], r[3]) for r in aside] == [
                ('b' * 8, 'a' * 8, 1772438400), ('c' * 8, 'a' * 8, 1772438400)]
            assert [json.loads(r[2]) if isinstance(r[2], str) else r[2] for r in aside] == [
                [['bar', 'away', 'car', 20]], [['bar', 'away', 'car', 30]]]
            keys = db.execute(text('SELECT device_id, day, line FROM count_keys ORDER BY '
                                   'device_id')).all()
            assert [tuple(k) for k in keys] == [(1, 20514, 'bar'), (2, 20514, 'bar')]
        with pytest.raises(IntegrityError), engine.begin() as db:  # one period, once
            db.execute(text('INSERT INTO count_records (record_id, device_id, camera_id, '
                            "period_start, period_s, received_at) VALUES ('ffffffff', 1, "
                            "'cam0', 1772438400, 60, '2026-03-02')"))
        command.downgrade(alembic_config(url), '0004')  # puts the set-aside records back
        with engine.begin() as db:
            restored = db.execute(text('SELECT sum(t.count), count(*) FROM traffic_counts t '
                                       'JOIN count_records r ON t.record_id = r.id')).one()
            assert tuple(restored) == (150, 5)
    finally:
        engine.dispose()


@pytest.mark.parametrize('backend', ['sqlite', 'postgresql'])
def test_migration_0015_adds_scheme_and_quality_and_goes_back(
        backend: str, request, tmp_path: Path) -> None:
    """Records of before 0015 keep their counts with a null quality; a downgrade keeps them."""
    url = (f'sqlite:///{tmp_path}/old.db' if backend == 'sqlite'
           else request.getfixturevalue('postgres').new_database())
    command.upgrade(alembic_config(url), '0010')
    engine = make_engine(url)
    try:
        with engine.begin() as db:
            db.execute(text('INSERT INTO devices (id, name, key_hash, created_at) VALUES '
                            "(1, 'edge-1', 'k1', '2026-01-01')"))
            db.execute(text('INSERT INTO count_records (id, record_id, device_id, camera_id, '
                            "period_start, period_s, received_at) VALUES (1, 'aaaaaaaa', 1, "
                            "'cam0', 1772438400, 60, '2026-03-02 08:01:00')"))
        command.upgrade(alembic_config(url), '0015')
        with engine.begin() as db:
            old = db.execute(text('SELECT scheme, quality_flags, observed_s FROM '
                                  'count_records')).one()
            assert tuple(old) == (None, None, None)
            db.execute(text('INSERT INTO count_records (id, record_id, device_id, camera_id, '
                            'period_start, period_s, received_at, scheme, quality_flags, '
                            "observed_s) VALUES (2, 'bbbbbbbb', 1, 'cam0', 1772438460, 60, "
                            "'2026-03-02 08:02:00', 'uk6', 3, 42.5)"))
        command.downgrade(alembic_config(url), '0010')
        columns = {c['name'] for c in inspect(engine).get_columns('count_records')}
        assert not columns & {'scheme', 'quality_flags', 'observed_s'}
        with engine.begin() as db:
            assert db.execute(text('SELECT count(*) FROM count_records')).scalar_one() == 2
    finally:
        engine.dispose()


def test_storage_never_leaves_its_root(tmp_path: Path) -> None:
    store = LocalImageStore(str(tmp_path / 'images'))
    for name in ('../escape.jpg', '/etc/passwd', 'a/../../escape.jpg'):
        with pytest.raises(StorageError, match='outside'):
            store.put(name, b'x')
    assert not (tmp_path / 'escape.jpg').exists()
    now = datetime.now(timezone.utc)
    with pytest.raises(ValueError):
        snapshot_name(now, '../cam', '00000000-0000-0000-0000-000000000000')
    with pytest.raises(ValueError):
        snapshot_name(now, 'cam', '../../x')


def test_rate_limiter_refills() -> None:
    limiter = RateLimiter(rate=2.0, burst=2.0)
    assert limiter.acquire('a', now=0.0) is None and limiter.acquire('a', now=0.0) is None
    assert limiter.acquire('a', now=0.0) == 1  # empty: wait a second
    assert limiter.acquire('b', now=0.0) is None  # per device
    assert limiter.acquire('a', now=0.6) is None  # refilled 1.2 tokens


def test_retry_rule_of_the_wire_contract() -> None:
    assert is_retryable(None) and is_retryable(500) and is_retryable(503)
    assert is_retryable(408) and is_retryable(429)
    assert not any(is_retryable(code) for code in (400, 401, 403, 404, 409, 413, 415, 422))


def test_extreme_times_are_clamped_not_crashing() -> None:
    # Found by the OpenAPI property run: year 1 with a positive offset overflowed.
    from datetime import timedelta

    early = datetime(1, 1, 1, 0, 0, 5, tzinfo=timezone(timedelta(hours=4)))
    assert to_stored(early) == datetime.min
    late = datetime(9999, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=-4)))
    assert to_stored(late) == datetime.max
    assert to_stored(datetime(2026, 1, 1, 12, tzinfo=timezone(timedelta(hours=2)))) == \
        datetime(2026, 1, 1, 10)
