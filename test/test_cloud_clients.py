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

"""Clients a server on the internet meets: forged forwarded headers, slow and dropped bodies."""

from __future__ import annotations

from pathlib import Path
import socket
import threading
import time
from typing import List

from cloud_helpers import add_device, alert_body, CloudServer, jpeg_bytes
import requests
from waiting import wait_until

FORGED = [f'203.0.113.{index}' for index in range(1, 26)]  # TEST-NET-3: nobody's address


def wrong_logins(server: CloudServer, forwarded_for: List[str]) -> List[int]:
    """
    Post one wrong login per forged X-Forwarded-For address; return the status codes.

    Each with a name of its own: only a limit by address can stop them.
    """
    return [requests.post(f'{server.url}/api/v1/session', timeout=30,
                          json={'name': f'guess-{index}', 'password': 'not the password'},
                          headers={'X-Forwarded-For': address}).status_code
            for index, address in enumerate(forwarded_for)]


def test_forwarded_for_counts_only_from_the_proxies_named(tmp_path: Path) -> None:
    direct = CloudServer(f'sqlite:///{tmp_path}/direct.db', str(tmp_path / 'direct'))
    proxied = CloudServer(f'sqlite:///{tmp_path}/proxied.db', str(tmp_path / 'proxied'),
                          ['--forwarded-allow-ips', '127.0.0.1'])
    try:
        started = time.monotonic()
        direct_codes = wrong_logins(direct, FORGED)
        elapsed = time.monotonic() - started
        wrong_logins(proxied, FORGED[:3])
    finally:
        direct.stop()
        proxied.stop()
    # Every forged address is the same client, 127.0.0.1: limited after its 10
    # failures (then one every 2 s, or locked: README).
    assert 429 in direct_codes, direct_codes
    assert direct_codes.count(401) <= 10 + elapsed / 2 + 1, (direct_codes, elapsed)
    failures = [line for line in direct.output().splitlines() if 'failed login' in line]
    assert len(failures) >= 10 and all('from 127.0.0.1' in line for line in failures)
    assert '203.0.113.' not in direct.output()
    # Behind a proxy named by the operator, the address it forwards is the client's.
    for address in FORGED[:3]:
        assert f'from {address}' in proxied.output(), proxied.output()[-2000:]


def test_a_wrong_proxy_address_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    from cloud_helpers import cloud_cli

    result = cloud_cli('serve', '--forwarded-allow-ips', '127.0.0.1,proxy.example', check=False,
                       db=f'sqlite:///{tmp_path}/cloud.db', storage=str(tmp_path / 'images'))
    assert result.returncode == 2
    assert 'not an IP address or network: proxy.example' in result.stderr


class Trickle:
    """Sockets that send a request's headers, then its body one byte per pause."""

    def __init__(self, port: int, count: int, pause: float) -> None:
        self.sockets: List[socket.socket] = []
        for _ in range(count):  # a login that would take 100 pauses to arrive
            connection = socket.create_connection(('127.0.0.1', port), timeout=10)
            connection.sendall(b'POST /api/v1/session HTTP/1.1\r\nHost: x\r\n'
                               b'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n')
            self.sockets.append(connection)
        self.started = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._send, args=(pause,), daemon=True)
        self._thread.start()

    def _send(self, pause: float) -> None:
        while not self._stop.wait(pause):
            for connection in self.sockets:
                try:
                    connection.send(b' ')
                except OSError:
                    pass  # cut off already

    def wait_all_cut_off(self, timeout: float) -> float:
        """Wait until the server closed every socket; return the seconds that took."""
        for connection in self.sockets:
            connection.settimeout(max(0.1, self.started + timeout - time.monotonic()))
            try:
                assert connection.recv(1024) == b''  # EOF: closed without an answer
            except ConnectionResetError:
                pass  # closed while a byte was on its way
        return time.monotonic() - self.started

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        for connection in self.sockets:
            connection.close()


def send_slowly(port: int, body: bytes, chunk: int, pause: float) -> bytes:
    """Send a login body at chunk/pause bytes per second; return the status line."""
    with socket.create_connection(('127.0.0.1', port), timeout=30) as connection:
        connection.sendall(b'POST /api/v1/session HTTP/1.1\r\nHost: x\r\n'
                           b'Content-Type: application/json\r\n'
                           b'Content-Length: %d\r\n\r\n' % len(body))
        pace = threading.Event()
        for start in range(0, len(body), chunk):
            connection.sendall(body[start:start + chunk])
            pace.wait(pause)
        return connection.recv(1024).split(b'\r\n')[0]


