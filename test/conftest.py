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

"""Shared fixtures: isolated ROS domains, rclpy contexts, paths to ../shared data."""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Iterator

import pytest

from vehicle_detection.ros.transport import tune_transport

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get('VD_SHARED', REPO.parent / 'shared'))
SAMPLES = SHARED / 'samples'
MODEL = SHARED / 'models' / 'yolox_nano.onnx'

os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
# Same process set-up as the nodes' entry points, before any rclpy context exists.
tune_transport()
_domains = itertools.count()


def require_asset(path: Path) -> Path:
    """Return ``path``, or skip (fail under VD_REQUIRE_ASSETS=1) when it is absent."""
    if not path.exists():
        reason = f'{path} is absent: put ../shared beside the checkout'
        if os.environ.get('VD_REQUIRE_ASSETS') == '1':
            pytest.fail(reason + ' (VD_REQUIRE_ASSETS=1)')
        pytest.skip(reason)
    return path


@pytest.fixture
def samples_dir() -> Path:
    """Return the real photos folder ../shared/samples."""
    return require_asset(SAMPLES)


@pytest.fixture
def model_path() -> Path:
    """Return the real YOLOX-Nano COCO model in ../shared/models."""
    return require_asset(MODEL)


@pytest.fixture
def domain_id() -> int:
    """Pick a ROS domain for this test alone: no cross-talk with other tests or runs."""
    return 1 + (os.getpid() * 7 + next(_domains)) % 100


@pytest.fixture
def ros_context(domain_id: int) -> Iterator[object]:
    """Give one test a fresh rclpy Context, shut down afterwards."""
    import rclpy
    from rclpy.context import Context
    context = Context()
    rclpy.init(context=context, domain_id=domain_id)
    yield context
    context.try_shutdown()


@pytest.fixture
def ros_env(domain_id: int) -> dict:
    """Return the environment for node subprocesses in this test's domain."""
    env = dict(os.environ)
    env['ROS_DOMAIN_ID'] = str(domain_id)
    env['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    env['PYTHONUNBUFFERED'] = '1'
    return env


def pytest_collection_modifyitems(config, items) -> None:
    """
    Run the linters first.

    flake8 forks worker processes; a fork taken while DDS threads of earlier
    node tests are alive can deadlock on a lock held by one of them.
    """
    items.sort(key=lambda item: 0 if item.get_closest_marker('linter') else 1)


@pytest.fixture(scope='session')
def postgres():
    """Yield a PostgreSQL cluster on 127.0.0.1 for this test session."""
    from cloud_helpers import PostgresServer

    server = PostgresServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope='session')
def seaweedfs():
    """Yield a SeaweedFS (S3) server on 127.0.0.1 for this test session."""
    from object_stores import SeaweedServer

    server = SeaweedServer()
    try:
        yield server
    finally:
        server.stop()


def pytest_generate_tests(metafunc) -> None:
    """
    Run the tests of a server (``fleet``) on SQLite and PostgreSQL, and on each store.

    A test marked ``snapshots`` also runs with its snapshots in object storage
    (``fleet``: PostgreSQL and SeaweedFS, the fleet's set-up); a test that
    asks for ``snapshot_store`` runs on the local disk and on SeaweedFS.
    """
    snapshots = metafunc.definition.get_closest_marker('snapshots') is not None
    if 'fleet' in metafunc.fixturenames:
        kinds = ['sqlite', 'postgresql'] + (['postgresql-s3'] if snapshots else [])
        metafunc.parametrize('fleet', kinds, indirect=True, scope='module')
    if 'snapshot_store' in metafunc.fixturenames:
        metafunc.parametrize('snapshot_store', ['local', 's3'], indirect=True)


@pytest.fixture
def snapshot_store(request, tmp_path: Path):
    """Return a snapshot store for one test: a folder, or a new bucket of SeaweedFS."""
    from object_stores import BucketTestStore, LocalTestStore

    if request.param == 'local':
        return LocalTestStore(tmp_path / 'images')
    return BucketTestStore(request.getfixturevalue('seaweedfs'))


@pytest.fixture(scope='module')
def fleet(request, tmp_path_factory) -> Iterator[object]:
    """Run a real server, on SQLite or PostgreSQL, with devices edge-1 and edge-2."""
    from cloud_helpers import add_device, cloud_cli, CloudServer, Fleet
    from object_stores import BucketTestStore, LocalTestStore

    folder = tmp_path_factory.mktemp(request.param)
    store = (BucketTestStore(request.getfixturevalue('seaweedfs'))
             if request.param.endswith('-s3') else LocalTestStore(folder / 'images'))
    storage = store.location
    if request.param == 'sqlite':
        db = f'sqlite:///{folder}/cloud.db'
    else:
        db = request.getfixturevalue('postgres').new_database()
        cloud_cli('migrate', db=db, storage=storage)
    keys = {name: add_device(name, db, storage) for name in ('edge-1', 'edge-2')}
    # A high rate limit: the tests here send bursts (the limit has its own test).
    server = CloudServer(db, storage, ['--max-body-mb', '1', '--rate-limit', '1000'],
                         env=store.env)
    try:
        yield Fleet(server, keys, store)
    finally:
        server.stop()


@pytest.fixture
def redis_server():
    """Yield a Redis server (Debian's redis-server) of its own on 127.0.0.1 (starts in ~0.1 s)."""
    from redis_server import RedisServer

    server = RedisServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fake() -> Iterator[str]:
    """Yield the URL of a fake cloud (fake_cloud.py) for one test; its rule is the test's."""
    from fake_cloud import serve_fake_cloud

    yield from serve_fake_cloud()


@pytest.fixture
def browser() -> Iterator[object]:
    """Yield a headless Chromium (browser_pages.chromium); a module may define its own."""
    from browser_pages import chromium

    yield from chromium()
