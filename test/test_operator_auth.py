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

"""Operators log in; scripts read with tokens; nothing is readable without one."""

from __future__ import annotations

from pathlib import Path
import sqlite3
import subprocess
import time
from typing import Iterator, Tuple

from cloud_helpers import (
    add_device, alert_body, CLOUD, cloud_cli, CloudServer, free_port, jpeg_bytes)
import pytest
import requests
from waiting import wait_until

PASSWORD = 'correct horse battery'


def add_user(server: CloudServer, name: str, password: str = PASSWORD,
             role: str = 'viewer') -> subprocess.CompletedProcess:
    return subprocess.run([CLOUD, 'add-user', name, '--role', role, '--password-stdin',
                           '--db', server.db, '--storage', server.storage],
                          input=password + '\n', capture_output=True, text=True, timeout=60)


@pytest.fixture
def private(tmp_path: Path) -> Iterator[Tuple[CloudServer, str, str]]:
    """Run a server that needs a login, with one alert and its snapshot (server, key, event)."""
    db, storage = f'sqlite:///{tmp_path}/cloud.db', str(tmp_path / 'images')
    key = add_device('edge-1', db, storage)
    server = CloudServer(db, storage, public=False)
    try:
        body = alert_body('edge-1')
        headers = {'X-API-Key': key}
        assert requests.post(f'{server.url}/api/v1/alerts', json=body, headers=headers,
                             timeout=10).status_code == 201
        assert requests.put(f'{server.url}/api/v1/alerts/{body["event_id"]}/image',
                            data=jpeg_bytes(), timeout=10,
                            headers={**headers, 'Content-Type': 'image/jpeg'}).status_code == 201
        yield server, key, body['event_id']
    finally:
        server.stop()


def read_paths(event: str) -> list:
    return ['/api/v1/alerts', f'/api/v1/alerts/{event}', f'/api/v1/alerts/{event}/image',
            f'/api/v1/alerts/{event}/image?thumbnail=true', '/api/v1/devices',
            '/api/v1/stats', '/api/v1/session', '/metrics', '/docs', '/openapi.json']


def test_every_read_needs_a_login_or_a_read_token(private) -> None:
    server, key, event = private
    for path in read_paths(event):
        url = server.url + path
        assert requests.get(url, timeout=10).status_code == 401, path
        assert requests.get(url, headers={'X-API-Key': key}, timeout=10).status_code == 401
        assert requests.get(url, headers={'Authorization': 'Bearer vdt_forged'},
                            timeout=10).status_code in (401, 429), path
        answer = requests.get(url, headers={'Authorization': f'Bearer {server.token}'},
                              timeout=10)
        assert answer.status_code == 200, (path, answer.text[:200])
        if '/image' in path:
            assert answer.headers['Cache-Control'].startswith('private')
    page = requests.get(server.url + '/', allow_redirects=False, timeout=10)
    assert page.status_code == 303 and page.headers['Location'] == '/login'
    assert requests.get(server.url + '/api/v1/health', timeout=10).status_code == 200


def test_revoked_read_tokens_stop_working(private) -> None:
    server, _, _ = private
    token = cloud_cli('add-token', 'script', db=server.db,
                      storage=server.storage).stdout.strip().splitlines()[-1]
    headers = {'Authorization': f'Bearer {token}'}
    assert requests.get(f'{server.url}/api/v1/alerts', headers=headers,
                        timeout=10).status_code == 200
    cloud_cli('revoke-token', 'script', db=server.db, storage=server.storage)
    assert requests.get(f'{server.url}/api/v1/alerts', headers=headers,
                        timeout=10).status_code == 401


def test_login_sets_a_safe_cookie_and_logout_ends_it(private, tmp_path: Path) -> None:
    server, _, _ = private
    assert add_user(server, 'ana', role='admin').returncode == 0
    assert add_user(server, 'bob', password='short').returncode == 1  # too short
    with sqlite3.connect(tmp_path / 'cloud.db') as connection:
        stored = connection.execute("SELECT password_hash FROM operators WHERE name = 'ana'"
                                    ).fetchone()[0]
    assert stored.startswith('$argon2id$') and PASSWORD not in stored
    session = requests.Session()
    wrong = session.post(f'{server.url}/api/v1/session', timeout=10,
                         json={'name': 'ana', 'password': 'not it at all'})
    assert wrong.status_code == 401 and 'vd_session' not in session.cookies
    right = session.post(f'{server.url}/api/v1/session', timeout=10,
                         json={'name': 'ana', 'password': PASSWORD})
    assert right.status_code == 200 and right.json() == {'name': 'ana', 'role': 'admin',
                                                         'via': 'session'}
    cookie = right.headers['Set-Cookie']
    assert 'HttpOnly' in cookie and 'SameSite=strict' in cookie and 'Secure' not in cookie
    assert session.get(f'{server.url}/api/v1/alerts', timeout=10).status_code == 200
    assert session.get(f'{server.url}/', timeout=10).status_code == 200
    stolen = dict(session.cookies)
    assert session.delete(f'{server.url}/api/v1/session', timeout=10).status_code == 204
    assert requests.get(f'{server.url}/api/v1/alerts', cookies=stolen,
                        timeout=10).status_code == 401  # the old cookie is dead


