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
What every read route shares, on a real server (SQLite and PostgreSQL).

One time range (``since``/``until``, the old ``from``/``to`` still taken),
one refusal of a backward range, 404 for an unknown device, and replays
stored marked and left out unless asked for. Also migration 0007.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
import uuid

from alembic import command
from cloud_helpers import alert_body, Fleet
import pytest
import requests
from sqlalchemy import text

from vehicle_detection.cloud.server.engine import make_engine
from vehicle_detection.cloud.server.schema import alembic_config
from vehicle_detection.wire import Alert, CountRecord, utc_iso

READ_PATHS = ('alerts', 'stats', 'counts', 'counts.csv')
DAY = datetime(2026, 4, 7, tzinfo=timezone.utc)


def get(fleet: Fleet, path: str, **params: str) -> requests.Response:
    return requests.get(f'{fleet.url}/{path}', params=params, timeout=10)


def count_record(start: datetime, rows: tuple, replay: bool = False) -> dict:
    return CountRecord(str(uuid.uuid4()), 'edge-1', 'cam0', utc_iso(start), 60, rows,
                       replay).to_json()


def post_counts(fleet: Fleet, body: dict) -> requests.Response:
    return requests.post(f'{fleet.url}/counts', json=body, timeout=10,
                         headers={'X-API-Key': fleet.keys['edge-1']})


def test_every_read_route_refuses_a_backward_range_alike(fleet: Fleet) -> None:
    later, earlier = '2026-04-07T09:00:00Z', '2026-04-07T08:00:00Z'
    details = set()
    for path in READ_PATHS:
        for names in (('since', 'until'), ('from', 'to')):  # the old names of /counts too
            for start, end in ((later, earlier), (later, later)):
                answer = get(fleet, path, **dict(zip(names, (start, end))))
                assert answer.status_code == 422, (path, names, answer.text)
                if start != end:
                    details.add(answer.json()['detail'])
    assert details == {'since must come before until (since 2026-04-07T09:00:00Z, until '
                       '2026-04-07T08:00:00Z)'}
    for path in READ_PATHS:
        naive = get(fleet, path, since='2026-04-07T08:00:00')
        assert naive.status_code == 422 and 'time zone' in naive.json()['detail'], naive.text
        two = get(fleet, path, since=earlier, **{'from': later})
        assert two.status_code == 422 and 'give since only' in two.json()['detail'], two.text


def test_old_and_new_range_names_mean_the_same(fleet: Fleet) -> None:
    events = []
    for day in range(3):
        body = alert_body('edge-2', detected_at=utc_iso(DAY + timedelta(days=day, hours=8)))
        assert fleet.post(body, device='edge-2').status_code == 201
        events.append(body['event_id'])
        assert post_counts(fleet, count_record(DAY + timedelta(days=day, hours=8), (
            ('bar', 'away', 'car', day + 1),))).status_code == 201
    window = (utc_iso(DAY + timedelta(days=1)), utc_iso(DAY + timedelta(days=2)))
    for path, device in (('alerts', 'edge-2'), ('stats', 'edge-2'), ('counts', 'edge-1')):
        new = get(fleet, path, device=device, since=window[0], until=window[1]).json()
        old = get(fleet, path, device=device, **{'from': window[0], 'to': window[1]}).json()
        assert new == old, path
    assert [a['event_id'] for a in get(fleet, 'alerts', device='edge-2', since=window[0],
                                       until=window[1]).json()['items']] == [events[1]]
    assert get(fleet, 'stats', device='edge-2', since=window[0],
               until=window[1]).json()['total'] == 1
    counted = get(fleet, 'counts', device='edge-1', since=window[0], until=window[1],
                  bucket='day').json()
    assert [row['count'] for row in counted['rows']] == [2]


def test_an_unknown_device_is_404_naming_it(fleet: Fleet) -> None:
    for path in READ_PATHS:
        answer = get(fleet, path, device='gate-nowhere')
        assert answer.status_code == 404, (path, answer.text)
        assert "'gate-nowhere'" in answer.json()['detail']
        assert get(fleet, path, device='edge-2').status_code == 200  # known, maybe no data
        assert get(fleet, path, device='a/b').status_code == 422  # never a device name


