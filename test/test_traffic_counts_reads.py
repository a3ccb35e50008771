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
Traffic counts read from the real server (SQLite and PostgreSQL): buckets, coverage, CSV.

Coverage never exceeds its bucket and carries the periods' quality; large
reads are refused unless split; the CSV export has a row per observed
bucket, zeros included, states its time zone and hands a spreadsheet no
formula.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
import csv
from datetime import datetime, timedelta, timezone
import io

from cloud_helpers import Fleet
from counts_api import counts, DAY, every_key, post, record
import requests

from vehicle_detection.cloud.server.routes_counts import MAX_ANSWER_ROWS
from vehicle_detection.wire import MAX_COUNT_CLASSES, MAX_COUNT_LINES, MAX_COUNT_ROWS, utc_iso


def test_coverage_never_exceeds_the_bucket(fleet: Fleet) -> None:
    start = DAY + timedelta(days=2, hours=10)
    assert post(fleet, record(start, (('bar', 'away', 'car', 5),), period_s=86400)
                ).status_code == 201
    overlapping = record(start + timedelta(minutes=30), (('bar', 'away', 'car', 1),),
                         period_s=3600)
    assert post(fleet, {**overlapping, 'camera_id': 'cam1'}).status_code == 201
    end = start + timedelta(hours=1)
    minutes = counts(fleet, start, end, bucket='1min').json()
    assert [(c['start'][11:16], c['seconds']) for c in minutes['coverage']] == [
        ('10:00', 60), ('10:30', 60)]
    assert [c['seconds'] for c in counts(fleet, start, end, bucket='hour').json()[
        'coverage']] == [3600]  # 3600 + 1800 of periods, clipped to the hour
    assert [c['seconds'] for c in counts(fleet, start, end, bucket='day').json()[
        'coverage']] == [50400 + 3600]  # the day's period covers its day from 10:00


def test_large_reads_are_refused_and_split_reads_are_small(fleet: Fleet) -> None:
    start = DAY + timedelta(days=6)
    classes = MAX_COUNT_CLASSES - 1  # 960 rows a minute (within the old cap of 1000 too)
    full = every_key(MAX_COUNT_LINES, classes)
    devices = ('edge-1', 'edge-2')  # posting side by side: one device's posts take turns
    minutes = MAX_ANSWER_ROWS // (len(devices) * len(full)) + 1
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda job: post(fleet, record(
            start + timedelta(minutes=job[1]), full, device=job[0]), device=job[0]),
            [(device, minute) for device in devices for minute in range(minutes)]))
    assert {answer.status_code for answer in answers} == {201}
    window = {'from': utc_iso(start), 'to': utc_iso(start + timedelta(minutes=minutes))}

    def read(path: str = 'counts', **params: str) -> requests.Response:
        return requests.get(f'{fleet.url}/{path}', params={**window, **params}, timeout=30)

    for path in ('counts', 'counts.csv'):
        refused = read(path, bucket='1min')
        assert refused.status_code == 422, refused.text[:200]
        assert f'more than {MAX_ANSWER_ROWS} rows' in refused.json()['detail']
        assert 'by=direction' in refused.json()['detail']
    by_direction = read(bucket='1min', by='direction').json()
    assert len(by_direction['rows']) == len(devices) * minutes * MAX_COUNT_LINES * 2
    assert {row['class_name'] for row in by_direction['rows']} == {None}
    assert sum(row['count'] for row in by_direction['rows']) == len(answers) * len(full)
    by_class = read(bucket='1min', by='class_name').json()
    assert len(by_class['rows']) == len(devices) * minutes * MAX_COUNT_LINES * classes
    assert {row['direction'] for row in by_class['rows']} == {None}
    assert len(read(bucket='hour').json()['rows']) == len(devices) * len(full)


def test_the_csv_export_never_hands_a_spreadsheet_a_formula(fleet: Fleet) -> None:
    start = DAY + timedelta(hours=20)
    assert post(fleet, record(start, (('bar', 'away', '=HYPERLINK("x")', 2),))).status_code == 201
    table = requests.get(f'{fleet.url}/counts.csv', timeout=10, params={
        'from': '2026-03-02T20:00:00Z', 'to': '2026-03-02T21:00:00Z', 'bucket': 'hour'}).text
    [row] = csv.DictReader(io.StringIO(table))
    assert row['class_name'] == "'=HYPERLINK(\"x\")" and row['count'] == '2', row


