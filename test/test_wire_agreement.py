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
Edge and server agree by construction: the same bad bodies, refused by both.

Each body below breaks the wire contract in one way. ``wire.Alert`` /
``wire.CountRecord`` (what the edge checks before it queues anything) must
refuse it, and so must the real server (SQLite and PostgreSQL); the good
bodies, one of each alert kind, pass both and are stored with their places.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Dict, List
import uuid

from cloud_helpers import alert_body
import pytest
import requests

from vehicle_detection.wire import (
    Alert, ALERT_KINDS, CountRecord, MAX_CLASS_NAME_LENGTH, MAX_COUNT, MAX_COUNT_ROWS,
    MAX_IMAGE_SIDE, MAX_PERIOD_S, MAX_TRACK_ID, utc_iso)

NOW = datetime.now(timezone.utc)
PLACES = {'vehicle': {}, 'stopped_vehicle': {'zone': 'shoulder'},
          'wrong_way': {'line': 'north', 'direction': 'towards'}}


def alert(**changes: Any) -> Dict[str, Any]:
    body = alert_body('edge-1')
    body.update(changes)
    return {k: v for k, v in body.items() if v is not ...}  # ...: leave the field out


BAD_ALERTS: List[Dict[str, Any]] = [
    alert(event_id='not-a-uuid'), alert(event_id=...), alert(device_id='edge 1'),
    alert(camera_id='../cam'), alert(camera_id='x' * 65), alert(device_id=5),
    alert(detected_at='yesterday'), alert(detected_at='2026-01-01T10:00:00'),  # no zone
    alert(detected_at=utc_iso(NOW + timedelta(hours=1))), alert(detected_at='1999-12-31T23:00Z'),
    alert(detected_at=1_700_000_000), alert(track_id=-2), alert(track_id=MAX_TRACK_ID + 1),
    alert(track_id='7'), alert(track_id=True), alert(track_id=7.5),
    alert(class_name=''), alert(class_name='c' * (MAX_CLASS_NAME_LENGTH + 1)),
    alert(class_name='car\x00'), alert(class_name=3),
    alert(confidence=1.5), alert(confidence=-0.1), alert(confidence='high'),
    alert(confidence=True), alert(bbox=[10.0, 20.0, 5.0, 90.0]),
    alert(bbox=[10.0, 90.0, 110.0, 20.0]), alert(bbox=[1.0, 2.0, 3.0]),
    alert(bbox=[1.0, 2.0, 3.0, '4']), alert(bbox='0 0 1 1'),
    alert(image_width=0), alert(image_height=MAX_IMAGE_SIDE + 1), alert(image_width=1280.5),
    alert(image_sha256='ABC'), alert(image_sha256='f' * 63),
    alert(kind='parked'), alert(kind='stopped_vehicle'), alert(zone='shoulder'),
    alert(kind='wrong_way', line='north'), alert(kind='wrong_way', direction='towards'),
    alert(kind='wrong_way', line='north', direction='towards', zone='shoulder'),
    alert(kind='stopped_vehicle', zone='../etc'), alert(kind='stopped_vehicle', zone=''),
    alert(line='north', direction='towards'), alert(colour='red'),
]


def counts(**changes: Any) -> Dict[str, Any]:
    body = {'record_id': str(uuid.uuid4()), 'device_id': 'edge-1', 'camera_id': 'cam0',
            'period_start': utc_iso(NOW.replace(second=0, microsecond=0)), 'period_s': 60,
            'counts': [{'line': 'north', 'direction': 'away', 'class_name': 'car',
                        'count': 3}]}
    body.update(changes)
    return {k: v for k, v in body.items() if v is not ...}


def row(**changes: Any) -> Dict[str, Any]:
    return {'line': 'north', 'direction': 'away', 'class_name': 'car', 'count': 3, **changes}


BAD_COUNTS: List[Dict[str, Any]] = [
    counts(record_id='x'), counts(device_id='..'), counts(camera_id=...),
    counts(period_start='soon'), counts(period_start=utc_iso(NOW + timedelta(hours=2))),
    counts(period_s=0), counts(period_s=MAX_PERIOD_S + 1), counts(period_s='60'),
    counts(counts=[row(count=-1)]), counts(counts=[row(count=MAX_COUNT + 1)]),
    counts(counts=[row(count=2.5)]), counts(counts=[row(line='a b')]),
    counts(counts=[row(direction='..')]), counts(counts=[row(class_name='')]),
    counts(counts=[row(class_name='c' * (MAX_CLASS_NAME_LENGTH + 1))]),
    counts(counts=[row(), row()]), counts(counts=[row(speed=80)]),
    counts(counts=[row(line=f'l{i}') for i in range(MAX_COUNT_ROWS + 1)]),
    counts(counts='none'), counts(extra=1),
]


def changed(body: Dict[str, Any]) -> Dict[str, Any]:
    """Return what a bad body changed of a good one (for the failure message)."""
    good = alert() if 'event_id' in body or 'track_id' in body else counts()
    return {k: body.get(k, '(left out)') for k in set(body) | set(good)
            if k not in ('event_id', 'record_id') and body.get(k, ...) != good.get(k, ...)}


def test_the_edge_refuses_every_bad_body() -> None:
    for body in BAD_ALERTS:
        with pytest.raises(ValueError):
            Alert.from_json(body)
    for body in BAD_COUNTS:
        with pytest.raises(ValueError):
            CountRecord.from_json(body)
    for kind in ALERT_KINDS:  # and takes a good one of every kind, as it sends it
        good = alert(kind=kind, **PLACES[kind])
        assert Alert.from_json(good).to_json() == {**good, 'confidence': 0.91}
    good_counts = counts()
    assert CountRecord.from_json(good_counts).to_json() == good_counts


def test_the_server_refuses_the_same_bodies_and_stores_every_kind(fleet) -> None:
    key = {'X-API-Key': fleet.keys['edge-1']}
    for body in BAD_ALERTS:
        answer = requests.post(f'{fleet.url}/alerts', json=body, headers=key, timeout=10)
        assert answer.status_code == 422, (changed(body), answer.status_code, answer.text)
    for body in BAD_COUNTS:
        answer = requests.post(f'{fleet.url}/counts', json=body, headers=key, timeout=10)
        assert answer.status_code == 422, (changed(body), answer.status_code, answer.text)
    for kind in ALERT_KINDS:
        good = alert(kind=kind, **PLACES[kind])
        assert fleet.post(good).status_code == 201
        stored = requests.get(f'{fleet.url}/alerts/{good["event_id"]}', timeout=10).json()
        assert {k: stored[k] for k in ('kind', 'zone', 'line', 'direction')} == {
            'kind': kind, 'zone': None, 'line': None, 'direction': None, **PLACES[kind]}
    listed = requests.get(f'{fleet.url}/alerts', params={'kind': 'wrong_way'}, timeout=10)
    assert {a['kind'] for a in listed.json()['items']} == {'wrong_way'}
    assert requests.get(f'{fleet.url}/alerts', params={'kind': 'parked'},
                        timeout=10).status_code == 422
    stats = requests.get(f'{fleet.url}/stats', timeout=10).json()
    assert set(stats['per_kind']) == set(ALERT_KINDS) and stats['per_kind']['wrong_way'] >= 1
    assert requests.post(f'{fleet.url}/counts', json=counts(), headers=key,
                         timeout=10).status_code == 201
