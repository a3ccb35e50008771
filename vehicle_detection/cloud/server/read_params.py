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
What every read route takes alike: the time range, the device, and replays.

One name pair for the time range (``since``, ``until``; ``from`` and ``to``,
the old names of ``GET /counts``, still accepted everywhere), one refusal
for an empty or backward range (422, one message), 404 naming an unknown
device, and replays left out unless asked for. FastAPI dependencies, so
each route gets the same parameters, checks and OpenAPI text.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Optional

from fastapi import HTTPException, Query, Request
from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from vehicle_detection.cloud.server.db import Device
from vehicle_detection.cloud.server.deps import state
from vehicle_detection.wire import is_valid_name

ReplayChoice = Literal['exclude', 'include', 'only']
TIME_EXAMPLE = '2026-11-24T08:00:00Z'


@dataclass(frozen=True)
class TimeRange:
    """A checked time range: aware times, ``since`` before ``until``; either may be open."""

    since: Optional[datetime]
    until: Optional[datetime]


def time_range(
        since: Optional[datetime] = Query(
            None, description=f'Start of the range (included): ISO 8601 with a time zone, '
                              f'e.g. {TIME_EXAMPLE}. Old name: from.'),
        until: Optional[datetime] = Query(
            None, description='End of the range (excluded), with a time zone; must come '
                              'after since. Old name: to.'),
        old_from: Optional[datetime] = Query(
            None, alias='from', deprecated=True,
            description='Old name of since (GET /counts used it); still accepted.'),
        old_to: Optional[datetime] = Query(
            None, alias='to', deprecated=True,
            description='Old name of until; still accepted.')) -> TimeRange:
    """Return the range the query asks for; 422 when it is malformed, empty or backward."""
    start = _one_of('since', since, 'from', old_from)
    end = _one_of('until', until, 'to', old_to)
    for name, value in (('since', start), ('until', end)):
        if value is not None and value.tzinfo is None:
            raise HTTPException(422, f'{name} needs a time zone, e.g. {TIME_EXAMPLE} '
                                     f'(got {value.isoformat()})')
    if start is not None and end is not None and end <= start:
        raise HTTPException(422, f'since must come before until (since {_show(start)}, '
                                 f'until {_show(end)})')
    return TimeRange(start, end)


def _one_of(name: str, value: Optional[datetime], old_name: str,
            old_value: Optional[datetime]) -> Optional[datetime]:
    """Return the value given under the name or its old name; 422 for two different ones."""
    if value is not None and old_value is not None and value != old_value:
        raise HTTPException(422, f'{name} and {old_name} (its old name) give two different '
                                 f'times: give {name} only')
    return value if value is not None else old_value


def _show(moment: datetime) -> str:
    return moment.isoformat().replace('+00:00', 'Z')


def known_device(request: Request, device: Optional[str] = Query(
        None, description='Only this device; 404 when no device has this name.')
        ) -> Optional[str]:
    """Return the device filter (None: every device); 422: a bad name, 404: no such device."""
    if not device:
        return None
    if not is_valid_name(device):
        raise HTTPException(422, 'device: letters, digits, "_", "." or "-" only, at most 64')
    with Session(state(request).engine) as session:
        found = session.execute(select(Device.id).where(Device.name == device)).first()
    if found is None:
        raise HTTPException(404, f'no device named {device!r} (the devices are listed by '
                                 'GET /api/v1/devices)')
    return device


def replay_choice(replay: ReplayChoice = Query(
        'exclude', description='Events made from recorded images (replays of a bag): '
                               'exclude (the default: live traffic only), include (live and '
                               'replays) or only (replays only).')) -> ReplayChoice:
    """Return which events the query wants: live ones, replays, or both."""
    return replay


def replay_condition(column: Any, choice: ReplayChoice) -> Optional[ColumnElement[bool]]:
    """Return the WHERE clause on a ``replay`` column for ``choice`` (None: no condition)."""
    if choice == 'include':
        return None
    return column == (choice == 'only')
