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
Traffic counts posted to the real server (SQLite and PostgreSQL): stored once, or refused.

The server's models follow the wire contract; a period is counted once;
bodies past the counting limits, or with a boolean for a number, are
refused (422). The edge's outbox delivers counts beside alerts.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
import csv
from datetime import timedelta
import io
import sqlite3
import uuid

from cloud_helpers import alert_body, Fleet
from counts_api import counts, DAY, every_key, post, raw_record, record, totals
import pytest
import requests
from test_bridge_faults import (  # noqa: F401 (cloud: a fixture)
    cloud, drain, make_alert, server_alerts, settings)

from vehicle_detection.cloud.server.models_counts import CountRowIn, CountsIn
from vehicle_detection.core.bridge.budget import DataBudget
from vehicle_detection.core.bridge.config import BridgeSettings
from vehicle_detection.core.bridge.outbox import Outbox
from vehicle_detection.core.bridge.recorder import AlertRecorder
from vehicle_detection.core.bridge.uploader import Uploader
from vehicle_detection.core.counting import config as counting_config
from vehicle_detection.core.counting.quality import PeriodQuality
from vehicle_detection.core.counting.session import PeriodCounts
from vehicle_detection.wire import (
    Alert, COUNT_FIELDS, COUNT_ROW_FIELDS, CountRecord, MAX_COUNT_CLASSES,
    MAX_COUNT_DIRECTIONS, MAX_COUNT_LINES, MAX_COUNT_ROWS, utc_iso)


def test_models_follow_the_wire_contract() -> None:
    assert tuple(CountsIn.model_fields) == COUNT_FIELDS
    assert tuple(CountRowIn.model_fields) == COUNT_ROW_FIELDS
    # The edge's limit of lines is the server's (one constant of the wire contract).
    assert counting_config.MAX_ENTRIES == MAX_COUNT_LINES
    assert MAX_COUNT_ROWS == MAX_COUNT_LINES * MAX_COUNT_DIRECTIONS * MAX_COUNT_CLASSES


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
    assert [(r['bucket_start_utc'], r['line'], r['direction'], r['class_name'], r['count'],
             r['coverage_s']) for r in table] == [
        ('2026-03-02T08:00:00Z', 'bar', 'away', 'truck', '60', '3600'),
        ('2026-03-02T08:00:00Z', 'bar', 'towards', 'car', '120', '3600')]


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


def test_a_period_is_counted_once(fleet: Fleet) -> None:
    """Records with new ids for one device, camera and minute: 10 vehicles, not 30."""
    minute = DAY + timedelta(days=1, hours=9)
    first = record(minute, (('bar', 'away', 'car', 10),))
    assert post(fleet, first).status_code == 201
    same = post(fleet, record(minute, (('bar', 'away', 'car', 10),)))
    assert same.status_code == 200, same.text
    assert same.json()['stored_record_id'] == first['record_id'] and not same.json()['created']
    other = post(fleet, record(minute, (('bar', 'away', 'car', 7), ('bar', 'towards', 'bus', 3))))
    assert other.status_code == 409 and first['record_id'] in other.json()['detail'], other.text
    assert post(fleet, first).status_code == 200  # a retry of the stored record
    # Another camera of the device has its own period; the minute is still covered once.
    assert post(fleet, {**record(minute, (('bar', 'away', 'car', 2),)),
                        'camera_id': 'cam1'}).status_code == 201
    series = counts(fleet, minute, minute + timedelta(minutes=1), bucket='1min').json()
    assert sum(row['count'] for row in series['rows']) == 12
    assert [c['seconds'] for c in series['coverage']] == [60]
    # Concurrent records of one new minute: one stored, the same counts 200, others 409.
    later = minute + timedelta(minutes=1)
    bodies = [record(later, (('bar', 'away', 'car', 4 if i % 2 else 5),)) for i in range(12)]
    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(lambda body: post(fleet, body), bodies))
    codes = [a.status_code for a in answers]
    assert codes.count(201) == 1, codes
    winner = bodies[codes.index(201)]['counts'][0]['count']
    for answer, body in zip(answers, bodies):
        if answer.status_code != 201:
            assert answer.status_code == (200 if body['counts'][0]['count'] == winner
                                          else 409), answer.text
    series = counts(fleet, later, later + timedelta(minutes=1), bucket='1min').json()
    assert [row['count'] for row in series['rows']] == [winner]


