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
Speeds of counted vehicles: stored as 2 km/h bins per period, read as percentiles.

A count record's ``speeds`` are stored one row per line, direction, class
and bin (``count_speed_bins``); a read of counts sums the bins of each
bucket (a 15-minute, hour or day bucket merges its periods' bins, and a row
summed over direction or class merges theirs) and gives p15/p50/p85/p95 and
the mean from them (:mod:`vehicle_detection.wire_speeds`, the edge's own
functions). A record's ``vehicles`` (devices asked to send them) are stored
one row each and exported by ``GET /api/v1/counts/vehicles`` (JSON or CSV).
"""

from __future__ import annotations

import csv
from datetime import datetime, timezone
import io
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import BaseModel
from sqlalchemy import func, insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

from vehicle_detection.cloud.server.db import CountSpeedBin, CountVehicle, Device
from vehicle_detection.cloud.server.deps import state
from vehicle_detection.cloud.server.models_counts import CountBucket, CountsIn
from vehicle_detection.cloud.server.read_params import (
    known_device, replay_choice, replay_condition, ReplayChoice, time_range, TimeRange)
from vehicle_detection.wire import COUNTS_PATH, is_valid_name
from vehicle_detection.wire_speeds import speed_summary

VEHICLES_PATH = f'{COUNTS_PATH}/vehicles'
# The columns every counts row gets (JSON fields of CountBucket, CSV columns in this order).
SPEED_COLUMNS = ('speed_n', 'speed_p15', 'speed_p50', 'speed_p85', 'speed_p95', 'speed_mean')
MAX_BIN_ROWS = 400_000  # summed bins one read of counts may take (a few per row)
MAX_VEHICLE_ROWS = 100_000  # vehicles one export answers at most
BucketKey = Tuple[Any, ...]  # bucket start, device name, line, then the split columns
NO_SPEEDS: Dict[str, Any] = {'speed_n': 0, **dict.fromkeys(SPEED_COLUMNS[1:])}

router = APIRouter(tags=['read'])


def store_speeds(session: Connection, record: CountsIn, record_pk: int, device_pk: int,
                 start: int) -> None:
    """Store a new record's speed bins and vehicles (checked by its model)."""
    bins = [{'record_id': record_pk, 'device_id': device_pk, 'line': line,
             'direction': direction, 'class_name': class_name, 'period_start': start,
             'bin': index, 'count': count, 'replay': record.replay}
            for line, direction, class_name, pairs in record.speeds or ()
            for index, count in pairs]
    if bins:
        session.execute(insert(CountSpeedBin), bins)
    vehicles = [{'record_id': record_pk, 'device_id': device_pk,
                 'camera_id': record.camera_id, 'passed_at': start + offset, 'line': line,
                 'direction': direction, 'class_name': class_name, 'speed_kmh': speed,
                 'replay': record.replay}
                for offset, line, direction, class_name, speed in record.vehicles or ()]
    if vehicles:
        session.execute(insert(CountVehicle), vehicles)


def speed_summaries(session: Connection, size: int, split: Sequence[str],
                    bounded: Callable[[Select, Any, Any], Select], line: Optional[str],
                    replay: ReplayChoice) -> Dict[BucketKey, Dict[str, Any]]:
    """Return the speed columns of each row of a counts read, by its key."""
    bucket_start = (CountSpeedBin.period_start - CountSpeedBin.period_start % size).label('start')
    keys = (Device.name, CountSpeedBin.line, *(getattr(CountSpeedBin, name) for name in split))
    query = bounded(select(bucket_start, *keys, CountSpeedBin.bin, func.sum(CountSpeedBin.count)),
                    CountSpeedBin.period_start, CountSpeedBin.device_id)
    if line:
        query = query.where(CountSpeedBin.line == line)
    condition = replay_condition(CountSpeedBin.replay, replay)
    if condition is not None:
        query = query.where(condition)
    found = session.execute(query.group_by('start', *keys, CountSpeedBin.bin)
                            .limit(MAX_BIN_ROWS + 1)).all()
    if len(found) > MAX_BIN_ROWS:
        raise HTTPException(422, f'the speeds of this read span more than {MAX_BIN_ROWS} bins: '
                                 'ask for a larger bucket, a shorter span, one device or line')
    merged: Dict[BucketKey, Dict[int, int]] = {}
    for row in found:
        key = tuple(row[:-2])
        bins = merged.setdefault(key, {})
        bins[int(row[-2])] = bins.get(int(row[-2]), 0) + int(row[-1])
    summaries = {}
    for key, bins in merged.items():
        summary: Dict[str, Any] = speed_summary(bins)
        summary['speed_n'] = int(summary['speed_n'])
        summaries[key] = {name: summary[name] for name in SPEED_COLUMNS}  # the model's order
    return summaries