def test_failed_authentications_are_limited_and_logged(private) -> None:
    server, _, _ = private
    started = time.monotonic()
    codes = [requests.post(f'{server.url}/api/v1/session', timeout=10,
                           json={'name': 'mallory', 'password': f'guess {i}'}).status_code
             for i in range(14)]
    # Five failures lock the name (test_login_lock.py has the lock's own tests).
    assert codes == [401] * 5 + [429] * 9, codes
    keys = [requests.post(f'{server.url}/api/v1/alerts', json=alert_body('edge-1'),
                          headers={'X-API-Key': f'vdk_guess{i}'}, timeout=10).status_code
            for i in range(10)]
    elapsed = time.monotonic() - started
    # The five failed logins took five of the address's ten failures, and the same
    # address keeps being slowed down: 10 failures in all, then one every 2 s.
    assert keys[:5] == [401] * 5 and 429 in keys, keys
    assert keys.count(401) <= 5 + 1 + elapsed / 2, (keys, elapsed)
    server.stop()
    log = server.output()
    assert "failed login for 'mallory' from 127.0.0.1" in log
    assert 'bad device key from 127.0.0.1' in log


def test_security_headers_on_every_response(private) -> None:
    server, _, event = private
    for path in ('/login', '/api/v1/health', '/api/v1/alerts', f'/api/v1/alerts/{event}/image'):
        headers = requests.get(server.url + path, timeout=10,
                               headers={'Authorization': f'Bearer {server.token}'}).headers
        assert "default-src 'self'" in headers['Content-Security-Policy'], path
        assert "frame-ancestors 'none'" in headers['Content-Security-Policy']
        assert headers['X-Content-Type-Options'] == 'nosniff'
        assert headers['X-Frame-Options'] == 'DENY'
        assert headers['Referrer-Policy'] == 'no-referrer'
        assert 'Strict-Transport-Security' not in headers  # plain http here


def test_https_with_tls_cert_and_key(tmp_path: Path) -> None:
    cert, key_file = tmp_path / 'cert.pem', tmp_path / 'key.pem'
    subprocess.run(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2',
                    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
                    '-keyout', str(key_file), '-out', str(cert)], check=True,
                   capture_output=True, timeout=60)
    db, storage = f'sqlite:///{tmp_path}/cloud.db', str(tmp_path / 'images')
    cloud_cli('migrate', db=db, storage=storage)
    port = free_port()
    process = subprocess.Popen([CLOUD, 'serve', '--db', db, '--storage', storage, '--port',
                                str(port), '--tls-cert', str(cert), '--tls-key', str(key_file)],
                               stdout=(tmp_path / 'server.log').open('wb'),
                               stderr=subprocess.STDOUT)
    url = f'https://127.0.0.1:{port}'
    try:
        server = CloudServer.__new__(CloudServer)
        server.db, server.storage = db, storage
        assert add_user(server, 'ana').returncode == 0
        answers: list = []

        def healthy() -> bool:
            assert process.poll() is None, 'the server exited'
            try:
                answers.append(requests.get(f'{url}/api/v1/health', verify=str(cert),
                                            timeout=5))
            except requests.ConnectionError:
                return False
            return True

        wait_until(healthy, timeout=30, what='the https server', poll=0.2)
        health = answers[-1]
        assert health.status_code == 200
        assert health.headers['Strict-Transport-Security'].startswith('max-age=')
        login = requests.post(f'{url}/api/v1/session', verify=str(cert), timeout=10,
                              json={'name': 'ana', 'password': PASSWORD})
        assert login.status_code == 200 and 'Secure' in login.headers['Set-Cookie']
    finally:
        process.send_signal(2)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            raise AssertionError((tmp_path / 'server.log').read_text()[-3000:]) from None
