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

"""The server's processes: workers live and die with their master, nothing is left behind."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
import signal
import socket
import subprocess
import tempfile
import time

from cloud_helpers import (
    add_device, alert_body, CLOUD, cloud_cli, CloudServer, free_port, wait_http)
import psutil
import requests


def serve(db: str, storage: str, port: int, log: Path) -> subprocess.Popen:
    return subprocess.Popen([CLOUD, 'serve', '--db', db, '--storage', storage, '--port',
                             str(port), '--workers', '2', '--public-dashboard'],
                            stdout=log.open('ab'), stderr=subprocess.STDOUT)


def test_workers_die_with_their_master_and_the_port_is_free_again(tmp_path: Path) -> None:
    db, storage = f'sqlite:///{tmp_path}/cloud.db', str(tmp_path / 'images')
    cloud_cli('migrate', db=db, storage=storage)
    port, log = free_port(), tmp_path / 'server.log'
    before = set(Path(tempfile.gettempdir()).glob('vd-cloud-metrics-*'))
    master = serve(db, storage, port, log)
    url = f'http://127.0.0.1:{port}'
    try:
        wait_http(url + '/api/v1/health', process=master)
        workers = [p for p in psutil.Process(master.pid).children(recursive=True)
                   if 'spawn_main' in ' '.join(p.cmdline())]  # uvicorn's spawned workers
        assert len(workers) >= 2, [p.cmdline() for p in workers]
        master.send_signal(signal.SIGKILL)
        master.wait(timeout=10)
        _, alive = psutil.wait_procs(workers, timeout=15)
        assert not alive, f'orphaned workers: {[p.pid for p in alive]}'
        restarted = serve(db, storage, port, log)  # the same port: nothing holds it
        try:
            wait_http(url + '/api/v1/health', process=restarted)
            assert (Path(storage) / '.metrics').is_dir()  # the workers count there
        finally:
            restarted.send_signal(signal.SIGINT)
            restarted.wait(timeout=30)
    finally:
        if master.poll() is None:
            master.kill()
    assert restarted.returncode == 0, log.read_text()[-2000:]
    assert not (Path(storage) / '.metrics').exists()  # removed at the stop
    assert set(Path(tempfile.gettempdir()).glob('vd-cloud-metrics-*')) == before


def test_half_sent_requests_are_cut_off_and_others_still_served(tmp_path: Path) -> None:
    db, storage = f'sqlite:///{tmp_path}/cloud.db', str(tmp_path / 'images')
    server = CloudServer(db, storage, ['--read-timeout', '1'])
    url = f'{server.url}/api/v1/health'
    sockets = []
    try:
        for index in range(300):  # slowloris: headers that never end, bodies that stall
            connection = socket.create_connection(('127.0.0.1', server.port), timeout=10)
            connection.sendall(b'GET /api/v1/health HTTP/1.1\r\nHost: x\r\n' if index % 2
                               else b'POST /api/v1/alerts HTTP/1.1\r\nHost: x\r\n'
                                    b'Content-Length: 1000\r\n\r\n{"event_id": ')
            sockets.append(connection)
        assert requests.get(url, timeout=5).status_code == 200  # served meanwhile
        started = time.monotonic()
        for connection in sockets:  # the server closes each: recv gives b'' (EOF)
            assert connection.recv(1024) == b''
        assert time.monotonic() - started < 10
        assert requests.get(url, timeout=5).status_code == 200
    finally:
        for connection in sockets:
            connection.close()
        server.stop()
    assert 'request not received within 1 s' in server.output()


def test_the_rate_limit_is_shared_by_every_worker(tmp_path: Path) -> None:
    db, storage = f'sqlite:///{tmp_path}/cloud.db', str(tmp_path / 'images')
    key = add_device('edge-1', db, storage)
    server = CloudServer(db, storage, ['--workers', '3', '--rate-limit', '5'])
    try:
        started = time.monotonic()
        with ThreadPoolExecutor(6) as pool:  # new connections: spread over the workers
            codes = list(pool.map(lambda _: requests.post(
                f'{server.url}/api/v1/alerts', json=alert_body('edge-1'), timeout=10,
                headers={'X-API-Key': key}).status_code, range(90)))
        elapsed = time.monotonic() - started
    finally:
        server.stop()
    allowed = 10 + 5 * elapsed  # burst (2 x rate) + rate x time, for all workers together
    assert codes.count(201) <= allowed + 1, (codes.count(201), elapsed)
    assert codes.count(201) >= 10 and set(codes) == {201, 429}
