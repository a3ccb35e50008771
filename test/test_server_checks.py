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

"""``vehicle-detection-cloud check``, and ``serve`` refusing to start on a failing check."""

from __future__ import annotations

from pathlib import Path
import socket
import subprocess
from typing import List

from cloud_helpers import CLOUD, cloud_cli, free_port

from vehicle_detection.cloud.server.schema import head_revision


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CLOUD, *args], capture_output=True, text=True, timeout=120)


def lines(output: str, prefix: str) -> List[str]:
    return [line for line in output.splitlines() if line.startswith(prefix)]


def certificate(folder: Path, name: str) -> List[Path]:
    cert, key = folder / f'{name}.pem', folder / f'{name}.key'
    subprocess.run(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2',
                    '-subj', '/CN=127.0.0.1', '-keyout', str(key), '-out', str(cert)],
                   check=True, capture_output=True, timeout=60)
    return [cert, key]


def test_check_passes_on_a_good_setup(postgres, redis_server, tmp_path: Path) -> None:
    db = postgres.new_database()
    storage = tmp_path / 'images'
    cloud_cli('migrate', db=db, storage=str(storage))
    cert, key = certificate(tmp_path, 'server')
    result = run('check', '--db', db, '--storage', str(storage), '--port', str(free_port()),
                 '--tls-cert', str(cert), '--tls-key', str(key), '--redis', redis_server.url,
                 '--min-free-mb', '1')
    assert result.returncode == 0, result.stdout + result.stderr
    assert [line.split()[:2] for line in result.stdout.splitlines()] == [
        ['ok', 'database:'], ['ok', 'storage:'], ['ok', 'port:'], ['ok', 'tls:'],
        ['ok', 'redis:']]
    assert f'schema {head_revision()}, the newest' in result.stdout
    assert list(storage.iterdir()) == []  # the probe file is gone
    # A SQLite file that does not exist yet: serve makes and migrates it.
    fresh = run('check', '--db', f'sqlite:///{tmp_path}/new.db', '--storage', str(storage),
                '--port', str(free_port()), '--min-free-mb', '1')
    assert fresh.returncode == 0 and 'serve migrates it' in fresh.stdout, fresh.stdout


def test_each_failure_is_named_with_its_fix_and_serve_refuses(postgres,
                                                              tmp_path: Path) -> None:
    empty = postgres.new_database()  # never migrated
    a_file = tmp_path / 'a-file'
    a_file.write_text('not a folder')
    cert, _ = certificate(tmp_path, 'one')
    _, other_key = certificate(tmp_path, 'two')
    with socket.socket() as taken:
        taken.bind(('127.0.0.1', 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        options = ['--db', empty, '--storage', str(a_file / 'images'), '--port', port,
                   '--tls-cert', str(cert), '--tls-key', str(other_key),
                   '--redis', f'redis://127.0.0.1:{free_port()}/0']
        checked = run('check', *options)
        served = run('serve', *options)
        only_port = run('serve', '--db', f'sqlite:///{tmp_path}/ok.db', '--storage',
                        str(tmp_path / 'images'), '--port', port, '--min-free-mb', '1')
    assert checked.returncode == 1
    failures = lines(checked.stdout, 'FAIL')
    assert [line.split()[1] for line in failures] == [
        'database:', 'storage:', 'port:', 'tls:', 'redis:']
    expected = {'database': f'run `vehicle-detection-cloud migrate --db {empty}`',
                'storage': 'choose another --storage',
                'port': f'port {port} on 127.0.0.1 is taken',
                'tls': 'are not a certificate and its key',
                'redis': 'start Redis (apt-get install redis-server), or correct --redis'}
    for line, (name, text) in zip(failures, expected.items()):
        assert text in line and '; fix: ' in line, (name, line)
    # serve runs the same checks, says what failed, and does not start.
    assert served.returncode == 2
    assert [line.removeprefix('error: ') for line in served.stderr.splitlines()] == failures
    assert only_port.returncode == 2
    assert only_port.stderr.strip() == f'error: {lines(checked.stdout, "FAIL  port")[0]}'
    assert 'dashboard:' not in only_port.stdout  # it stopped before uvicorn


def test_check_fails_on_an_unreachable_database_and_low_free_space(tmp_path: Path) -> None:
    unreachable = f'postgresql://postgres@127.0.0.1:{free_port()}/nothing'
    result = run('check', '--db', unreachable, '--storage', str(tmp_path),
                 '--port', str(free_port()), '--min-free-mb', str(2 ** 40))
    assert result.returncode == 1
    database, storage = lines(result.stdout, 'FAIL')
    assert 'cannot use' in database and 'fix: start PostgreSQL, or correct --db' in database
    assert 'MiB free, under --min-free-mb' in storage and 'fix: free space' in storage
    assert lines(result.stdout, 'ok    port:')
