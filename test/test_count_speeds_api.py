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

"""Speeds on the real server (SQLite and PostgreSQL): percentiles per bucket, vehicle export."""

from __future__ import annotations

import csv
from datetime import datetime, timedelta, timezone
import io
from typing import Dict, Iterator, List, Tuple
import uuid

from cloud_helpers import add_device, cloud_cli, CloudServer, Fleet
import numpy as np
import pytest
import requests

from vehicle_detection.core.bridge.answers import unknown_fields
from vehicle_detection.core.bridge.transport import Answer
from vehicle_detection.wire import CountRecord, utc_iso
from vehicle_detection.wire_speeds import merge_bins, speed_bin, speed_summary

DAY = datetime(2026, 4, 7, tzinfo=timezone.utc)  # a day no other test counts on
KEYS = (('bar', 'away', 'car'), ('bar', 'away', 'truck'), ('bar', 'towards', 'car'))


def minute_speeds(rng: np.random.Generator) -> Dict[Tuple[str, str, str], List[float]]:
    """Return one minute's vehicles' speeds per key: cars about 100 km/h, lorries 85."""
    return {key: list(rng.normal(85.0 if key[2] == 'truck' else 100.0, 9.0,
                                 int(rng.integers(0, 6)))) for key in KEYS}


def posted(fleet: Fleet, start: datetime, speeds: Dict[Tuple[str, str, str], List[float]]
           ) -> None:
    bins: Dict[Tuple[str, str, str], Dict[int, int]] = {}
    for key, values in speeds.items():
        for value in values:
            bins.setdefault(key, {})[speed_bin(value)] = \
                bins.get(key, {}).get(speed_bin(value), 0) + 1
    record = CountRecord(
        str(uuid.uuid4()), 'edge-1', 'cam0', utc_iso(start), 60,
        tuple((*key, len(values)) for key, values in speeds.items() if values),
        speeds=tuple((*key, tuple(sorted(b.items()))) for key, b in bins.items()) or None,
        vehicles=tuple((round(7.0 * i % 60, 2), *key, round(value, 1))
                       for key, values in speeds.items()
                       for i, value in enumerate(values)) or None)
    answer = requests.post(f'{fleet.url}/counts', json=record.to_json(), timeout=10,
                           headers={'X-API-Key': fleet.keys['edge-1']})
    assert answer.status_code == 201, answer.text


