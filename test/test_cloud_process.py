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
import shlex
import signal
import socket
import subprocess
import tempfile
import threading
import time
from typing import Callable, Dict, List, Set

from cloud_helpers import (
    add_device, alert_body, CLOUD, cloud_cli, CloudServer, free_port, wait_http)
import psutil
import pytest
import requests
from waiting import wait_until


def serve(db: str, storage: str, port: int, log: Path) -> subprocess.Popen:
    return subprocess.Popen([CLOUD, 'serve', '--db', db, '--storage', storage, '--port',
                             str(port), '--workers', '2', '--public-dashboard'],
                            stdout=log.open('ab'), stderr=subprocess.STDOUT)


def test_workers_die_with_their_master_and_the_port_is_free_again(tmp_path: Path) -> None:
    db, storage = f'sqlite:///{tmp_path}/cloud.db', str(tmp_path / 'images')
    cloud_cli('migrate', db=db, storage=storage)
    port, log = free_port(), tmp_path / 'server.log'
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
        assert metrics_folders(master.pid)  # what the killed master left behind
        restarted = serve(db, storage, port, log)  # the same port: nothing holds it
        try:
            wait_http(url + '/api/v1/health', process=restarted)
            assert metrics_folders(restarted.pid)  # the workers count there, on this host
            assert not metrics_folders(master.pid)  # the dead master's was removed
        finally:
            restarted.send_signal(signal.SIGINT)
            restarted.wait(timeout=30)
    finally:
        if master.poll() is None:
            master.kill()
    assert restarted.returncode == 0, log.read_text()[-2000:]
    assert not metrics_folders(restarted.pid)  # removed at the stop
    assert [p.name for p in Path(storage).iterdir()] == []  # nothing of the server's state


def metrics_folders(pid: int) -> List[Path]:
    """Return the metrics folders of the server whose master is ``pid`` (cli.py)."""
    return list(Path(tempfile.gettempdir()).glob(f'vd-cloud-metrics-{pid}-*'))


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


# How a service manager or a shell starts the server (``setsid sh -c`` this): its
# parent does not stay.
STARTS = {
    # A subshell that exits at once (nohup ... &, a double fork, a daemon).
    'orphaned at once': '{serve} & echo $!',
    # The shell that started it exits after it answers (nohup ... & then logout).
    'orphaned later': '{serve} & echo $!; read line',
    # PID 1 of its own PID namespace, as in a container without --init.
    'pid 1': 'unshare --fork --pid --mount-proc --kill-child=SIGINT {serve} & echo $!',
}
CASES = [('orphaned at once', 1), ('orphaned at once', 3), ('orphaned later', 1),
         ('pid 1', 1), ('pid 1', 3)]
ALIVE_FOR_S = 30.0  # from the start: a server that follows its parent is gone in 1 or 2 s


def holds_for(predicate: Callable[[], bool], duration: float, poll: float = 1.0) -> bool:
    """Check ``predicate`` every ``poll`` s for ``duration`` s (the test: nothing happens)."""
    pause, deadline = threading.Event(), time.monotonic() + duration
    while time.monotonic() < deadline:
        if not predicate():
            return False
        pause.wait(poll)
    return predicate()


