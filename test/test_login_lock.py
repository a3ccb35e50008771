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

"""The login lock: checked before any password hash, shared by every worker, bounded hashing."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
import re
import subprocess
import threading
from typing import Iterator, List

from cloud_helpers import CLOUD, cloud_cli, CloudServer
import psutil
import pytest
import requests

from vehicle_detection.cloud.server.engine import make_engine
from vehicle_detection.cloud.server.login_guard import (
    ADDRESS_FAILURES, FIRST_LOCK_S, FORGET_S, LoginGuardStore, MAX_LOCK_S, NAME_FAILURES)
from vehicle_detection.cloud.server.schema import upgrade

PASSWORD = 'correct horse battery'


def add_user(server: CloudServer, name: str, role: str = 'viewer') -> None:
    result = subprocess.run([CLOUD, 'add-user', name, '--role', role, '--password-stdin',
                             '--db', server.db, '--storage', server.storage],
                            input=PASSWORD + '\n', capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def log_in(server: CloudServer, name: str, password: str = PASSWORD) -> requests.Response:
    return requests.post(f'{server.url}/api/v1/session', timeout=30,
                         json={'name': name, 'password': password})


def metric(server: CloudServer, name: str) -> float:
    """Return a counter's value from /metrics (0 when it has no sample yet)."""
    text = requests.get(f'{server.url}/metrics', timeout=10,
                        headers={'Authorization': f'Bearer {server.token}'}).text
    found = re.findall(rf'^{re.escape(name)} ([0-9.e+]+)$', text, re.MULTILINE)
    assert found or f'# TYPE {name.split("{")[0]}' in text, f'{name} not exported'
    return float(found[0]) if found else 0.0


HASHES = 'vd_password_hashes_total'


@pytest.fixture
def private(tmp_path: Path) -> Iterator[CloudServer]:
    """Run a server that needs a login (one worker, SQLite)."""
    db, storage = f'sqlite:///{tmp_path}/cloud.db', str(tmp_path / 'images')
    cloud_cli('migrate', db=db, storage=storage)
    server = CloudServer(db, storage, public=False)
    try:
        yield server
    finally:
        server.stop()


def post_without_credentials(server: CloudServer) -> None:
    """Post logins without a name or password, or with bad bodies: 422, never a hash."""
    url = f'{server.url}/api/v1/session'
    bodies = [{}, {'name': '', 'password': ''}, {'name': 'ana'}, {'password': PASSWORD},
              {'name': 'ana', 'password': ''}, {'name': '', 'password': PASSWORD},
              {'name': 'a' * 65, 'password': PASSWORD}, [], 'ana', None]
    for body in bodies:
        assert requests.post(url, json=body, timeout=10).status_code == 422, body
    for raw in (b'', b'name=ana&password=x', b'{"name": "ana", "password"'):
        assert requests.post(url, data=raw, timeout=10).status_code == 422, raw
    assert metric(server, HASHES) == 0


def test_locked_names_and_addresses_refuse_the_right_password_without_hashing(private) -> None:
    server = private
    add_user(server, 'ana')
    post_without_credentials(server)  # no hash, and none of them counted as a failure
    assert log_in(server, 'ana').status_code == 200
    assert metric(server, HASHES) == 1
    codes = [log_in(server, 'ana', f'guess {i}').status_code for i in range(NAME_FAILURES)]
    assert codes == [401] * NAME_FAILURES
    locked = log_in(server, 'ana')  # the right password, during the lock
    assert locked.status_code == 429, locked.text
    assert 0 < int(locked.headers['Retry-After']) <= FIRST_LOCK_S
    assert 'vd_session' not in locked.cookies
    # A name that does not exist locks the same way and gets the same answer.
    codes = [log_in(server, 'ghost', f'guess {i}').status_code for i in range(NAME_FAILURES)]
    assert codes == [401] * NAME_FAILURES
    ghost = log_in(server, 'ghost')
    assert (ghost.status_code, ghost.json()) == (429, locked.json())
    # 10 failures from one address lock the address: a name that never failed is refused.
    assert NAME_FAILURES * 2 == ADDRESS_FAILURES
    assert log_in(server, 'carol').status_code == 429
    hashed = metric(server, HASHES)
    assert hashed == 1 + 2 * NAME_FAILURES  # each failure cost one hash, each refusal none
    refused = [log_in(server, 'ana', f'guess {i}').status_code for i in range(50)]
    assert refused == [429] * 50
    assert metric(server, HASHES) == hashed
    locked_refusals = metric(server, 'vd_login_refusals_total{reason="locked"}')
    assert locked_refusals == 3 + 50  # ana, ghost, carol, then 50
    server.stop()
    assert "failed login for 'ana' from 127.0.0.1" in server.output()