def speed_cells(row: CountBucket) -> List[Any]:
    """Return a counts row's speed columns for the CSV ('' where nothing was measured)."""
    return [row.speed_n] + ['' if getattr(row, name) is None else getattr(row, name)
                            for name in SPEED_COLUMNS[1:]]


class VehicleOut(BaseModel):
    """One counted vehicle (``GET /api/v1/counts/vehicles``)."""

    passed_at: datetime
    device_id: str
    camera_id: str
    line: str
    direction: str
    class_name: str
    speed_kmh: Optional[float]


def _vehicles(request: Request, device: Optional[str], line: Optional[str],
              window: TimeRange, replay: ReplayChoice) -> List[VehicleOut]:
    if line is not None and not is_valid_name(line):
        raise HTTPException(422, 'line: letters, digits, "_", "." or "-" only, at most 64')
    query = select(CountVehicle.passed_at, Device.name, CountVehicle.camera_id,
                   CountVehicle.line, CountVehicle.direction, CountVehicle.class_name,
                   CountVehicle.speed_kmh).join(Device, CountVehicle.device_id == Device.id)
    if window.since is not None:
        query = query.where(CountVehicle.passed_at >= window.since.timestamp())
    if window.until is not None:
        query = query.where(CountVehicle.passed_at < window.until.timestamp())
    if device:
        query = query.where(Device.name == device)
    if line:
        query = query.where(CountVehicle.line == line)
    condition = replay_condition(CountVehicle.replay, replay)
    if condition is not None:
        query = query.where(condition)
    with Session(state(request).engine) as session:
        rows = session.execute(query.order_by(CountVehicle.passed_at, CountVehicle.id)
                               .limit(MAX_VEHICLE_ROWS + 1)).all()
    if len(rows) > MAX_VEHICLE_ROWS:
        raise HTTPException(422, f'more than {MAX_VEHICLE_ROWS} vehicles: ask for a shorter '
                                 'span, one device or one line')
    return [VehicleOut(passed_at=datetime.fromtimestamp(r[0], timezone.utc), device_id=r[1],
                       camera_id=r[2], line=r[3], direction=r[4], class_name=r[5],
                       speed_kmh=r[6]) for r in rows]


@router.get(VEHICLES_PATH, response_model=List[VehicleOut],
            responses={404: {'description': 'no device of that name'}})
def get_vehicles(request: Request, device: Optional[str] = Depends(known_device),
                 line: Optional[str] = None, window: TimeRange = Depends(time_range),
                 replay: ReplayChoice = Depends(replay_choice)) -> List[VehicleOut]:
    """
    Return each counted vehicle (time, line, direction, class, km/h), oldest first.

    Only devices with ``count_vehicles`` set send them; speeds are null where
    the camera is not calibrated or the vehicle could not be measured.
    """
    return _vehicles(request, device, line, window, replay)


@router.get(VEHICLES_PATH + '.csv', response_class=Response,
            responses={200: {'content': {'text/csv': {}}},
                       404: {'description': 'no device of that name'}})
def get_vehicles_csv(request: Request, device: Optional[str] = Depends(known_device),
                     line: Optional[str] = None, window: TimeRange = Depends(time_range),
                     replay: ReplayChoice = Depends(replay_choice)) -> Response:
    """Return the same vehicles as CSV (UTC times, to the hundredth of a second)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator='\n')
    writer.writerow(['passed_at_utc', 'device_id', 'camera_id', 'line', 'direction',
                     'class_name', 'speed_kmh'])
    for vehicle in _vehicles(request, device, line, window, replay):
        class_name = vehicle.class_name
        if class_name[:1] in ('=', '+', '-', '@'):  # a spreadsheet would run it
            class_name = "'" + class_name
        writer.writerow([vehicle.passed_at.strftime('%Y-%m-%dT%H:%M:%S.%f')[:-4] + 'Z',
                         vehicle.device_id, vehicle.camera_id, vehicle.line,
                         vehicle.direction, class_name,
                         '' if vehicle.speed_kmh is None else vehicle.speed_kmh])
    return Response(out.getvalue(), media_type='text/csv; charset=utf-8', headers={
        'Content-Disposition': 'attachment; filename="vehicles.csv"'})