def test_percentiles_per_bucket_come_from_the_merged_bins(fleet: Fleet) -> None:
    rng = np.random.default_rng(11)
    truth: Dict[Tuple[int, str, str, str], List[float]] = {}  # hour, key -> speeds
    for minute in range(120):  # 08:00-10:00, one record a minute
        speeds = minute_speeds(rng)
        posted(fleet, DAY + timedelta(hours=8, minutes=minute), speeds)
        for key, values in speeds.items():
            truth.setdefault((8 + minute // 60, *key), []).extend(values)
    window = {'device': 'edge-1', 'since': '2026-04-07T08:00:00Z',
              'until': '2026-04-07T10:00:00Z', 'bucket': 'hour'}
    rows = requests.get(f'{fleet.url}/counts', params=window, timeout=10).json()['rows']
    assert len(rows) == 6
    for row in rows:
        speeds = truth[(int(row['start'][11:13]), row['line'], row['direction'],
                        row['class_name'])]
        expected = speed_summary(merge_bins([{speed_bin(v): 1} for v in speeds]))
        assert row['count'] == row['speed_n'] == len(speeds)
        assert {k: row[k] for k in expected} == expected  # the same rule as the edge's
        for share in (15, 50, 85, 95):  # and within a bin of the speeds themselves
            assert row[f'speed_p{share}'] == pytest.approx(np.percentile(speeds, share), abs=2.0)
        assert row['speed_mean'] == pytest.approx(np.mean(speeds), abs=1.0)
    # Summed over classes: the bins of cars and lorries merged.
    merged = requests.get(f'{fleet.url}/counts', timeout=10,
                          params={**window, 'by': 'direction'}).json()['rows']
    away_8 = next(r for r in merged if r['direction'] == 'away' and r['start'][11:13] == '08')
    speeds = truth[(8, 'bar', 'away', 'car')] + truth[(8, 'bar', 'away', 'truck')]
    assert away_8['speed_p85'] == speed_summary(
        merge_bins([{speed_bin(v): 1} for v in speeds]))['speed_p85']
    table = list(csv.DictReader(io.StringIO(requests.get(
        f'{fleet.url}/counts.csv', params=window, timeout=10).text)))
    assert [float(r['speed_p85']) for r in table] == [r['speed_p85'] for r in rows]
    assert list(table[0])[-6:] == ['speed_n', 'speed_p15', 'speed_p50', 'speed_p85',
                                   'speed_p95', 'speed_mean']


def test_counts_without_speeds_have_empty_speed_columns(fleet: Fleet) -> None:
    start = DAY + timedelta(hours=14)
    record = CountRecord(str(uuid.uuid4()), 'edge-1', 'cam0', utc_iso(start), 60,
                         (('gate', 'in', 'car', 4),))
    assert requests.post(f'{fleet.url}/counts', json=record.to_json(), timeout=10, headers={
        'X-API-Key': fleet.keys['edge-1']}).status_code == 201
    window = {'device': 'edge-1', 'since': '2026-04-07T14:00:00Z',
              'until': '2026-04-07T15:00:00Z', 'bucket': 'hour'}
    row, = requests.get(f'{fleet.url}/counts', params=window, timeout=10).json()['rows']
    assert row['count'] == 4 and row['speed_n'] == 0 and row['speed_p85'] is None
    line, = requests.get(f'{fleet.url}/counts.csv', params=window,
                         timeout=10).text.splitlines()[1:]
    assert line.endswith(',4,60,60,,,0,,,,,')  # coverage, quality columns, then speeds


def test_vehicles_are_exported_as_json_and_csv(fleet: Fleet) -> None:
    start = DAY + timedelta(hours=16)
    speeds = {('bar', 'away', 'car'): [97.25, 101.0], ('bar', 'towards', 'car'): [88.0]}
    posted(fleet, start, speeds)
    window = {'device': 'edge-1', 'since': '2026-04-07T16:00:00Z',
              'until': '2026-04-07T16:01:00Z'}
    vehicles = requests.get(f'{fleet.url}/counts/vehicles', params=window, timeout=10).json()
    assert [(datetime.fromisoformat(v['passed_at'].replace('Z', '+00:00')), v['direction'],
             v['speed_kmh']) for v in vehicles] == [
        (start, 'away', 97.2), (start, 'towards', 88.0),
        (start + timedelta(seconds=7), 'away', 101.0)]
    table = list(csv.DictReader(io.StringIO(requests.get(
        f'{fleet.url}/counts/vehicles.csv', params=window, timeout=10).text)))
    assert [(r['passed_at_utc'], r['line'], r['class_name'], r['speed_kmh']) for r in table] \
        == [('2026-04-07T16:00:00.00Z', 'bar', 'car', '97.2'),
            ('2026-04-07T16:00:00.00Z', 'bar', 'car', '88.0'),
            ('2026-04-07T16:00:07.00Z', 'bar', 'car', '101.0')]
    assert requests.get(f'{fleet.url}/counts/vehicles', timeout=10,
                        params={**window, 'device': 'nobody'}).status_code == 404


def test_an_older_servers_refusal_of_new_fields_is_told_apart(fleet: Fleet) -> None:
    """The uploader resends without the fields a server refuses as unknown, and only those."""
    body = CountRecord(str(uuid.uuid4()), 'edge-1', 'cam0', utc_iso(DAY + timedelta(hours=18)),
                       60, (('bar', 'away', 'car', 1),)).to_json()
    key = {'X-API-Key': fleet.keys['edge-1']}
    unknown = requests.post(f'{fleet.url}/counts', json={**body, 'lanes': [1]}, headers=key,
                            timeout=10)
    assert unknown.status_code == 422
    assert unknown_fields(as_answer(unknown)) == {'lanes'}
    wrong = requests.post(f'{fleet.url}/counts', headers=key, timeout=10,
                          json={**body, 'speeds': [['bar', 'away', 'car', [[45, 9]]]]})
    assert wrong.status_code == 422 and unknown_fields(as_answer(wrong)) == set()  # bad value


def as_answer(response: requests.Response) -> Answer:
    """Return a requests answer as the uploader's transport reads it."""
    return Answer(response.status_code, dict(response.headers), response.content, True,
                  len(response.content))


@pytest.fixture(params=['sqlite', 'postgresql'])
def fresh_server(request, tmp_path) -> Iterator[Tuple[str, Dict[str, str]]]:
    """Run a server whose read cache asks the data versions on every read (--cache-fresh 0)."""
    storage = str(tmp_path / 'images')
    if request.param == 'sqlite':
        db = f'sqlite:///{tmp_path}/cloud.db'
    else:
        db = request.getfixturevalue('postgres').new_database()
        cloud_cli('migrate', db=db, storage=storage)
    key = add_device('edge-1', db, storage)
    server = CloudServer(db, storage, ['--rate-limit', '0', '--cache-fresh', '0'])
    try:
        yield server.url, {'X-API-Key': key}
    finally:
        server.stop()


def test_speeds_and_quality_agree_on_every_bucket_size_and_show_at_once(
        fresh_server: Tuple[str, Dict[str, str]]) -> None:
    """1-minute buckets (rows), 15-minute and hour buckets (rollups): one direct computation."""
    url, headers = fresh_server
    rng = np.random.default_rng(5)
    start = DAY + timedelta(hours=11, minutes=50)  # 20 minutes over 3 quarters and 2 hours
    periods: List[Tuple[datetime, Dict[Tuple[str, str, str], Dict[int, int]], List[str]]] = []

    def post(at: datetime, bins: Dict[Tuple[str, str, str], Dict[int, int]],
             flags: List[str]) -> None:
        record = CountRecord(
            str(uuid.uuid4()), 'edge-1', 'cam0', utc_iso(at), 60,
            tuple((*key, sum(b.values())) for key, b in sorted(bins.items())),
            speeds=tuple((*key, tuple(sorted(b.items()))) for key, b in sorted(bins.items())),
            scheme='uk6', quality={'flags': flags, 'observed_s': 50.0 if flags else 60.0})
        assert requests.post(f'{url}/api/v1/counts', json=record.to_json(), headers=headers,
                             timeout=10).status_code == 201
        periods.append((at, bins, flags))

    for minute in range(20):
        bins = {key: {int(b): 1 for b in rng.integers(40, 55, int(rng.integers(1, 5)))}
                for key in KEYS}
        post(start + timedelta(minutes=minute), bins,
             ['dark'] if minute == 3 else ['stalled'] if minute == 17 else [])

    def check(size_s: int, bucket: str) -> None:
        window = {'since': utc_iso(start - timedelta(minutes=50)),
                  'until': utc_iso(start + timedelta(minutes=70)), 'bucket': bucket}
        answer = requests.get(f'{url}/api/v1/counts', params=window, timeout=10).json()
        expected_rows, expected_quality = {}, {}
        for at, bins, flags in periods:
            edge = int(at.timestamp()) // size_s * size_s
            moment = datetime.fromtimestamp(edge, timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')
            for key, b in bins.items():
                expected_rows.setdefault((moment, *key), []).append(b)
            seen = expected_quality.setdefault(moment, [set(), 0.0])
            seen[0].update(flags)
            # a period's observed seconds, at most what it covers of its bucket
            seen[1] += min(50.0 if flags else 60.0, 60, size_s - int(at.timestamp()) % size_s)
        rows = {(r['start'], r['line'], r['direction'], r['class_name']): r
                for r in answer['rows']}
        assert set(rows) == set(expected_rows), bucket
        for key, bins in expected_rows.items():
            merged = merge_bins(bins)
            assert rows[key]['speed_n'] == rows[key]['count'] == sum(merged.values())
            assert {k: rows[key][k] for k in speed_summary(merged) if k != 'speed_n'} == {
                k: v for k, v in speed_summary(merged).items() if k != 'speed_n'}, key
        quality = {c['start']: (set(c['flags']), c['observed_seconds'], c['assessed'],
                                c['scheme']) for c in answer['coverage']}
        assert quality == {moment: (flags, min(size_s, round(observed)), True, 'uk6')
                           for moment, (flags, observed) in expected_quality.items()}, bucket

    for size_s, bucket in ((60, '1min'), (900, '15min'), (3600, 'hour')):
        check(size_s, bucket)
    # A new period in a bucket already read (and cached): the next read shows its speeds
    # and its flag.
    post(start + timedelta(minutes=1, seconds=30), {KEYS[0]: {60: 2}}, ['glare'])
    for size_s, bucket in ((60, '1min'), (900, '15min'), (3600, 'hour')):
        check(size_s, bucket)