# Europe/London goes from GMT to BST at 01:00 UTC that day: the local column shows the jump.
DST_DAY = datetime(2026, 3, 29, tzinfo=timezone.utc)


def test_the_csv_has_a_row_per_observed_bucket_zeros_included_and_states_its_zone(
        fleet: Fleet) -> None:
    # 00:00 two cars away; 00:15 a period with no vehicle; 00:30 not observed; 00:45 half
    # observed (a 450 s period) with a truck towards; 01:00 one car away.
    observed = [(DST_DAY, 60, (('bar', 'away', 'car', 2),)), (DST_DAY + timedelta(minutes=15),
                60, ()), (DST_DAY + timedelta(minutes=45), 450, (('bar', 'towards', 'truck', 1),)),
                (DST_DAY + timedelta(hours=1), 60, (('bar', 'away', 'car', 1),))]
    for start, period_s, rows in observed:
        assert post(fleet, record(start, rows, device='edge-2', period_s=period_s),
                    device='edge-2').status_code == 201
    window = {'device': 'edge-2', 'since': '2026-03-29T00:00:00Z',
              'until': '2026-03-29T01:15:00Z'}

    def table(**params: str) -> list:
        answer = requests.get(f'{fleet.url}/counts.csv', timeout=10,
                              params={**window, **params})
        assert answer.status_code == 200, answer.text
        return list(csv.DictReader(io.StringIO(answer.text)))

    london = table(tz='Europe/London')
    assert [(r['bucket_start_utc'], r['bucket_start_local'], r['direction'], r['class_name'],
             r['count'], r['coverage_s']) for r in london] == [
        ('2026-03-29T00:00:00Z', '2026-03-29T00:00:00+00:00', 'away', 'car', '2', '60'),
        ('2026-03-29T00:00:00Z', '2026-03-29T00:00:00+00:00', 'towards', 'truck', '0', '60'),
        ('2026-03-29T00:15:00Z', '2026-03-29T00:15:00+00:00', 'away', 'car', '0', '60'),
        ('2026-03-29T00:15:00Z', '2026-03-29T00:15:00+00:00', 'towards', 'truck', '0', '60'),
        # 00:30 was not observed: no row, not a zero.
        ('2026-03-29T00:45:00Z', '2026-03-29T00:45:00+00:00', 'away', 'car', '0', '450'),
        ('2026-03-29T00:45:00Z', '2026-03-29T00:45:00+00:00', 'towards', 'truck', '1', '450'),
        ('2026-03-29T01:00:00Z', '2026-03-29T02:00:00+01:00', 'away', 'car', '1', '60'),
        ('2026-03-29T01:00:00Z', '2026-03-29T02:00:00+01:00', 'towards', 'truck', '0', '60')]
    assert {r['tz'] for r in london} == {'Europe/London'}
    assert {r['device_id'] for r in london} == {'edge-2'}
    # By direction only: the same buckets, one row per direction.
    assert [(r['bucket_start_utc'][11:16], r['direction'], r['class_name'], r['count'])
            for r in table(tz='Asia/Kolkata', by='direction')][:2] == [
        ('00:00', 'away', '', '2'), ('00:00', 'towards', '', '0')]
    assert table(tz='Asia/Kolkata')[0]['bucket_start_local'] == '2026-03-29T05:30:00+05:30'
    # Without tz: the server's own zone (this test's, the same machine), named per row.
    for row in table():
        utc = datetime.fromisoformat(row['bucket_start_utc'].replace('Z', '+00:00'))
        assert row['bucket_start_local'] == utc.astimezone().isoformat()
        assert row['tz'] == utc.astimezone().tzname()
    # A window observed without a single vehicle: one row of 0 per observed bucket.
    empty = table(since='2026-03-29T00:15:00Z', until='2026-03-29T00:45:00Z')
    assert [(r['bucket_start_utc'], r['line'], r['count'], r['coverage_s'])
            for r in empty] == [('2026-03-29T00:15:00Z', '', '0', '60')]
    assert [r['line'] for r in table(since='2026-03-29T00:15:00Z', line='bar',
                                     until='2026-03-29T00:45:00Z')] == ['bar']
    for wrong in ('Mars/Olympus', '../../etc/passwd', 'x' * 300, ''):
        refused = requests.get(f'{fleet.url}/counts.csv', params={**window, 'tz': wrong},
                               timeout=10)
        assert refused.status_code == 422, wrong
        assert 'IANA name' in refused.json()['detail'], refused.text


