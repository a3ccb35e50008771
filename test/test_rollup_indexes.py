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
Every read the dashboard makes, with each of its filters, is bounded by an index.

On SQLite and PostgreSQL, with the rollups (migration 0012) filled from an
older database: each statement the server runs is explained by the database.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
import random
import threading
from typing import Iterator, List, Tuple

from alembic import command
from cloud_helpers import alert_body, free_port, jpeg_bytes
import pytest
import requests
from rollup_checks import explain, full_scans, postgres_indexes, selects
from rollup_data import add_devices, BACKENDS, BEFORE, database, store_old_rows
from sqlalchemy import event
from vehicle_detection.cloud.server.app import create_app
from vehicle_detection.cloud.server.engine import make_engine
from vehicle_detection.cloud.server.schema import alembic_config, upgrade
from vehicle_detection.cloud.server.settings import ServerSettings
from vehicle_detection.wire import utc_iso
from waiting import wait_until


class ServerInProcess:
    """The server's app under uvicorn on 127.0.0.1, in a thread: its statements can be seen."""

    def __init__(self, url: str, storage: str) -> None:
        import uvicorn

        # No read cache: each read runs the statements of its route, to be explained.
        self.app = create_app(ServerSettings(db=url, storage=storage, public_dashboard=True,
                                             rate_limit=0.0, cache_ttl_s=0.0))
        self.statements: List[Tuple[str, object]] = []
        self._lock = threading.Lock()
        event.listen(self.app.state.server.engine, 'before_cursor_execute', self._seen)
        port = free_port()
        self.url = f'http://127.0.0.1:{port}'
        self.server = uvicorn.Server(uvicorn.Config(self.app, host='127.0.0.1', port=port,
                                                    log_level='warning'))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        wait_until(lambda: self.server.started, 30, 'the server to start')

    def _seen(self, _connection, _cursor, statement: str, parameters: object, _context,
              _many: bool) -> None:
        with self._lock:
            self.statements.append((statement, parameters))

    def reads_of(self, path: str) -> List[Tuple[str, object]]:
        """GET ``path`` (200 expected) and return the SELECTs it ran."""
        with self._lock:
            self.statements.clear()
        answer = requests.get(self.url + path, timeout=30)
        assert answer.status_code == 200, (path, answer.text)
        with self._lock:
            return selects(self.statements)

    def stop(self) -> None:
        """Stop serving and release the engine."""
        self.server.should_exit = True
        self.thread.join(30)
        self.app.state.server.engine.dispose()


def dashboard_reads(event_id: str) -> Iterator[str]:
    """Yield every read the dashboard makes (static/dashboard.js and traffic.js), filtered too."""
    now = datetime.now(timezone.utc)
    since, until = utc_iso(now - timedelta(hours=7, minutes=13)), utc_iso(now)
    for filters in ({}, {'device': 'dev-a'}, {'class_name': 'car'},
                    {'since': since, 'until': until}, {'replay': 'include'},
                    {'replay': 'only', 'kind': 'wrong_way'},
                    {'device': 'dev-b', 'class_name': 'car', 'since': since, 'until': until}):
        query = '&'.join(f'{k}={v}' for k, v in filters.items())
        yield '/api/v1/devices'
        yield '/api/v1/alerts?' + '&'.join(filter(None, (query, 'limit=60')))
        yield '/api/v1/stats?' + query
        for bucket, span in (('15min', 24), ('1min', 3), ('hour', 168), ('day', 720)):
            device = f"device={filters['device']}&" if 'device' in filters else ''
            replay = f"replay={filters['replay']}&" if 'replay' in filters else ''
            start = filters.get('since') or utc_iso(now - timedelta(hours=span))
            end = filters.get('until') or utc_iso(now)
            window = f'{device}{replay}since={start}&until={end}&bucket={bucket}'
            for by in ('direction', 'class_name'):
                yield f'/api/v1/counts?{window}&by={by}'
            yield f'/api/v1/counts.csv?{window}'  # the export link
    yield f'/api/v1/alerts/{event_id}/image?thumbnail=true'
    yield '/api/v1/alerts?limit=60&before_id=2'  # the next page


@pytest.mark.parametrize('backend', BACKENDS)
def test_dashboard_reads_use_their_indexes(backend: str, request, tmp_path) -> None:
    """
    No read of the dashboard walks a table that grows (alerts, counts, rollups) whole.

    Each statement the server runs for the dashboard is explained by the
    database (PostgreSQL analysed, with sequential scans priced out so that
    a test table smaller than a fleet's does not hide a missing index).
    """
    url = database(backend, request, tmp_path)
    command.upgrade(alembic_config(url), BEFORE)
    engine = make_engine(url)
    try:  # rows enough for PostgreSQL's statistics to tell a small table from a large one
        keys = add_devices(engine)
        store_old_rows(engine, random.Random(7), datetime.now(timezone.utc), set(),
                       alerts=3000, records=600)
    finally:
        engine.dispose()
    upgrade(url)
    server = ServerInProcess(url, str(tmp_path / 'images'))
    try:
        body = alert_body('dev-a')
        event_id = body['event_id']
        assert requests.post(f'{server.url}/api/v1/alerts', json=body, timeout=30,
                             headers={'X-API-Key': keys['dev-a']}).status_code == 201
        assert requests.put(f'{server.url}/api/v1/alerts/{event_id}/image', data=jpeg_bytes(),
                            headers={'X-API-Key': keys['dev-a'], 'Content-Type': 'image/jpeg'},
                            timeout=30).status_code == 201
        engine = server.app.state.server.engine
        with engine.connect() as connection:
            raw = connection.connection.dbapi_connection
            indexes = None
            if backend == 'postgresql':
                raw.cursor().execute('ANALYZE')
                raw.cursor().execute('SET enable_seqscan = off')
                indexes = postgres_indexes(raw)
            problems: List[str] = []
            for path in dashboard_reads(event_id):
                reads = server.reads_of(path)
                assert reads, path
                for statement, parameters in reads:
                    plan = explain(raw, backend, statement, parameters)
                    problems += [f'{path}: {scan}\n    {" ".join(statement.split())[:300]}'
                                 for scan in full_scans(backend, plan, statement, indexes)]
            connection.rollback()
        assert not problems, '\n'.join(problems)
    finally:
        server.stop()