@pytest.mark.parametrize('path, change', [
    ('counts', {'count': True}), ('counts', {'count': '5'}), ('counts', {'count': 2.0}),
    ('counts', {'period_s': True}), ('alerts', {'track_id': True}),
    ('alerts', {'confidence': True}), ('alerts', {'bbox': [True, 0, 10, 10]}),
    ('alerts', {'image_width': True}), ('alerts', {'image_height': '720'})])
def test_a_json_boolean_or_string_is_no_number(fleet: Fleet, path: str, change: dict) -> None:
    if path == 'counts':
        body = record(DAY + timedelta(days=3), (('bar', 'away', 'car', 1),))
        if 'count' in change:
            body['counts'] = [{**body['counts'][0], **change}]
        else:
            body.update(change)
        answer = post(fleet, body)
    else:
        answer = fleet.post(alert_body('edge-1', **change))
    assert answer.status_code == 422, answer.text


def test_the_wire_contract_refuses_booleans_as_numbers() -> None:
    start = utc_iso(DAY)
    for period_s, count in ((True, 1), (60, True), (60, 2.0)):
        with pytest.raises(ValueError, match='integer'):
            CountRecord(str(uuid.uuid4()), 'edge-1', 'cam0', start, period_s,
                        (('bar', 'away', 'car', count),))
    body = alert_body('edge-1')
    fields = {name: body[name] for name in Alert.__dataclass_fields__ if name in body}
    fields['bbox'] = tuple(body['bbox'])
    Alert(**fields)  # the valid one
    for change in ({'track_id': True}, {'confidence': True}, {'image_width': 1.5},
                   {'bbox': (True, 0.0, 10.0, 10.0)}):
        with pytest.raises(ValueError):
            Alert(**{**fields, **change})


def test_records_past_the_counting_limits_are_422(fleet: Fleet) -> None:
    day = DAY + timedelta(days=4)
    for rows, limit in ((every_key(MAX_COUNT_LINES + 1, 1, ('away',)), 'at most 32'),
                        (every_key(1, MAX_COUNT_CLASSES + 1, ('away',)), 'classes, at most 16'),
                        (every_key(1, 1, ('away', 'towards', 'across')), 'at most 2 per line'),
                        (every_key(MAX_COUNT_LINES, MAX_COUNT_CLASSES + 1), 'at most 1024')):
        answer = post(fleet, raw_record(day, rows))
        assert answer.status_code == 422 and limit in answer.text, answer.text
        with pytest.raises(ValueError, match=limit):  # the edge refuses it before queueing
            CountRecord(str(uuid.uuid4()), 'edge-1', 'cam0', utc_iso(day), 60, rows)
    # Per device and day: lines 0-19 at 00:00, then 20-39 would make 40 lines that day.
    first = [(line, d, c, n) for line, d, c, n in every_key(40, 1)]
    assert post(fleet, raw_record(day, first[:40])).status_code == 201
    refused = post(fleet, raw_record(day + timedelta(minutes=1), first[40:]))
    assert refused.status_code == 422, refused.text
    assert '40 counting lines, at most 32' in refused.text and '2026-03-06' in refused.text
    assert post(fleet, raw_record(day + timedelta(days=1), first[40:])).status_code == 201
    assert post(fleet, raw_record(day + timedelta(minutes=2), first[:40])).status_code == 201
    assert post(fleet, raw_record(day + timedelta(minutes=3), first[:40]),
                device='edge-2').status_code == 201  # another device has its own limits


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
        dark = PeriodQuality(('dark',) if minute == 1 else (), 60.0 - minute)
        recorder.record_counts(bridge, PeriodCounts(start + 60 * minute, 60, {
            ('bar', 'towards', 'car'): minute + 1, ('bar', 'away', 'bus'): 1},
            scheme='uk6', quality=dark))
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
    assert {k: series['coverage'][0][k] for k in ('observed_seconds', 'flags', 'scheme')} == {
        'observed_seconds': 177, 'flags': ['dark'], 'scheme': 'uk6'}
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
