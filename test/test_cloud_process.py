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

from pathlib import Path
import signal
import subprocess
import tempfile

from cloud_helpers import CLOUD, cloud_cli, free_port, wait_http
import psutil


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