def test_quality_and_coverage_per_bucket_in_the_api_and_the_csv(fleet: Fleet) -> None:
    """A bucket's flags are its periods' union, its observed seconds their sum."""
    start = DAY + timedelta(hours=9)
    qualities = [{'flags': [], 'observed_s': 60}, {'flags': ['glare'], 'observed_s': 60},
                 {'flags': ['stalled', 'camera_reconnected'], 'observed_s': 12.4}]
    for minute, quality in enumerate(qualities):
        body = {**record(start + timedelta(minutes=minute), (('bar', 'away', 'car', 2),)),
                'scheme': 'uk6', 'quality': quality}
        assert post(fleet, body).status_code == 201, body
    # An older edge says nothing of quality: its bucket is not called ok.
    assert post(fleet, record(start + timedelta(hours=1), (('bar', 'away', 'car', 1),))
                ).status_code == 201
    window = {'from': utc_iso(start), 'to': utc_iso(start + timedelta(hours=2))}
    answer = counts(fleet, start, start + timedelta(hours=2), bucket='hour').json()
    assert [(c['seconds'], c['observed_seconds'], c['assessed'], c['flags'], c['scheme'])
            for c in answer['coverage']] == [
        (180, 132, True, ['glare', 'camera_reconnected', 'stalled'], 'uk6'),
        (60, 60, False, [], None)]
    minutes = counts(fleet, start, start + timedelta(minutes=3), bucket='1min').json()
    assert [c['flags'] for c in minutes['coverage']] == [
        [], ['glare'], ['camera_reconnected', 'stalled']]
    table = list(csv.DictReader(io.StringIO(requests.get(
        f'{fleet.url}/counts.csv', timeout=10,
        params={**window, 'device': 'edge-1', 'bucket': 'hour'}).text)))
    assert [(r['count'], r['coverage_s'], r['observed_s'], r['quality'], r['scheme'])
            for r in table] == [('6', '180', '132', 'glare camera_reconnected stalled', 'uk6'),
                                ('1', '60', '60', '', '')]
    table = list(csv.DictReader(io.StringIO(requests.get(
        f'{fleet.url}/counts.csv', timeout=10, params={
            'from': utc_iso(start), 'to': utc_iso(start + timedelta(minutes=3)),
            'device': 'edge-1', 'bucket': '1min'}).text)))
    assert [(r['observed_s'], r['quality']) for r in table] == [
        ('60', 'ok'), ('60', 'glare'), ('12', 'camera_reconnected stalled')]


def test_a_csv_past_the_row_bound_with_its_zeros_is_refused(fleet: Fleet) -> None:
    # One minute with every key a device may count in a day (1024), then 48 minutes with no
    # vehicle: 49 x 1024 rows with the zeros, over the bound, though the stored rows are few.
    start = datetime(2026, 4, 1, 6, tzinfo=timezone.utc)
    assert post(fleet, record(start, every_key(MAX_COUNT_LINES, MAX_COUNT_CLASSES))
                ).status_code == 201
    for minute in range(1, 49):
        assert post(fleet, record(start + timedelta(minutes=minute), ())).status_code == 201
    window = {'device': 'edge-1', 'since': utc_iso(start),
              'until': utc_iso(start + timedelta(minutes=49)), 'bucket': '1min'}
    assert 49 * MAX_COUNT_ROWS > MAX_ANSWER_ROWS
    refused = requests.get(f'{fleet.url}/counts.csv', params=window, timeout=30)
    assert refused.status_code == 422
    assert f'{49 * MAX_COUNT_ROWS} rows' in refused.json()['detail']
    # Summed over class: 64 keys a minute, answered, every minute observed.
    table = list(csv.DictReader(io.StringIO(requests.get(
        f'{fleet.url}/counts.csv', params={**window, 'by': 'direction'}, timeout=30).text)))
    assert len(table) == 49 * MAX_COUNT_LINES * 2
    assert sum(int(row['count']) for row in table) == MAX_COUNT_ROWS
