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
from pathlib import Path
import subprocess

from cloud_helpers import CLOUD, free_port
import pytest
from sqlalchemy import inspect

from vehicle_detection.cloud.server.access import RateLimiter
from vehicle_detection.cloud.server.db import make_engine, to_stored
from vehicle_detection.cloud.server.schema import current_revision, head_revision, upgrade
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
