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

"""Real cloud servers for tests: a uvicorn process on 127.0.0.1, SQLite or PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timezone
import glob
import os
from pathlib import Path
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from typing import Iterator, List, Optional
import uuid

import cv2
import numpy as np
import psutil
import pytest
import requests
from vehicle_detection.wire import utc_iso
from waiting import wait_until, Watched

BIN = Path(sys.prefix) / 'bin'
CLOUD = str(BIN / 'vehicle-detection-cloud')


def require_tool(found: bool, reason: str) -> None:
    """Skip when a system tool is missing; fail under VD_REQUIRE_ASSETS=1 (CI installs it)."""
    if not found:
        if os.environ.get('VD_REQUIRE_ASSETS') == '1':
            pytest.fail(reason + ' (VD_REQUIRE_ASSETS=1: make test installs it)')
        pytest.skip(reason)


def free_port() -> int:
    """Return a TCP port free on 127.0.0.1 right now."""
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


def wait_http(url: str, timeout: float = 30.0, process: Optional[subprocess.Popen] = None
              ) -> None:
    """Wait until ``url`` answers 200 (no readiness event exists for a process)."""
    def answers() -> bool:
        if process is not None and process.poll() is not None:
            raise AssertionError(f'server exited with {process.returncode}')
        try:
            return requests.get(url, timeout=2).status_code == 200
        except requests.ConnectionError:
            return False

    wait_until(answers, timeout, f'{url} to answer', poll=0.05)


def cloud_cli(*args: str, db: str, storage: str, check: bool = True,
              stdin: Optional[str] = None, env: Optional[dict] = None
              ) -> subprocess.CompletedProcess:
    """Run ``vehicle-detection-cloud`` with ``--db``/``--storage`` (``stdin`` written to it)."""
    result = subprocess.run([CLOUD, *args, '--db', db, '--storage', storage], input=stdin,
                            capture_output=True, text=True, timeout=120,
                            env={**os.environ, **(env or {})})
    if check:
        assert result.returncode == 0, result.stderr
    return result


def add_device(name: str, db: str, storage: str) -> str:
    """Register ``name`` and return its key (the last line of output)."""
    return cloud_cli('add-device', name, db=db, storage=storage).stdout.strip().splitlines()[-1]


def read_token(db: str, storage: str, name: str = 'tests') -> str:
    """Create a read token with the real command; return it."""
    return cloud_cli('add-token', f'{name}-{uuid.uuid4().hex[:8]}', db=db,
                     storage=storage).stdout.strip().splitlines()[-1]


class CloudServer:
    """``vehicle-detection-cloud serve`` in its own process on a free port."""

    def __init__(self, db: str, storage: str, extra: Optional[List[str]] = None,
                 port: int = 0, public: bool = True, env: Optional[dict] = None,
                 start_timeout: float = 30.0) -> None:
        """
        Start the server; ``public``: reads need no login (the login has its own tests).

        With ``public`` False, :attr:`token` is a read token for the API. ``env``:
        more variables (an object store's ``AWS_*``). Scheduled retention is off
        unless ``extra`` names ``--retention-interval`` (tests use fixed dates that
        age past the default policy).
        """
        self.db, self.storage = db, storage
        self.port = port or free_port()
        self.url = f'http://127.0.0.1:{self.port}'
        self.log = tempfile.TemporaryFile()
        self.token = '' if public else read_token(db, storage)
        extra = list(extra or [])
        if '--retention-interval' not in extra:
            extra += ['--retention-interval', '0']
        self.process = subprocess.Popen(
            [CLOUD, 'serve', '--db', db, '--storage', storage, '--port', str(self.port),
             *(['--public-dashboard'] if public else []), *extra],
            stdout=self.log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
        try:
            wait_http(self.url + '/api/v1/health', start_timeout, process=self.process)
        except AssertionError:
            self.stop()
            raise AssertionError(f'server did not start:\n{self.output()}') from None

    def output(self) -> str:
        """Return what the server printed."""
        self.log.seek(0)
        return self.log.read().decode(errors='replace')

    def stop(self) -> None:
        """Stop the server (SIGINT, then kill)."""
        if self.process.poll() is None:
            self.process.send_signal(2)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def jpeg_bytes(width: int = 320, height: int = 240, seed: int = 0, quality: int = 90) -> bytes:
    """Return a real JPEG of noise (about 60 KB at 320x240, quality 90)."""
    image = np.random.default_rng(seed).integers(0, 255, (height, width, 3), np.uint8)
    ok, data = cv2.imencode('.jpg', image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return data.tobytes()


def flat_jpeg(width: int, height: int, progressive: bool = False, full_chroma: bool = False,
              seed: int = 0) -> bytes:
    """
    Return a JPEG of a plain picture: small on the wire at any size.

    Its cost to decode is not: a progressive one needs 128 bytes per 8x8 block
    of every component (``full_chroma``: 4:4:4, else 4:2:0), whatever it shows.
    """
    image = np.full((height, width, 3), (40 + seed % 200, 80, 120), np.uint8)
    sampling = (cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444 if full_chroma
                else cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420)
    ok, data = cv2.imencode('.jpg', image, [cv2.IMWRITE_JPEG_PROGRESSIVE, int(progressive),
                                            cv2.IMWRITE_JPEG_SAMPLING_FACTOR, sampling])
    assert ok
    return data.tobytes()


def first_scan_of_one_component(data: bytes) -> bytes:
    """
    Rewrite a baseline colour JPEG's first scan header to hold one component (multi-scan).

    libjpeg then buffers the whole coefficient array, as for a progressive
    file, before it finds that the data do not match: the header alone must
    get such a file refused.
    """
    at = data.index(b'\xff\xda')
    length = int.from_bytes(data[at + 2:at + 4], 'big')
    header = data[at + 4:at + 2 + length]  # Ns, (Cs, Td/Ta) x Ns, Ss, Se, Ah/Al
    one = bytes([1]) + header[1:3] + header[-3:]
    return data[:at] + b'\xff\xda' + (2 + len(one)).to_bytes(2, 'big') + one + \
        data[at + 2 + length:]


class PeakMemory:
    """Sample a process's resident memory in a thread (psutil) and keep the peak."""

    def __init__(self, pid: int, every_s: float = 0.005) -> None:
        self._process = psutil.Process(pid)
        self._every_s = every_s
        self._stop = threading.Event()
        self.start_bytes = self.peak_bytes = self._process.memory_info().rss
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(self._every_s):
            try:
                self.peak_bytes = max(self.peak_bytes, self._process.memory_info().rss)
            except psutil.Error:
                return

    def __enter__(self) -> 'PeakMemory':
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def growth_mb(self) -> float:
        """Return how far the peak rose over the memory at the start, in MiB."""
        return (self.peak_bytes - self.start_bytes) / 2 ** 20


def alert_body(device: str, event_id: Optional[str] = None, **changes: object) -> dict:
    """Return a valid alert body for ``device``."""
    body = {'event_id': event_id or str(uuid.uuid4()), 'device_id': device,
            'camera_id': 'cam0', 'detected_at': utc_iso(datetime.now(timezone.utc)),
            'track_id': 7,
            'class_name': 'car', 'confidence': 0.91, 'bbox': [10.0, 20.0, 110.0, 90.0],
            'image_width': 1280, 'image_height': 720}
    body.update(changes)
    return body


def postgres_bin() -> Optional[Path]:
    """Return the folder of Debian's PostgreSQL server binaries, if installed."""
    found = sorted(glob.glob('/usr/lib/postgresql/*/bin/initdb'))
    return Path(found[-1]).parent if found else None


class PostgresServer:
    """A throw-away PostgreSQL cluster on 127.0.0.1, in a temporary folder."""

    def __init__(self, options: str = '') -> None:
        """Start the cluster; ``options``: more server options (``-c max_connections=300``)."""
        binaries = postgres_bin()
        require_tool(binaries is not None, 'PostgreSQL is not installed (apt-get install '
                                           'postgresql)')
        assert binaries is not None
        self.folder = tempfile.mkdtemp(prefix='vd-pg-')
        self.port = free_port()
        # initdb refuses to run as root: run the cluster as the postgres user then.
        self.prefix = ['runuser', '-u', 'postgres', '--'] if os.geteuid() == 0 else []
        if self.prefix:
            shutil.chown(self.folder, 'postgres')
        data = os.path.join(self.folder, 'data')
        self._run(str(binaries / 'initdb'), '-D', data, '-U', 'postgres', '--auth=trust',
                  '-E', 'UTF8')
        self._run(str(binaries / 'pg_ctl'), '-D', data, '-l', os.path.join(self.folder, 'log'),
                  '-w', '-t', '60', '-o',
                  f'-h 127.0.0.1 -p {self.port} -k {self.folder} -F {options}', 'start')
        self.pg_ctl, self.data = str(binaries / 'pg_ctl'), data
        self._count = 0

    def _run(self, *command: str) -> None:
        result = subprocess.run([*self.prefix, *command], capture_output=True, text=True,
                                timeout=120)
        assert result.returncode == 0, f'{command[0]} failed: {result.stderr}'

    def new_database(self) -> str:
        """Create an empty database and return its URL."""
        import psycopg2

        self._count += 1
        name = f'vd_test_{self._count}'
        connection = psycopg2.connect(host='127.0.0.1', port=self.port, user='postgres',
                                      dbname='postgres')
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE {name}')
        connection.close()
        return f'postgresql://postgres@127.0.0.1:{self.port}/{name}'

    def stop(self) -> None:
        """Stop the cluster and remove its folder."""
        subprocess.run([*self.prefix, self.pg_ctl, '-D', self.data, '-m', 'immediate', 'stop'],
                       capture_output=True, timeout=60)
        shutil.rmtree(self.folder, ignore_errors=True)


def servers(db: str, storage: str) -> Iterator[CloudServer]:
    """Yield a started server and stop it afterwards (for fixtures)."""
    server = CloudServer(db, storage)
    try:
        yield server
    finally:
        server.stop()


class Fleet:
    """A running server with two registered devices; ``store``: its snapshots as tests see them."""

    def __init__(self, server: CloudServer, keys: dict, store: Optional[object] = None) -> None:
        self.server, self.keys, self.store = server, keys, store
        self.url = server.url + '/api/v1'

    def post(self, body: dict, device: str = 'edge-1', **headers: str) -> requests.Response:
        return requests.post(f'{self.url}/alerts', json=body, timeout=10,
                             headers={'X-API-Key': self.keys[device], **headers})

    def put_image(self, event_id: str, data: bytes, device: str = 'edge-1',
                  content_type: str = 'image/jpeg') -> requests.Response:
        return requests.put(f'{self.url}/alerts/{event_id}/image', data=data, timeout=10,
                            headers={'X-API-Key': self.keys[device],
                                     'Content-Type': content_type})


def start_run(config: str, model: Path, server: 'CloudServer', key: str, data_dir: Path,
              env: dict, *settings: str) -> Watched:
    """Start ``vehicle-detection run --replay`` against ``server``, its output read as it comes."""
    return Watched(
        [str(BIN / 'vehicle-detection'), 'run', '--replay', '--config', config, '--model',
         str(model), '--cloud-url', server.url, '--quiet',
         '--set', f'cloud_bridge_node.data_dir={data_dir}',
         *(part for setting in settings for part in ('--set', setting))],
        dict(env, VD_CLOUD_API_KEY=key))


def stop_run(system: Watched, timeout: float = 60.0) -> str:
    """Stop ``vehicle-detection run`` as Ctrl-C does; check it sent everything; return stdout."""
    out = system.interrupt(timeout)  # the bridge sends what is confirmed, then stops
    assert system.returncode == 0, system.stderr()[-3000:]
    assert 'pending=0' in out.strip().splitlines()[-1], out
    return out