def test_server_memory_stays_bounded_under_concurrent_logins(private) -> None:
    server = private
    add_user(server, 'ana')
    process = psutil.Process(server.process.pid)
    before = process.memory_info().rss
    peak = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.02):  # a sampler, not a wait for a condition
            peak[0] = max(peak[0], process.memory_info().rss)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(lambda _: log_in(server, 'ana'), range(32)))
    finally:
        done.set()
        sampler.join()
    codes = [answer.status_code for answer in answers]
    # Right passwords: each is hashed (or turned away busy with 503), none locked.
    assert set(codes) <= {200, 503} and codes.count(200) >= 2, codes
    assert all(a.headers['Retry-After'] == '1' for a in answers if a.status_code == 503)
    grown_mb = (peak[0] - before) / 2 ** 20
    print(f'RSS {before / 2 ** 20:.0f} MB, peak {peak[0] / 2 ** 20:.0f} MB, {codes.count(200)} '
          f'logins of 32, {codes.count(503)} busy')
    # Two hashes at once take 2 x 64 MiB; sixteen took ~1 GB before the bound.
    assert grown_mb < 300, f'RSS grew by {grown_mb:.0f} MB ({before / 2 ** 20:.0f} MB before)'


@pytest.mark.parametrize('backend', ['sqlite', 'postgresql'])
def test_workers_share_one_lock(backend: str, tmp_path: Path, request) -> None:
    storage = str(tmp_path / 'images')
    db = (f'sqlite:///{tmp_path}/cloud.db' if backend == 'sqlite'
          else request.getfixturevalue('postgres').new_database())
    cloud_cli('migrate', db=db, storage=storage)
    server = CloudServer(db, storage, ['--workers', '3'], public=False)
    try:
        add_user(server, 'ana')
        with ThreadPoolExecutor(16) as pool:  # new connections: spread over the workers
            codes = list(pool.map(lambda i: log_in(server, 'ana', f'guess {i}').status_code,
                                  range(16)))
        # Every attempt is counted before its hash: exactly NAME_FAILURES were checked.
        assert codes.count(401) == NAME_FAILURES, codes
        assert set(codes) <= {401, 429, 503}, codes
        assert [log_in(server, 'ana').status_code for _ in range(6)] == [429] * 6
        assert metric(server, HASHES) == NAME_FAILURES
    finally:
        server.stop()


@pytest.fixture(params=['sqlite', 'postgresql'])
def guard(request, tmp_path: Path) -> Iterator[LoginGuardStore]:
    """Yield the lock's store on a migrated SQLite or PostgreSQL database."""
    url = (f'sqlite:///{tmp_path}/guard.db' if request.param == 'sqlite'
           else request.getfixturevalue('postgres').new_database())
    upgrade(url)
    engine = make_engine(url)
    try:
        yield LoginGuardStore(engine)
    finally:
        engine.dispose()


def fail(guard: LoginGuardStore, name: str, now: float, address: str = '10.0.0.1') -> int:
    """Try a wrong password; return 0 if it was checked, else the seconds to wait."""
    claim = guard.claim(name, address, now=now)
    return 0 if claim.allowed else claim.retry_after


def test_the_lock_doubles_is_capped_and_a_success_clears_it(guard) -> None:
    now = 1_000_000.0
    assert [fail(guard, 'ana', now) for _ in range(NAME_FAILURES)] == [0] * NAME_FAILURES
    assert fail(guard, 'ana', now) == FIRST_LOCK_S
    assert guard.locked('ana', '10.9.9.9', now=now + 1) == FIRST_LOCK_S - 1
    waits = []
    for _ in range(6):  # after each lock one more try, then a lock twice as long
        now += waits[-1] if waits else FIRST_LOCK_S
        assert fail(guard, 'ana', now, address=f'10.1.0.{len(waits)}') == 0
        waits.append(fail(guard, 'ana', now))
    assert waits == [120, 240, 480, 900, 900, 900] and MAX_LOCK_S == 900
    now += MAX_LOCK_S
    claim = guard.claim('ana', '10.2.0.1', now=now)
    assert claim.allowed
    guard.succeeded(claim)  # the right password: the name starts afresh
    assert [fail(guard, 'ana', now, '10.3.0.1') for _ in range(NAME_FAILURES)] == [0] * 5
    assert fail(guard, 'ana', now + FIRST_LOCK_S + FORGET_S + 1, '10.3.0.1') == 0  # forgotten


def test_an_address_is_locked_across_names_and_a_success_gives_its_try_back(guard) -> None:
    now = 2_000_000.0
    for i in range(ADDRESS_FAILURES - 1):
        assert fail(guard, f'user{i}', now) == 0
    claim = guard.claim('bob', '10.0.0.1', now=now)  # the tenth try: it starts the lock...
    assert claim.allowed and guard.locked('carl', '10.0.0.1', now=now) == FIRST_LOCK_S
    guard.succeeded(claim)  # ...but bob's password was right: the address is not locked
    assert guard.locked('carl', '10.0.0.1', now=now) == 0
    assert fail(guard, 'carl', now) == 0  # the tenth failure
    assert fail(guard, 'dora', now) == FIRST_LOCK_S
    assert fail(guard, 'dora', now, address='10.0.0.2') == 0  # another address


def test_concurrent_claims_never_pass_the_limit(guard) -> None:
    barrier = threading.Barrier(16)

    def attempt(i: int) -> bool:
        barrier.wait(timeout=30)
        return guard.claim('ana', f'10.0.1.{i}').allowed

    with ThreadPoolExecutor(16) as pool:
        allowed: List[bool] = list(pool.map(attempt, range(16)))
    assert allowed.count(True) == NAME_FAILURES
