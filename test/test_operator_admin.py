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

"""Accounts: roles that do something, the admin routes, and the user commands."""

from __future__ import annotations

from pathlib import Path
import subprocess
from typing import Iterator, Tuple

from cloud_helpers import add_device, alert_body, CLOUD, cloud_cli, CloudServer
import pytest
import requests
from vehicle_detection.cloud.server.deps import KEY_CACHE_S
from waiting import wait_until

PASSWORD = 'correct horse battery'
ADMIN = '/api/v1/admin'


def user_command(server: CloudServer, *args: str, password: str = PASSWORD
                 ) -> subprocess.CompletedProcess:
    return subprocess.run([CLOUD, *args, '--db', server.db, '--storage', server.storage],
                          input=password + '\n', capture_output=True, text=True, timeout=60)


def logged_in(server: CloudServer, name: str, password: str = PASSWORD) -> requests.Session:
    session = requests.Session()
    answer = session.post(f'{server.url}/api/v1/session', timeout=30,
                          json={'name': name, 'password': password})
    assert answer.status_code == 200, answer.text
    return session


@pytest.fixture
def accounts(tmp_path: Path) -> Iterator[Tuple[CloudServer, str]]:
    """Run a server that needs a login, with users ana (admin), vic (viewer), device edge-1."""
    db, storage = f'sqlite:///{tmp_path}/cloud.db', str(tmp_path / 'images')
    key = add_device('edge-1', db, storage)
    server = CloudServer(db, storage, public=False)
    try:
        for name, role in (('ana', 'admin'), ('vic', 'viewer')):
            result = user_command(server, 'add-user', name, '--role', role, '--password-stdin')
            assert result.returncode == 0, result.stderr
        yield server, key
    finally:
        server.stop()


def test_only_admins_manage(accounts) -> None:
    server, key = accounts
    ana, vic = logged_in(server, 'ana'), logged_in(server, 'vic')
    vic_sessions = [s['id'] for s in ana.get(f'{server.url}{ADMIN}/sessions', timeout=10).json()
                    if s['user'] == 'vic']
    assert len(vic_sessions) == 1
    routes = [('GET', '/users'), ('GET', '/devices'), ('GET', '/sessions'),
              ('POST', '/devices/edge-1/revoke'), ('DELETE', f'/sessions/{vic_sessions[0]}'),
              ('DELETE', '/users/vic/sessions')]
    callers = {'viewer session': (vic, {}), 'read token': (requests.Session(),
                                                           {'Authorization':
                                                            f'Bearer {server.token}'})}
    for method, path in routes:
        url = server.url + ADMIN + path
        for who, (session, headers) in callers.items():
            answer = session.request(method, url, headers=headers, timeout=10)
            assert answer.status_code == 403, (who, method, path, answer.text)
        for headers in ({'X-API-Key': key}, {}):  # a device key is no login
            assert requests.request(method, url, headers=headers,
                                    timeout=10).status_code == 401, (method, path)
    assert vic.get(f'{server.url}/api/v1/alerts', timeout=10).status_code == 200  # still reads
    for method, path in routes:
        answer = ana.request(method, server.url + ADMIN + path, timeout=10)
        assert 200 <= answer.status_code < 300, (method, path, answer.text)
    users = ana.get(f'{server.url}{ADMIN}/users', timeout=10).json()
    assert [(u['name'], u['role'], u['sessions']) for u in users] == [
        ('ana', 'admin', 1), ('vic', 'viewer', 0)]
    devices = ana.get(f'{server.url}{ADMIN}/devices', timeout=10).json()
    assert [(d['name'], d['key']) for d in devices] == [('edge-1', 'revoked')]
    assert vic.get(f'{server.url}/api/v1/alerts', timeout=10).status_code == 401  # ended
    assert ana.post(f'{server.url}{ADMIN}/devices/nope/revoke', timeout=10).status_code == 404
    assert ana.delete(f'{server.url}{ADMIN}/users/nope/sessions',
                      timeout=10).status_code == 404
    assert ana.delete(f'{server.url}{ADMIN}/sessions/{"0" * 16}',
                      timeout=10).status_code == 404
    server.stop()
    assert 'admin ana revoked the key of device edge-1' in server.output()


