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
Uploads of one alert's snapshot that race, replayed step by step in a fixed order.

The concurrent test in ``test_cloud_hardening.py`` meets these orders only
now and then; here each is made to happen: the real server answers one
upload over HTTP while the other runs the route's own steps in this process,
on the same database and storage folder.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from cloud_helpers import add_device, alert_body, CloudServer, jpeg_bytes
import requests
from sqlalchemy import select
from sqlalchemy.orm import Session

from vehicle_detection.cloud.server.db import Alert
from vehicle_detection.cloud.server.deps import ServerState
from vehicle_detection.cloud.server.engine import from_stored
from vehicle_detection.cloud.server.routes_ingest import _record_image
from vehicle_detection.cloud.server.settings import ServerSettings
from vehicle_detection.wire import snapshot_name


def test_a_losing_upload_leaves_the_file_the_winners_row_names(tmp_path: Path) -> None:
    db, storage = f'sqlite:///{tmp_path}/cloud.db', str(tmp_path / 'images')
    key = add_device('edge-1', db, storage)
    server = CloudServer(db, storage)
    try:
        body = alert_body('edge-1')
        device = {'X-API-Key': key}
        url = f'{server.url}/api/v1/alerts'
        assert requests.post(url, json=body, headers=device, timeout=10).status_code == 201
        here = ServerState(ServerSettings(db=db, storage=storage))
        with Session(here.engine) as session:
            alert = session.execute(select(Alert).where(
                Alert.event_id == body['event_id'])).scalar_one()
            name = snapshot_name(from_stored(alert.detected_at), alert.camera_id,
                                 body['event_id'])
        picture = jpeg_bytes(320, 240, seed=7)
        # Upload A has written the file and is about to claim the row...
        assert here.store.put(name, picture) is True
        # ...when upload B of the same bytes finds the file in place and claims it.
        answer = requests.put(f'{url}/{body["event_id"]}/image', data=picture, timeout=10,
                              headers={**device, 'Content-Type': 'image/jpeg'})
        assert answer.status_code == 201, answer.text
        # A has lost the row: it must not take back the file B's row names.
        lost = _record_image(here, body['event_id'], name, len(picture),
                             hashlib.sha256(picture).hexdigest(), picture, written=True)
        assert not lost.created
        stored = requests.get(f'{url}/{body["event_id"]}/image', timeout=10)
        assert stored.status_code == 200 and stored.content == picture
    finally:
        server.stop()