class DetachedServer:
    """A ``serve`` whose parent shell is gone (or is about to go): not our child."""

    def __init__(self, how: str, workers: int, tmp_path: Path) -> None:
        folder = tmp_path / '{}-{}'.format(how.replace(' ', '-'), workers)
        folder.mkdir()
        db, storage = f'sqlite:///{folder}/cloud.db', str(folder / 'images')
        self.how, self.workers, self.log = how, workers, folder / 'server.log'
        port = free_port()
        self.url = f'http://127.0.0.1:{port}/api/v1/health'
        serve = shlex.join([CLOUD, 'serve', '--db', db, '--storage', storage, '--port',
                            str(port), '--workers', str(workers)])
        serve += f' </dev/null >>{shlex.quote(str(self.log))} 2>&1'
        self.shell = subprocess.Popen(['setsid', 'sh', '-c', STARTS[how].format(serve=serve)],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.shell.stdout is not None
        self.started = psutil.Process(int(self.shell.stdout.readline()))
        if how != 'orphaned later':
            assert self.shell.wait(timeout=10) == 0  # the parent is gone at once

    def master(self) -> psutil.Process:
        """Return the server's master process (under unshare: the namespace's PID 1)."""
        return self.started.children()[0] if self.how == 'pid 1' else self.started

    def processes(self) -> Set[int]:
        """Return the pids of the master and its workers (uvicorn spawns them)."""
        master = self.master()
        return {master.pid, *(child.pid for child in master.children()
                              if 'spawn_main' in ' '.join(child.cmdline()))}

    def answers(self) -> bool:
        """Tell whether the health check answers 200; fail when the server is gone."""
        assert self.started.is_running(), (f'{self}: gone\n'
                                           f'{self.log.read_text()[-2000:]}')
        try:
            return requests.get(self.url, timeout=5).status_code == 200
        except requests.RequestException:  # not listening yet, or hung
            return False

    def orphan(self) -> None:
        """End the parent shell if it is still there."""
        if self.shell.poll() is None:
            self.shell.communicate('\n', timeout=10)

    def stop(self) -> List[psutil.Process]:
        """Ask the server to end with SIGINT to its master; return its processes."""
        self.orphan()
        processes: List[psutil.Process] = [self.started]
        try:
            processes += self.started.children(recursive=True)
            self.master().send_signal(signal.SIGINT)
        except (psutil.NoSuchProcess, IndexError):
            pass
        return processes

    def __str__(self) -> str:
        return f'{self.how}, {self.workers} worker(s)'


def test_the_server_outlives_the_parent_that_started_it(tmp_path: Path) -> None:
    refused = subprocess.run(['unshare', '--fork', '--pid', '--mount-proc', 'true'],
                             capture_output=True, text=True)
    cases = [case for case in CASES if case[0] != 'pid 1' or refused.returncode == 0]
    started_at = time.monotonic()
    servers: List[DetachedServer] = []
    stragglers: List[psutil.Process] = []
    try:
        for how, workers in cases:
            servers.append(DetachedServer(how, workers, tmp_path))
        for server in servers:
            wait_until(server.answers, 60, f'{server} to answer', poll=0.2)
        for server in servers:
            server.orphan()  # 'orphaned later': its shell exits now
        processes: Dict[str, Set[int]] = {str(server): server.processes()
                                          for server in servers}
        for server in servers:  # the master, and its workers when there are several
            workers = server.workers if server.workers > 1 else 0
            assert len(processes[str(server)]) == 1 + workers, str(server)

        def all_serve() -> bool:
            for server in servers:
                assert server.answers(), f'{server}: no answer'
                assert server.processes() == processes[str(server)], f'{server}: replaced'
            return True

        assert holds_for(all_serve, max(10.0, started_at + ALIVE_FOR_S - time.monotonic()))
    finally:
        left = [process for server in servers for process in server.stop()]
        _, stragglers = psutil.wait_procs(left, timeout=20)
        for process in stragglers:
            process.kill()
    assert not stragglers, 'processes left 20 s after SIGINT'
    for server in servers:
        assert 'Traceback' not in server.log.read_text(), str(server)
    if refused.returncode != 0:
        pytest.skip('the other cases passed; not run as PID 1 of a PID namespace: '
                    f'unshare --pid is refused here ({refused.stderr.strip()})')


def test_the_demo_server_ends_with_the_demo_even_after_kill_9(tmp_path: Path) -> None:
    port = free_port()
    demo = subprocess.Popen([str(Path(CLOUD).parent / 'vehicle-detection'), 'demo', '--source',
                             str(tmp_path / 'no-camera'), '--port', str(port), '--data',
                             str(tmp_path / 'var'), '--quiet'],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_http(f'http://127.0.0.1:{port}/api/v1/health', process=demo)
        server = [child for child in psutil.Process(demo.pid).children()
                  if 'serve' in child.cmdline()]
        assert len(server) == 1
        demo.kill()
        demo.wait(timeout=10)
        _, alive = psutil.wait_procs(server, timeout=15)  # its server follows it
    finally:
        if demo.poll() is None:
            demo.kill()
    for process in alive:
        process.kill()
    assert not alive, 'the demo server outlived the demo'
