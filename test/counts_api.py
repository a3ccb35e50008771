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

"""Count records and reads of the real server's counts API: shared by the traffic counts tests."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Dict, Sequence, Tuple
import uuid

from cloud_helpers import Fleet
import requests

from vehicle_detection.wire import COUNT_ROW_FIELDS, CountRecord, utc_iso

# A fixed day well in the past: other tests' counts (now) never fall into it.
DAY = datetime(2026, 3, 2, tzinfo=timezone.utc)


def record(start: datetime, rows: Tuple[Tuple[str, str, str, int], ...],
           device: str = 'edge-1', period_s: int = 60) -> dict:
    return CountRecord(str(uuid.uuid4()), device, 'cam0', utc_iso(start), period_s,
                       rows).to_json()


def post(fleet: Fleet, body: dict, device: str = 'edge-1') -> requests.Response:
    return requests.post(f'{fleet.url}/counts', json=body, timeout=10,
                         headers={'X-API-Key': fleet.keys[device]})


def every_key(lines: int, classes: int, directions: Sequence[str] = ('away', 'towards')
              ) -> Tuple[Tuple[str, str, str, int], ...]:
    """Return one vehicle for each of ``lines`` x ``directions`` x ``classes``."""
    return tuple((f'line{n}', direction, f'class{c}', 1) for n in range(lines)
                 for direction in directions for c in range(classes))


def raw_record(start: datetime, rows: Sequence[Tuple[str, str, str, int]], **changes) -> dict:
    """Return a record body as a client may send it: not checked by the wire contract."""
    body = {**record(start, ()), **changes}
    body['counts'] = [dict(zip(COUNT_ROW_FIELDS, row)) for row in rows]
    return body


def counts(fleet: Fleet, start: datetime, end: datetime, **params: str) -> requests.Response:
    return requests.get(f'{fleet.url}/counts', timeout=30, params={
        'device': 'edge-1', 'from': utc_iso(start), 'to': utc_iso(end), **params})


def totals(answer: dict) -> Dict[Tuple[str, str, str], int]:
    found: Dict[Tuple[str, str, str], int] = {}
    for row in answer['rows']:
        key = (row['start'][11:16], row['line'], row['direction'])
        found[key] = found.get(key, 0) + row['count']
    return found