def test_slow_bodies_are_cut_off_and_a_slow_uplink_still_gets_in(tmp_path: Path) -> None:
    # Headers and pauses within 1 s; a body must average 1 KiB/s after that.
    server = CloudServer(f'sqlite:///{tmp_path}/cloud.db', str(tmp_path / 'images'),
                         ['--read-timeout', '1', '--min-body-rate', '1'])
    trickle = Trickle(server.port, 300, pause=0.5)  # each pause shorter than the timeout
    try:
        # A 3 KiB body at 1.5 KiB/s: 2 s, longer than the timeout, faster than the rate.
        body = b'{"name": "ana", "password": "%s"}' % (b'x' * 1000) + b' ' * 2000
        assert send_slowly(server.port, body, 192, 0.125) == b'HTTP/1.1 401 Unauthorized'
        assert requests.get(f'{server.url}/api/v1/health', timeout=5).status_code == 200
        took = trickle.wait_all_cut_off(timeout=8)
        assert took < 8
        assert requests.get(f'{server.url}/api/v1/health', timeout=5).status_code == 200
    finally:
        trickle.close()
        server.stop()
    cut = [line for line in server.output().splitlines()
           if 'request body of POST /api/v1/session not received in time' in line]
    assert len(cut) == 300, server.output()[-2000:]
    assert 'Traceback' not in server.output()


def test_a_dropped_or_cut_off_upload_is_one_line_in_the_log(tmp_path: Path) -> None:
    db, storage = f'sqlite:///{tmp_path}/cloud.db', str(tmp_path / 'images')
    key = add_device('edge-1', db, storage)
    server = CloudServer(db, storage, ['--read-timeout', '1'])
    dropped, stalled = alert_body('edge-1'), alert_body('edge-1')
    image = jpeg_bytes()
    try:
        for alert in (dropped, stalled):
            assert requests.post(f'{server.url}/api/v1/alerts', json=alert, timeout=10,
                                 headers={'X-API-Key': key}).status_code == 201
            connection = socket.create_connection(('127.0.0.1', server.port), timeout=10)
            connection.sendall(f'PUT /api/v1/alerts/{alert["event_id"]}/image HTTP/1.1\r\n'
                               f'Host: x\r\nX-API-Key: {key}\r\nContent-Type: image/jpeg\r\n'
                               f'Content-Length: {len(image)}\r\n\r\n'.encode()
                               + image[:len(image) // 2])
            if alert is dropped:
                connection.close()  # the link is gone halfway
            else:  # the link stalls: the server cuts it off
                connection.settimeout(10)
                assert connection.recv(1024) == b''
                connection.close()

        def both_logged() -> bool:
            return all(alert['event_id'] in server.output() for alert in (dropped, stalled))

        wait_until(both_logged, 10, 'the dropped and the cut-off upload in the log')
        assert requests.get(f'{server.url}/api/v1/health', timeout=5).status_code == 200
    finally:
        server.stop()
    lines = server.output().splitlines()
    for alert in (dropped, stalled):
        assert len([line for line in lines if alert['event_id'] in line]) == 1, lines[-20:]
    assert any('went away before its request body was in' in line and dropped['event_id'] in line
               for line in lines)
    assert 'Traceback' not in server.output(), server.output()[-3000:]


def test_behind_a_tls_proxy_the_session_cookie_is_secure_and_hsts_is_sent(tmp_path: Path
                                                                          ) -> None:
    from cloud_helpers import cloud_cli

    db, storage = f'sqlite:///{tmp_path}/cloud.db', str(tmp_path / 'images')
    cloud_cli('add-user', 'ana', '--password-stdin', db=db, storage=storage,
              stdin='a long enough password\n')
    proxied = CloudServer(db, storage, ['--forwarded-allow-ips', '127.0.0.1'], public=False)
    try:
        login = {'name': 'ana', 'password': 'a long enough password'}
        via_proxy = requests.post(f'{proxied.url}/api/v1/session', json=login, timeout=30,
                                  headers={'X-Forwarded-Proto': 'https'})
        plain = requests.post(f'{proxied.url}/api/v1/session', json=login, timeout=30)
    finally:
        proxied.stop()
    assert via_proxy.status_code == plain.status_code == 200
    assert 'secure' in via_proxy.headers['set-cookie'].lower()
    assert via_proxy.headers['strict-transport-security'] == 'max-age=31536000'
    # Plain http (no proxy saying https): a Secure cookie would never come back.
    assert 'secure' not in plain.headers['set-cookie'].lower()
    assert 'strict-transport-security' not in plain.headers
