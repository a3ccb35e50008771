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

"""A real HAProxy (Debian's) in front of server instances on 127.0.0.1, for tests and benches."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from typing import List, Optional

from cloud_helpers import free_port, require_tool, wait_http

# Health checks on the server's own route, every second, with 5 s to answer (a busy server
# is slow, not gone); a server is out after 3 failed checks or at once after 5 refused
# connections (observe layer4), and back after 2 good checks. A request whose connection
# fails goes to the other server (retries, redispatch); one already sent to an instance
# that dies is sent again too (retry-on: the API is idempotent on event ids); a whole
# snapshot fits in the buffer (tune.bufsize), so uploads are retried as well. The client's
# address goes in X-Forwarded-For (servers trust it with --forwarded-allow-ips).
CONFIG = """\
global
    maxconn 4096
    tune.bufsize 131072
defaults
    mode http
    option forwardfor
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    timeout queue 10s
    timeout check 5s
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response junk-response response-timeout
frontend api
    bind 127.0.0.1:{port}
    default_backend instances
backend instances
    balance {balance}
    option httpchk GET /api/v1/health
    http-check expect status 200
    default-server inter 1s fall 3 rise 2 observe layer4 error-limit 5 on-error mark-down
{servers}
"""


def haproxy_binary() -> Optional[str]:
    """Return the path of Debian's haproxy, if installed."""
    return shutil.which('haproxy') or shutil.which('/usr/sbin/haproxy')


class HAProxy:
    """``haproxy`` in the foreground with a generated configuration, on a free port."""

    def __init__(self, backends: List[str], balance: str = 'leastconn') -> None:
        """
        Start it in front of ``backends`` (``host:port`` each) and wait until it answers.

        ``balance``: leastconn (the fewest requests in progress: a slow instance gets
        fewer) or roundrobin (turns, also for one client that sends one at a time).
        """
        binary = haproxy_binary()
        require_tool(binary is not None, 'HAProxy is not installed (apt-get install haproxy)')
        assert binary is not None
        self.port = free_port()
        self.url = f'http://127.0.0.1:{self.port}'
        servers = '\n'.join(f'    server i{index} {address} check'
                            for index, address in enumerate(backends))
        self.config = tempfile.NamedTemporaryFile('w', suffix='.cfg', prefix='vd-haproxy-')
        self.config.write(CONFIG.format(port=self.port, servers=servers, balance=balance))
        self.config.flush()
        self.log = tempfile.TemporaryFile()
        self.process = subprocess.Popen([binary, '-db', '-f', self.config.name],
                                        stdout=self.log, stderr=subprocess.STDOUT)
        try:
            wait_http(self.url + '/api/v1/health', process=self.process)
        except AssertionError:
            self.stop()
            raise AssertionError(f'haproxy did not start:\n{self.output()}') from None

    def output(self) -> str:
        """Return what haproxy printed."""
        self.log.seek(0)
        return self.log.read().decode(errors='replace')

    def stop(self) -> None:
        """Stop haproxy and remove its configuration."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.config.close()
