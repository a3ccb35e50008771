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

"""A throw-away Redis (Debian's redis-server) on 127.0.0.1, in a temporary folder."""

from __future__ import annotations

import shutil
import subprocess
import tempfile

from cloud_helpers import free_port, require_tool
from waiting import wait_until


class RedisServer:
    """``redis-server`` on a free port, without persistence; :attr:`url` to reach it."""

    def __init__(self) -> None:
        binary = shutil.which('redis-server')
        require_tool(binary is not None, 'Redis is not installed (apt-get install redis-server)')
        assert binary is not None
        self.folder = tempfile.mkdtemp(prefix='vd-redis-')
        self.port = free_port()
        self.url = f'redis://127.0.0.1:{self.port}/0'
        self.log = open(f'{self.folder}/log', 'w+')
        self.process = subprocess.Popen(
            [binary, '--bind', '127.0.0.1', '--port', str(self.port), '--dir', self.folder,
             '--save', '', '--appendonly', 'no', '--daemonize', 'no'],
            stdout=self.log, stderr=subprocess.STDOUT)
        import redis

        client = redis.Redis.from_url(self.url, socket_timeout=1, socket_connect_timeout=1)

        def answers() -> bool:
            if self.process.poll() is not None:
                self.log.seek(0)
                raise AssertionError(f'redis-server exited: {self.log.read()}')
            try:
                return bool(client.ping())
            except redis.RedisError:
                return False

        wait_until(answers, 30, 'redis-server to answer', poll=0.05)
        client.close()

    def stop(self) -> None:
        """Stop Redis and remove its folder."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        shutil.rmtree(self.folder, ignore_errors=True)
