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

"""Configuration versions on the server: admins save, devices fetch and report (API, schema)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from cloud_helpers import add_device, cloud_cli, CloudServer
import pytest
import requests
from sqlalchemy import inspect
from test_operator_admin import logged_in, user_command

from vehicle_detection.cloud.server.engine import make_engine
from vehicle_detection.cloud.server.schema import alembic_config, current_revision, upgrade

ADMIN = '/api/v1/admin'
DEVICES = '/api/v1/devices'


@pytest.mark.parametrize('backend', ['sqlite', 'postgresql'])
def test_admin_saves_versions_device_fetches_and_reports(backend: str, request,
                                                         tmp_path: Path) -> None:
    db = (f'sqlite:///{tmp_path}/cloud.db' if backend == 'sqlite'
          else request.getfixturevalue('postgres').new_database())
    storage = str(tmp_path / 'images')
    if backend == 'postgresql':
        cloud_cli('migrate', db=db, storage=storage)
    keys = {name: add_device(name, db, storage) for name in ('edge-1', 'edge-2')}
    server = CloudServer(db, storage, public=False)
    try:
        for name, role in (('ana', 'admin'), ('vic', 'viewer')):
            assert user_command(server, 'add-user', name, '--role', role,
                                '--password-stdin').returncode == 0
        ana, vic = logged_in(server, 'ana'), logged_in(server, 'vic')
        url = f'{server.url}{ADMIN}/devices/edge-1/config'
        lines = {'counting_lines': 'bar 0,0.5 1,0.5 towards/away'}
        # Only admins write or read versions; a device key is no login.
        assert vic.post(url, json={'parameters': lines}, timeout=10).status_code == 403
        assert vic.get(url, timeout=10).status_code == 403
        assert requests.post(url, json={'parameters': lines}, timeout=10,
                             headers={'X-API-Key': keys['edge-1']}).status_code == 401
        device = {'X-API-Key': keys['edge-1']}

        def heartbeat(key: str = keys['edge-1'], name: str = 'edge-1') -> dict:
            answer = requests.post(f'{server.url}{DEVICES}/{name}/heartbeat', json={},
                                   headers={'X-API-Key': key}, timeout=10)
            assert answer.status_code == 200, answer.text
            return answer.json()

        assert heartbeat()['config_version'] is None
        assert requests.get(f'{server.url}{DEVICES}/edge-1/config', headers=device,
                            timeout=10).status_code == 404
        saved = ana.post(url, json={'parameters': lines, 'base_version': 0}, timeout=10)
        assert saved.status_code == 201, saved.text
        assert (saved.json()['version'], saved.json()['created_by'],
                saved.json()['state']) == (1, 'ana', 'pending')
        # Two admins editing version 1: the second save is refused, not lost silently.
        second = {'parameters': {**lines, 'min_alert_score': 0.6}, 'base_version': 0}
        assert ana.post(url, json=second, timeout=10).status_code == 409
        assert ana.post(url, json={**second, 'base_version': 1}, timeout=10).status_code == 201
        for bad in ({'parameters': {'Bad-Name': 1}}, {'parameters': {'x': {'a': 1}}},
                    {'parameters': ['counting_lines']}, {'parameters': {}, 'extra': 1},
                    {'parameters': {'x': 'a\x00b'}}):
            answer = ana.post(url, json=bad, timeout=10)
            assert answer.status_code == 422, (bad, answer.text)
        assert ana.post(f'{server.url}{ADMIN}/devices/nobody/config', json={'parameters': {}},
                        timeout=10).status_code == 404

        assert heartbeat()['config_version'] == 2
        assert heartbeat(keys['edge-2'], 'edge-2')['config_version'] is None  # per device
        fetched = requests.get(f'{server.url}{DEVICES}/edge-1/config', headers=device,
                               timeout=10)
        assert fetched.json() == {'version': 2, 'parameters': second['parameters']}
        report = f'{server.url}{DEVICES}/edge-1/config/report'
        assert requests.post(report, json={'version': 1, 'state': 'applied'}, headers=device,
                             timeout=10).status_code == 200
        refusal = {'version': 2, 'state': 'refused', 'reason': 'min_alert_score: too high'}
        assert requests.post(report, json=refusal, headers=device,
                             timeout=10).status_code == 200
        for bad in ({'version': 3, 'state': 'applied'}, {'version': 2, 'state': 'pending'}):
            assert requests.post(report, json=bad, headers=device,
                                 timeout=10).status_code in (404, 422)
        # edge-2's key reports for its own device whatever the path says: no version there.
        assert requests.post(report, json=refusal, headers={'X-API-Key': keys['edge-2']},
                             timeout=10).status_code == 404
        devices = {d['name']: d for d in vic.get(f'{server.url}{DEVICES}', timeout=10).json()}
        assert devices['edge-1']['config'] == {'version': 2, 'state': 'refused',
                                               'reason': 'min_alert_score: too high',
                                               'applied_version': 1}
        assert devices['edge-2']['config'] is None
        history = ana.get(url, timeout=10).json()
        assert [(v['version'], v['state'], v['created_by']) for v in history] == [
            (2, 'refused', 'ana'), (1, 'applied', 'ana')]
        assert 'admin ana saved configuration version 2 of device edge-1' in server.output()
    finally:
        server.stop()


def test_migration_0011_up_and_down(tmp_path: Path) -> None:
    url = f'sqlite:///{tmp_path}/cloud.db'
    upgrade(url)
    engine = make_engine(url)
    try:
        assert 'device_configs' in inspect(engine).get_table_names()
        command.downgrade(alembic_config(url), '0010')
        assert current_revision(url) == '0010'
        assert 'device_configs' not in inspect(engine).get_table_names()
    finally:
        engine.dispose()
