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

"""A bounded property-based run of the published OpenAPI spec: no 5xx anywhere."""

from __future__ import annotations

from pathlib import Path
import re
import subprocess
import sys

from cloud_helpers import add_device, CloudServer
import requests


def test_openapi_spec_finds_no_server_error(tmp_path: Path) -> None:
    db, storage = f'sqlite:///{tmp_path}/cloud.db', str(tmp_path / 'images')
    key = add_device('edge-1', db, storage)
    server = CloudServer(db, storage, ['--rate-limit', '0'], public=False)
    try:
        spec = requests.get(server.url + '/openapi.json', timeout=5,
                            headers={'Authorization': f'Bearer {server.token}'}).json()
        assert spec['info']['title'] and '/api/v1/alerts' in spec['paths']
        result = subprocess.run(
            [str(Path(sys.prefix) / 'bin' / 'schemathesis'), 'run', server.url + '/openapi.json',
             '--checks', 'not_a_server_error', '--max-examples', '25', '--seed', '7',
             '--phases', 'examples,coverage,fuzzing', '--header', f'X-API-Key: {key}',
             '--header', f'Authorization: Bearer {server.token}',
             '--request-timeout', '10', '--no-color',
             '--generation-database', 'none'],
            capture_output=True, text=True, timeout=400, cwd=tmp_path)  # its cache goes there
    finally:
        server.stop()
    tail = result.stdout[-3000:] + result.stderr[-2000:]
    assert result.returncode == 0, tail
    counts = re.search(r'(\d+) generated, (\d+) passed', result.stdout)
    assert counts and int(counts.group(1)) == int(counts.group(2)) >= 100, tail
