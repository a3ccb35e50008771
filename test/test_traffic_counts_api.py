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

"""Traffic counts on the real server (SQLite and PostgreSQL): ingest, buckets, CSV."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
import csv
from datetime import datetime, timedelta, timezone
import io
import sqlite3
from typing import Dict, Tuple
import uuid

from cloud_helpers import alert_body, Fleet
import requests
from test_bridge_faults import (  # noqa: F401 (cloud: a fixture)
    cloud, drain, make_alert, server_alerts, settings)

from vehicle_detection.cloud.server.models import CountRowIn, CountsIn
from vehicle_detection.core.bridge.budget import DataBudget
from vehicle_detection.core.bridge.config import BridgeSettings
from vehicle_detection.core.bridge.outbox import Outbox
from vehicle_detection.core.bridge.recorder import AlertRecorder
from vehicle_detection.core.bridge.uploader import Uploader
from vehicle_detection.core.counting.session import PeriodCounts
from vehicle_detection.wire import COUNT_FIELDS, COUNT_ROW_FIELDS, CountRecord, utc_iso

# A fixed day well in the past: other tests' counts (now) never fall into it.
DAY = datetime(2026, 3, 2, tzinfo=timezone.utc)


def record(start: datetime, rows: Tuple[Tuple[str, str, str, int], ...],
           device: str = 'edge-1', period_s: int = 60) -> dict:
    return CountRecord(str(uuid.uuid4()), device, 'cam0', utc_iso(start), period_s,
                       rows).to_json()


def post(fleet: Fleet, body: dict, device: str = 'edge-1') -> requests.Response:
    return requests.post(f'{fleet.url}/counts', json=body, timeout=10,
                         headers={'X-API-Key': fleet.keys[device]})


def totals(answer: dict) -> Dict[Tuple[str, str, str], int]:
    found: Dict[Tuple[str, str, str], int] = {}
    for row in answer['rows']:
        key = (row['start'][11:16], row['line'], row['direction'])
        found[key] = found.get(key, 0) + row['count']
    return found


def test_models_follow_the_wire_contract() -> None:
    assert tuple(CountsIn.model_fields) == COUNT_FIELDS
    assert tuple(CountRowIn.model_fields) == COUNT_ROW_FIELDS


def test_counts_are_stored_once_and_summed_into_buckets(fleet: Fleet) -> None:
    # An hour of 1-minute periods at 08:00-09:00: 2 cars towards and 1 truck away a minute.
    bodies = [record(DAY + timedelta(hours=8, minutes=m),
                     (('bar', 'away', 'truck', 1), ('bar', 'towards', 'car', 2)))
              for m in range(60)]
    for body in bodies:
        assert post(fleet, body).status_code == 201
    with ThreadPoolExecutor(8) as pool:  # retries of one record, concurrently: stored once
        again = list(pool.map(lambda _: post(fleet, bodies[0]), range(16)))
    assert {a.status_code for a in again} == {200}
    # Another record of a stored minute (a new record id) would count it twice: 409.
    assert post(fleet, record(DAY + timedelta(hours=8, minutes=5), ())).status_code == 409
    window = {'device': 'edge-1', 'from': '2026-03-02T08:00:00Z',
              'to': '2026-03-02T09:00:00Z'}
    quarter = requests.get(f'{fleet.url}/counts', params=window, timeout=10).json()
    assert quarter['bucket_s'] == 900
    assert totals(quarter) == {(f'08:{m:02d}', 'bar', direction): n * 15
                               for m in (0, 15, 30, 45)
                               for direction, n in (('towards', 2), ('away', 1))}
    # Coverage: 15 minutes of periods per bucket.
    assert [c['seconds'] for c in quarter['coverage']] == [900, 900, 900, 900]
    hour = requests.get(f'{fleet.url}/counts', timeout=10,
                        params={**window, 'bucket': 'hour', 'line': 'bar'}).json()
    assert {(r['direction'], r['class_name']): r['count'] for r in hour['rows']} == {
        ('towards', 'car'): 120, ('away', 'truck'): 60}
    minute = requests.get(f'{fleet.url}/counts', timeout=10,
                          params={**window, 'bucket': '1min'}).json()
    assert len(minute['rows']) == 120
    other = requests.get(f'{fleet.url}/counts', timeout=10,
                         params={**window, 'device': 'edge-2'}).json()
    assert other['rows'] == [] and other['coverage'] == []
    csv_answer = requests.get(f'{fleet.url}/counts.csv', params={**window, 'bucket': 'hour'},
                              timeout=10)
    assert csv_answer.headers['content-type'].startswith('text/csv')
    table = list(csv.DictReader(io.StringIO(csv_answer.text)))
    assert [(r['bucket_start'], r['line'], r['direction'], r['class_name'], r['count'])
            for r in table] == [('2026-03-02T08:00:00Z', 'bar', 'away', 'truck', '60'),
                                ('2026-03-02T08:00:00Z', 'bar', 'towards', 'car', '120')]


def test_a_record_id_of_another_device_is_409(fleet: Fleet) -> None:
    body = record(DAY + timedelta(hours=3), (('bar', 'away', 'car', 1),))
    assert post(fleet, body).status_code == 201
    assert post(fleet, body, device='edge-2').status_code == 409


def test_bad_count_bodies_and_queries_are_422(fleet: Fleet) -> None:
    good = record(DAY, (('bar', 'away', 'car', 1),))
    bad_bodies = [
        {**good, 'counts': [{'line': 'bar', 'direction': 'away', 'class_name': 'car',
                             'count': -1}]},
        {**good, 'counts': [{'line': '../x', 'direction': 'away', 'class_name': 'car',
                             'count': 1}]},
        {**good, 'counts': [good['counts'][0], good['counts'][0]]},  # a key twice
        {**good, 'counts': [good['counts'][0]] * 1001},
        {**good, 'period_s': 0}, {**good, 'period_start': '1999-12-31T00:00:00Z'},
        {**good, 'period_start': '9999-12-31T23:59:59Z'}, {**good, 'extra': 1},
        {**good, 'counts': [{'line': 'bar', 'direction': 'away', 'class_name': 'c\x00r',
                             'count': 1}]},
    ]
    for body in bad_bodies:
        answer = post(fleet, body)
        assert answer.status_code == 422, (body, answer.text)
    assert requests.post(f'{fleet.url}/counts', json=good, timeout=10).status_code == 401
    bad_queries = [{'bucket': 'week'}, {'line': 'a/b'}, {'from': 'yesterday'},
                   {'from': '2026-03-02T09:00:00Z', 'to': '2026-03-02T08:00:00Z'},
                   {'from': '2000-01-01T00:00:00Z', 'to': '2026-01-01T00:00:00Z',
                    'bucket': '1min'},
                   {'from': '2026-03-02T08:00:00'},  # no time zone
                   {'from': '0001-01-01T00:00:00+05:00', 'to': '0001-01-02T00:00:00+05:00'},
                   {'to': '0001-01-01T00:30:00Z'}, {'device': 'a' * 1000},
                   {'from': '9999-12-31T23:59:59-05:00', 'bucket': 'day'}]
    for params in bad_queries:
        for path in ('counts', 'counts.csv'):
            answer = requests.get(f'{fleet.url}/{path}', params=params, timeout=10)
            assert answer.status_code == 422, (params, answer.text)


def test_the_csv_export_never_hands_a_spreadsheet_a_formula(fleet: Fleet) -> None:
    start = DAY + timedelta(hours=20)
    assert post(fleet, record(start, (('bar', 'away', '=HYPERLINK("x")', 2),))).status_code == 201
    table = requests.get(f'{fleet.url}/counts.csv', timeout=10, params={
        'from': '2026-03-02T20:00:00Z', 'to': '2026-03-02T21:00:00Z', 'bucket': 'hour'}).text
    row = list(csv.reader(io.StringIO(table)))[1]
    assert row[4] == "'=HYPERLINK(\"x\")" and row[5] == '2', row


def test_stopped_vehicle_alerts_name_their_zone(fleet: Fleet) -> None:
    body = alert_body('edge-1', kind='stopped_vehicle', zone='shoulder')
    assert fleet.post(body).status_code == 201
    stored = requests.get(f'{fleet.url}/alerts/{body["event_id"]}', timeout=5).json()
    assert (stored['kind'], stored['zone']) == ('stopped_vehicle', 'shoulder')
    for wrong in ({'kind': 'stopped_vehicle'}, {'zone': 'shoulder'}, {'kind': 'parade'}):
        assert fleet.post(alert_body('edge-1', **wrong)).status_code == 422, wrong


def test_counts_and_alerts_drain_from_the_outbox_to_the_server(
        cloud, tmp_path) -> None:  # noqa: F811
    """The bridge's recorder queues periods beside alerts; the uploader delivers both."""
    server, key = cloud
    outbox = Outbox(str(tmp_path / 'edge'))
    budget = DataBudget(outbox, 0)
    recorder = AlertRecorder(outbox, budget)
    bridge = BridgeSettings()
    start = DAY.timestamp() + 6 * 3600
    for minute in range(3):
        recorder.record_counts(bridge, PeriodCounts(start + 60 * minute, 60, {
            ('bar', 'towards', 'car'): minute + 1, ('bar', 'away', 'bus'): 1}))
        outbox.enqueue(make_alert(minute), None)
    assert [e['kind'] for e in outbox.events()] == ['counts', 'alert'] * 3
    drain(outbox, Uploader(settings(server.url, key), outbox, budget))
    assert {(e['kind'], e['alert_state']) for e in outbox.events()} == {
        ('counts', 'sent'), ('alert', 'sent')}
    series = requests.get(f'{server.url}/api/v1/counts', timeout=10, params={
        'from': '2026-03-02T06:00:00Z', 'to': '2026-03-02T07:00:00Z', 'bucket': 'hour'}).json()
    assert {(r['direction'], r['class_name']): r['count'] for r in series['rows']} == {
        ('towards', 'car'): 6, ('away', 'bus'): 3}
    assert series['coverage'][0]['seconds'] == 180
    assert len(server_alerts(server.url)) == 3


def test_an_outbox_of_an_older_version_gains_the_kind_column(tmp_path) -> None:
    folder = tmp_path / 'old'
    folder.mkdir()
    with sqlite3.connect(folder / 'outbox.db') as db:  # the events table before counts
        db.execute('CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT '
                   'NOT NULL UNIQUE, created_at REAL NOT NULL, alert TEXT NOT NULL, image_path '
                   'TEXT, image_bytes INTEGER NOT NULL DEFAULT 0, alert_state TEXT NOT NULL '
                   "DEFAULT 'pending', image_state TEXT NOT NULL DEFAULT 'pending', attempts "
                   'INTEGER NOT NULL DEFAULT 0, last_error TEXT)')
        db.execute('INSERT INTO events (event_id, created_at, alert, image_state) '
                   "VALUES ('e1', 0, '{\"event_id\": \"e1\"}', 'none')")
    outbox = Outbox(str(folder))
    event = outbox.next_open()
    assert event is not None and event.kind == 'alert'
    outbox.close()
