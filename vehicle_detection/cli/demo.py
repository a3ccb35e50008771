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
The whole system on one machine: the cloud server on its embedded defaults, then the nodes.

Starts ``vehicle-detection-cloud serve`` (SQLite and images under ``--data``),
registers this device once (its key kept in ``--data``/edge.key), prints the
dashboard URL, and runs camera, detector and cloud bridge in this process
until Ctrl-C or ``--duration``; the server stops with it. A port already
taken, or a server that dies at its start, stops the demo with the reason
(and the end of the server's log) before any node runs: otherwise the
dashboard printed would be another server's, and the bridge's uploads
would be refused by it.
"""

from __future__ import annotations

import argparse
import ctypes
import os
from pathlib import Path
import signal
import socket
import subprocess
import sys
import threading
import time

import requests

from vehicle_detection.cli import run as runner
from vehicle_detection.core.system.log_files import pipe_to_rotating_file
from vehicle_detection.wire import HEALTH_PATH

DEVICE = 'edge-1'
PR_SET_PDEATHSIG = 1  # prctl option: a signal for this process when its parent dies
LOG_TAIL_LINES = 20  # of the server's log, shown when it dies at its start


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``vehicle-detection demo`` (plus those of ``run``)."""
    runner.add_arguments(parser)
    parser.add_argument('--data', default='var', help='folder of the server and the outbox')
    parser.add_argument('--port', type=int, default=8000, help='port of the cloud server')


def _cloud_command(*args: str, data: Path) -> list:
    """Return a ``vehicle-detection-cloud`` command on the database and images in ``data``."""
    return [str(Path(sys.executable).parent / 'vehicle-detection-cloud'), *args,
            '--db', f'sqlite:///{data}/cloud.db', '--storage', str(data / 'images')]


def _cloud(*args: str, data: Path) -> subprocess.CompletedProcess:
    return subprocess.run(_cloud_command(*args, data=data), capture_output=True, text=True,
                          timeout=120)


def _device_key(data: Path) -> Path:
    """Return the key file of this device, registering it on first use."""
    key_file = data / 'edge.key'
    if key_file.exists():
        return key_file
    result = _cloud('add-device', DEVICE, data=data)
    if result.returncode != 0:  # registered before but the key file is gone: new key
        _cloud('revoke-device', DEVICE, data=data)
        result = _cloud('add-device', DEVICE, data=data)
    if result.returncode != 0:
        raise RuntimeError(f'cannot register {DEVICE}: {result.stderr.strip()}')
    key_file.write_text(result.stdout.strip().splitlines()[-1] + '\n')
    key_file.chmod(0o600)
    return key_file


def _end_with_the_demo() -> None:
    """
    Run in the server's process before exec: end it when the demo ends (Linux).

    Even after ``kill -9`` of the demo, which cannot stop it: the server
    itself never follows its parent (a service manager's may exit at once).
    """
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass  # not Linux


def port_taken(port: int) -> str:
    """Say why this machine's ``port`` cannot be listened on ('' when it is free)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As the server binds: a connection of an earlier run in TIME_WAIT is no obstacle.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(('127.0.0.1', port))
        except OSError as error:
            return error.strerror or str(error)
    return ''


def _log_tail(log: Path, start: int) -> str:
    """Return the last lines the server wrote to ``log`` from offset ``start`` on."""
    with open(log, 'rb') as file:
        file.seek(min(start, os.fstat(file.fileno()).st_size))  # rotated meanwhile: all
        lines = file.read().decode('utf-8', 'replace').splitlines()
    return '\n'.join(f'  | {line}' for line in lines[-LOG_TAIL_LINES:]) or '  | (empty)'


def _wait_healthy(url: str, server: subprocess.Popen, log: Path, start: int,
                  copying: threading.Thread, timeout: float = 60.0) -> None:
    pause = threading.Event()
    deadline = time.monotonic() + timeout
    while server.poll() is None and time.monotonic() < deadline:
        try:
            # Answered while our server still runs: it is ours, not one that took the port.
            if requests.get(url + HEALTH_PATH, timeout=2).ok and server.poll() is None:
                return
        except requests.RequestException:
            pass
        pause.wait(0.1)
    code = server.poll()
    if code is not None:
        copying.join(5.0)  # the server's last lines are in the log before it is read
    what = (f'exited at its start (exit code {code})' if code is not None
            else f'did not answer at {url} within {timeout:.0f} s')
    raise RuntimeError(f'the cloud server {what}; the end of its log ({log}):\n'
                       f'{_log_tail(log, start)}')


def run(args: argparse.Namespace) -> int:
    """Start the server, register the device, run the nodes, stop the server."""
    data = Path(args.data).resolve()
    data.mkdir(parents=True, exist_ok=True)
    url = f'http://127.0.0.1:{args.port}'
    taken = port_taken(args.port)
    if taken:
        print(f'error: port {args.port} on 127.0.0.1 is taken ({taken}): another server '
              "listens there, not this demo's. Stop it, or choose a free port: make run "
              'PORT=8100 (vehicle-detection demo --port 8100)', file=sys.stderr)
        return 1
    log_path = data / 'server.log'
    start = log_path.stat().st_size if log_path.exists() else 0
    # Listening on this machine only: the demo's dashboard needs no login. Its output
    # goes to server.log, rotated at 10 MB (two old files kept).
    server = subprocess.Popen(_cloud_command('serve', '--port', str(args.port),
                                             '--public-dashboard', data=data),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              preexec_fn=_end_with_the_demo)
    assert server.stdout is not None
    log = pipe_to_rotating_file(server.stdout, log_path)
    try:
        _wait_healthy(url, server, log_path, start, log)
        key_file = _device_key(data)
        print(f'dashboard: {url}/   (server log: {data / "server.log"})', flush=True)
        args.cloud_url = args.cloud_url or url
        args.overrides = [f'cloud_bridge_node.api_key_file={key_file}',
                          f'cloud_bridge_node.device_id={DEVICE}',
                          f'cloud_bridge_node.data_dir={data / "edge"}', *args.overrides]
        os.environ.pop('VD_CLOUD_API_KEY', None)  # this run's key is the demo device's
        code = runner.run(args)
        print(f'dashboard: {url}/ (stopped with this command; start it again with '
              f'`vehicle-detection-cloud serve --db sqlite:///{data}/cloud.db '
              f'--storage {data / "images"}` after `vehicle-detection-cloud add-user NAME` '
              f'with the same --db, or with --public-dashboard)', flush=True)
        return code
    except RuntimeError as error:
        print(f'error: {error}', file=sys.stderr)
        return 1
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
        log.join(5.0)