def test_replays_are_stored_marked_and_left_out_unless_asked(fleet: Fleet) -> None:
    moment = DAY + timedelta(days=10, hours=7)
    bodies = {}
    for replay in (False, True):
        alert = Alert(str(uuid.uuid4()), 'edge-1', 'cam0', utc_iso(moment), 5, 'car', 0.9,
                      (1.0, 2.0, 30.0, 40.0), 640, 360, replay=replay)
        bodies[replay] = alert.to_json()
        assert fleet.post(bodies[replay]).status_code == 201
    assert 'replay' not in bodies[False]  # a live alert is what older servers know
    assert bodies[True]['replay'] is True
    window = {'device': 'edge-1', 'since': utc_iso(moment), 'until': utc_iso(
        moment + timedelta(hours=1))}

    def listed(**params: str) -> dict:
        answer = get(fleet, 'alerts', **window, **params)
        assert answer.status_code == 200, answer.text
        return {a['event_id']: a['replay'] for a in answer.json()['items']}

    live, replayed = bodies[False]['event_id'], bodies[True]['event_id']
    assert listed() == {live: False}  # the default: live traffic only
    assert listed(replay='include') == {live: False, replayed: True}
    assert listed(replay='only') == {replayed: True}
    assert get(fleet, 'alerts', replay='sometimes').status_code == 422
    assert get(fleet, f'alerts/{replayed}').json()['replay'] is True
    assert get(fleet, 'stats', **window).json()['total'] == 1
    assert get(fleet, 'stats', **window, replay='include').json()['total'] == 2
    for replay in (False, True):  # the devices panel's "Alerts 24 h" counts live ones
        assert fleet.post(alert_body('edge-1', replay=replay)).status_code == 201
    devices = {d['name']: d for d in get(fleet, 'devices').json()}
    assert devices['edge-1']['alerts_24h'] == 1
    # Counts: a replay of a period counted live is stored apart from it, and left out.
    period = moment.replace(minute=0)
    live_record = count_record(period, (('bar', 'away', 'car', 4),))
    replay_record = count_record(period, (('bar', 'away', 'car', 6),), replay=True)
    assert post_counts(fleet, live_record).status_code == 201
    assert post_counts(fleet, replay_record).status_code == 201
    assert post_counts(fleet, replay_record).status_code == 200  # a retry: stored once

    def counted(**params: str) -> tuple:
        answer = get(fleet, 'counts', **window, bucket='hour', **params).json()
        return (sum(r['count'] for r in answer['rows']),
                sum(c['seconds'] for c in answer['coverage']))

    assert counted() == (4, 60)
    assert counted(replay='only') == (6, 60)
    assert counted(replay='include') == (10, 120)  # both periods' minutes
    csv = get(fleet, 'counts.csv', **window, bucket='hour').text.splitlines()
    assert len(csv) == 2 and csv[1].split(',')[7:9] == ['4', '60']  # count, coverage_s


@pytest.mark.parametrize('backend', ['sqlite', 'postgresql'])
def test_migration_0007_marks_stored_rows_live(backend: str, request, tmp_path: Path) -> None:
    url = (f'sqlite:///{tmp_path}/old.db' if backend == 'sqlite'
           else request.getfixturevalue('postgres').new_database())
    config = alembic_config(url)
    command.upgrade(config, '0006')
    engine = make_engine(url)
    record = ('INSERT INTO count_records (record_id, device_id, camera_id, period_start, '
              "period_s, received_at{}) VALUES ('{}', 1, 'cam0', 1772438400, 60, "
              "'2026-03-02'{})")
    try:
        with engine.begin() as db:
            db.execute(text('INSERT INTO devices (id, name, key_hash, created_at) VALUES '
                            "(1, 'edge-1', 'k1', '2026-01-01')"))
            db.execute(text('INSERT INTO alerts (event_id, device_id, camera_id, detected_at, '
                            'received_at, track_id, class_name, confidence, bbox, '
                            "image_width, image_height) VALUES ('e1', 1, 'cam0', '2026-03-02', "
                            "'2026-03-02', 1, 'car', 0.9, '[1, 2, 3, 4]', 10, 10)"))
            db.execute(text(record.format('', 'live', '')))
        command.upgrade(config, '0007')
        with engine.begin() as db:
            assert db.execute(text('SELECT replay FROM alerts')).scalar_one() in (False, 0)
            assert db.execute(text('SELECT replay FROM count_records')).scalar_one() in (
                False, 0)
            db.execute(text(record.format(', replay', 'replayed', ', true')))
        with pytest.raises(RuntimeError, match='1 replayed count periods'):
            command.downgrade(config, '0006')  # the older unique period cannot hold both
        with engine.begin() as db:
            db.execute(text("DELETE FROM count_records WHERE record_id = 'replayed'"))
        command.downgrade(config, '0006')
        with engine.begin() as db:
            assert db.execute(text('SELECT count(*) FROM alerts')).scalar_one() == 1
    finally:
        engine.dispose()
