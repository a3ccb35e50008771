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

"""Configuration from the dashboard at the edge: real bridge nodes against the real server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator, Tuple

from cloud_helpers import add_device, CloudServer
import pytest
import requests
from ros_helpers import Harness
from test_cloud_bridge_node import start_bridge
from test_operator_admin import logged_in, user_command

from vehicle_detection.core.bridge.remote_config import STATE_FILE
from waiting import wait_until

FAST = {'health_interval': 0.5, 'heartbeat_interval': 1.0}  # a heartbeat a second


@pytest.fixture
def admin_server(tmp_path: Path) -> Iterator[Tuple[CloudServer, str, requests.Session]]:
    """Run a server that needs a login, with device gate-1 and the admin ana logged in."""
    db, storage = f'sqlite:///{tmp_path}/cloud.db', str(tmp_path / 'images')
    key = add_device('gate-1', db, storage)
    server = CloudServer(db, storage, public=False)
    try:
        assert user_command(server, 'add-user', 'ana', '--role', 'admin',
                            '--password-stdin').returncode == 0
        yield server, key, logged_in(server, 'ana')
    finally:
        server.stop()


def save(server: CloudServer, admin: requests.Session, parameters: dict) -> int:
    answer = admin.post(f'{server.url}/api/v1/admin/devices/gate-1/config',
                        json={'parameters': parameters}, timeout=10)
    assert answer.status_code == 201, answer.text
    return answer.json()['version']


def outcome(server: CloudServer, admin: requests.Session, version: int) -> dict:
    """Wait until gate-1 reported ``version``; return the version as the server keeps it."""
    found: dict = {}

    def reported() -> bool:
        versions = admin.get(f'{server.url}/api/v1/admin/devices/gate-1/config',
                             timeout=10).json()
        found.update(next(v for v in versions if v['version'] == version))
        return found['state'] != 'pending'

    wait_until(reported, timeout=20, what=f'gate-1 to report version {version}', poll=0.2)
    return found


def requests_of(server: CloudServer, admin: requests.Session, method: str, route: str) -> int:
    """Return how many requests of ``route`` the server answered (its /metrics)."""
    text = admin.get(f'{server.url}/metrics', timeout=10).text
    return int(sum(float(line.rsplit(' ', 1)[1]) for line in text.splitlines()
                   if line.startswith('vd_http_requests_total{')
                   and f'method="{method}"' in line and f'route="{route}"' in line))


def test_edge_applies_keeps_and_refuses_configurations(ros_context, admin_server,
                                                       tmp_path: Path, monkeypatch) -> None:
    server, key, admin = admin_server
    monkeypatch.setenv('VD_CLOUD_API_KEY', key)
    local_lines = 'local 0,0.2 1,0.2 towards/away'
    harness = Harness(ros_context)
    try:
        node = start_bridge(harness, server.url, tmp_path, counting_lines=local_lines,
                            min_alert_score=0.5, **FAST)
        first = save(server, admin, {'counting_lines': 'gate 0.1,0.5 0.9,0.5 in/out',
                                     'min_alert_score': 1})  # an integer for a float: taken
        assert outcome(server, admin, first)['state'] == 'applied'
        assert (node.params['counting_lines'], node.params['min_alert_score']) == (
            'gate 0.1,0.5 0.9,0.5 in/out', 1.0)
        # All or nothing: one bad value and nothing of the version is applied.
        for parameters, reason in (
                ({'counting_lines': 'bad 0.5,0.5', 'min_alert_score': 0.7},
                 "counting_lines: line 'bad 0.5,0.5': expected NAME X1,Y1 X2,Y2"),
                ({'counting_zones': 'z 0,0 1,0 1,1', 'min_alert_score': 'high'},
                 'min_alert_score'),
                ({'api_base_url': 'http://elsewhere:8000'},
                 'api_base_url: not settable from the server'),
                ({'no_such_parameter': 1}, 'no_such_parameter: not settable')):
            refused = outcome(server, admin, save(server, admin, parameters))
            assert refused['state'] == 'refused' and reason in refused['reason'], refused
            assert (node.params['counting_lines'], node.params['min_alert_score'],
                    node.params['counting_zones']) == ('gate 0.1,0.5 0.9,0.5 in/out', 1.0, '')
        # A version that leaves a parameter out gives it back its local value.
        third = save(server, admin, {'counting_zones': 'z 0,0 1,0 1,1'})
        assert outcome(server, admin, third)['state'] == 'applied'
        assert (node.params['counting_lines'], node.params['min_alert_score'],
                node.params['counting_zones']) == (local_lines, 0.5, 'z 0,0 1,0 1,1')
        # The metered link: one fetch per version (6), however many heartbeats came.

        def fetches() -> int:
            return requests_of(server, admin, 'GET', '/api/v1/devices/{device_id}/config')

        heartbeats = requests_of(server, admin, 'POST', '/api/v1/devices/{device_id}/heartbeat')
        wait_until(lambda: requests_of(server, admin, 'POST', '/api/v1/devices/{device_id}/'
                                       'heartbeat') >= heartbeats + 2,
                   timeout=20, what='two more heartbeats', poll=0.2)
        assert fetches() == third, (fetches(), third)  # none for the heartbeats since
        kept = json.loads((tmp_path / 'edge' / STATE_FILE).read_text())
        assert (kept['version'], kept['state'], kept['applied']['version']) == (
            third, 'applied', third)
    finally:
        harness.close()
    # A restart applies the kept version before any heartbeat (the server is not asked).
    harness = Harness(ros_context)
    try:
        node = start_bridge(harness, 'http://127.0.0.1:9', tmp_path, counting_lines=local_lines,
                            **FAST)
        assert node.params['counting_zones'] == 'z 0,0 1,0 1,1'
    finally:
        harness.close()
    # remote_config: false: the local configuration wins, and the server is told why.
    harness = Harness(ros_context)
    try:
        node = start_bridge(harness, server.url, tmp_path / 'local', remote_config=False,
                            counting_lines=local_lines, **FAST)
        refused = outcome(server, admin, save(server, admin, {'counting_lines': ''}))
        assert refused['state'] == 'refused'
        assert 'remote_config is false on this device' in refused['reason']
        assert node.params['counting_lines'] == local_lines
        assert not (tmp_path / 'local' / 'edge' / STATE_FILE).exists() or json.loads(
            (tmp_path / 'local' / 'edge' / STATE_FILE).read_text())['applied'] is None
    finally:
        harness.close()