def test_a_device_revoked_over_http_is_refused_within_the_key_cache_time(accounts) -> None:
    server, key = accounts
    post = lambda: requests.post(f'{server.url}/api/v1/alerts',  # noqa: E731
                                 json=alert_body('edge-1'), headers={'X-API-Key': key},
                                 timeout=10).status_code
    assert post() == 201  # the key is cached as good now
    ana = logged_in(server, 'ana')
    revoked = ana.post(f'{server.url}{ADMIN}/devices/edge-1/revoke', timeout=10)
    assert revoked.status_code == 200 and revoked.json()['key'] == 'revoked'
    wait_until(lambda: post() == 401, timeout=KEY_CACHE_S + 5, what='the revoked key refused',
               poll=0.25)
    listed = cloud_cli('list-devices', db=server.db, storage=server.storage).stdout
    assert 'edge-1\trevoked' in listed


def test_user_commands_end_sessions_and_lift_the_lock(accounts) -> None:
    server, _ = accounts
    vic = logged_in(server, 'vic')
    listed = cloud_cli('list-users', db=server.db, storage=server.storage).stdout.splitlines()
    assert [line.split('\t')[:2] for line in listed] == [['ana', 'admin'], ['vic', 'viewer']]
    assert listed[1].split('\t')[3] == '1 active session(s)' and 'created 20' in listed[1]
    new = 'a new password, longer'
    changed = user_command(server, 'set-password', 'vic', '--password-stdin', password=new)
    assert changed.returncode == 0, changed.stderr
    assert '1 session(s) ended' in changed.stdout
    assert vic.get(f'{server.url}/api/v1/alerts', timeout=10).status_code == 401
    old = requests.post(f'{server.url}/api/v1/session', timeout=30,
                        json={'name': 'vic', 'password': PASSWORD})
    assert old.status_code == 401
    vic = logged_in(server, 'vic', new)
    assert user_command(server, 'set-password', 'vic', '--password-stdin',
                        password='short').returncode == 1
    assert user_command(server, 'set-password', 'nobody', '--password-stdin').returncode == 1
    removed = cloud_cli('remove-user', 'vic', db=server.db, storage=server.storage)
    assert '1 session(s) ended' in removed.stdout
    assert vic.get(f'{server.url}/api/v1/alerts', timeout=10).status_code == 401
    listed = cloud_cli('list-users', db=server.db, storage=server.storage).stdout
    assert 'vic' not in listed and listed.startswith('ana\tadmin')
    assert cloud_cli('remove-user', 'vic', db=server.db, storage=server.storage,
                     check=False).returncode == 1
    # An operator who sets a locked user's password lifts the login lock.
    for i in range(5):
        requests.post(f'{server.url}/api/v1/session', timeout=30,
                      json={'name': 'ana', 'password': f'guess {i}'})
    assert requests.post(f'{server.url}/api/v1/session', timeout=30,
                         json={'name': 'ana', 'password': PASSWORD}).status_code == 429
    assert user_command(server, 'set-password', 'ana', '--password-stdin').returncode == 0
    logged_in(server, 'ana')


def test_a_public_dashboard_opens_no_admin_route(tmp_path: Path) -> None:
    db, storage = f'sqlite:///{tmp_path}/cloud.db', str(tmp_path / 'images')
    server = CloudServer(db, storage, public=True)
    try:
        assert requests.get(f'{server.url}/api/v1/alerts', timeout=10).status_code == 200
        for method, path in (('GET', '/users'), ('GET', '/devices'), ('GET', '/sessions'),
                             ('POST', '/devices/edge-1/revoke'),
                             ('DELETE', '/users/ana/sessions')):
            answer = requests.request(method, server.url + ADMIN + path, timeout=10)
            assert answer.status_code == 401, (method, path)
    finally:
        server.stop()
