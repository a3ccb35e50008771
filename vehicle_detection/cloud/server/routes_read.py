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

"""What the dashboard and operators read: alerts, snapshots, devices, counts."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Dict, List, Optional, Union
import uuid

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

from vehicle_detection.cloud.server.db import Alert, Device
from vehicle_detection.cloud.server.deps import state
from vehicle_detection.cloud.server.engine import from_stored, to_stored, utcnow
from vehicle_detection.cloud.server.models import AlertOut, AlertPage, DeviceOut, Stats
from vehicle_detection.cloud.server.read_params import (
    known_device, replay_choice, replay_condition, ReplayChoice, time_range, TimeRange)
from vehicle_detection.cloud.server.rollups import count_alerts
from vehicle_detection.cloud.server.routes_config import summaries
from vehicle_detection.cloud.server.storage import StorageError, StorageUnavailable
from vehicle_detection.wire import (
    alert_image_path, ALERT_KINDS, ALERTS_PATH, API_PREFIX, DEVICES_PATH, JPEG_CONTENT_TYPE,
    printable_text)

router = APIRouter(tags=['read'])
RANGE_REFUSED: Dict[Union[int, str], Dict[str, Any]] = {
    404: {'description': 'no device of that name'},
    422: {'description': 'a bad query: since not before until, a time without a time zone, '
                         'a bad name, an unknown kind'}}
KIND_TEXT = f'Only alerts of this kind: one of {", ".join(ALERT_KINDS)}.'
EPOCH_UTC = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _check_filters(class_name: Optional[str], kind: Optional[str]) -> None:
    try:
        printable_text(class_name or '')
    except ValueError as error:
        raise HTTPException(422, f'class_name {error}') from None
    if kind and kind not in ALERT_KINDS:
        raise HTTPException(422, f'kind must be one of {", ".join(ALERT_KINDS)}')


def _filtered(query: Select, device: Optional[str], class_name: Optional[str],
              since: Optional[datetime], until: Optional[datetime],
              replay: ReplayChoice, kind: Optional[str] = None) -> Select:
    _check_filters(class_name, kind)
    condition = replay_condition(Alert.replay, replay)
    if condition is not None:
        query = query.where(condition)
    if device:
        query = query.where(Device.name == device)
    if class_name:
        query = query.where(Alert.class_name == class_name)
    if kind:
        query = query.where(Alert.kind == kind)
    if since is not None:
        query = query.where(Alert.detected_at >= to_stored(since))
    if until is not None:
        query = query.where(Alert.detected_at < to_stored(until))
    return query


def _alert_out(alert: Alert, device: str) -> AlertOut:
    image = alert_image_path(alert.event_id) if alert.image_path else None
    return AlertOut(
        id=alert.id, event_id=alert.event_id, device_id=device, camera_id=alert.camera_id,
        detected_at=from_stored(alert.detected_at), received_at=from_stored(alert.received_at),
        track_id=alert.track_id, class_name=alert.class_name, confidence=alert.confidence,
        bbox=list(alert.bbox), image_width=alert.image_width, image_height=alert.image_height,
        image_url=image, thumbnail_url=f'{image}?thumbnail=true' if image else None,
        image_bytes=alert.image_bytes, kind=alert.kind, zone=alert.zone, line=alert.line,
        direction=alert.direction, replay=alert.replay, speed_kmh=alert.speed_kmh)


@router.get(ALERTS_PATH, response_model=AlertPage, responses=RANGE_REFUSED)
def list_alerts(request: Request, device: Optional[str] = Depends(known_device),
                class_name: Optional[str] = None, window: TimeRange = Depends(time_range),
                replay: ReplayChoice = Depends(replay_choice),
                limit: int = Query(50, ge=1, le=500),
                before_id: Optional[int] = Query(None, ge=1, le=2 ** 63 - 1),
                after_id: Optional[int] = Query(None, ge=0, le=2 ** 63 - 1),
                kind: Optional[str] = Query(None, description=KIND_TEXT)) -> AlertPage:
    """
    Return alerts newest first, filtered by device, class, kind and time, page by page.

    Replays (alerts made from recorded images) are left out unless ``replay``
    asks for them. ``after_id`` keeps the alerts newer than one already shown
    (the dashboard asks only for what it lacks); ``next_cursor`` is then set
    when more than ``limit`` are newer.
    """
    query = select(Alert, Device.name).join(Device, Alert.device_id == Device.id)
    query = _filtered(query, device, class_name, window.since, window.until, replay, kind)
    if before_id is not None:
        query = query.where(Alert.id < before_id)
    if after_id is not None:
        query = query.where(Alert.id > after_id)
    query = query.order_by(Alert.id.desc()).limit(limit + 1)
    with Session(state(request).engine) as session:
        rows = session.execute(query).all()
    items = [_alert_out(alert, name) for alert, name in rows[:limit]]
    return AlertPage(items=items, next_cursor=items[-1].id if len(rows) > limit else None)


@router.get(ALERTS_PATH + '/{event_id}', response_model=AlertOut)
def get_alert(event_id: uuid.UUID, request: Request) -> AlertOut:
    """Return one alert by its event id."""
    with Session(state(request).engine) as session:
        row = session.execute(select(Alert, Device.name).join(
            Device, Alert.device_id == Device.id).where(Alert.event_id == str(event_id))).first()
    if row is None:
        raise HTTPException(404, f'no alert {event_id}')
    return _alert_out(*row)


@router.get(ALERTS_PATH + '/{event_id}/image', response_class=Response,
            responses={200: {'content': {JPEG_CONTENT_TYPE: {}}}})
def get_image(event_id: uuid.UUID, request: Request, thumbnail: bool = False) -> Response:
    """Return an alert's snapshot, or its thumbnail."""
    server = state(request)
    with Session(server.engine) as session:
        name = session.execute(select(Alert.image_path).where(
            Alert.event_id == str(event_id))).scalar_one_or_none()
    if not name:
        raise HTTPException(404, f'no snapshot for alert {event_id}')
    try:
        data = server.store.thumbnail(name) if thumbnail else server.store.get(name)
    except StorageUnavailable as error:  # the store does not answer now: not a missing picture
        raise HTTPException(503, str(error), headers={'Retry-After': '30'}) from error
    except StorageError as error:
        raise HTTPException(404, str(error)) from error
    return Response(data, media_type=JPEG_CONTENT_TYPE,
                    headers={'Cache-Control': 'private, max-age=86400, immutable'})


@router.get(DEVICES_PATH, response_model=List[DeviceOut])
def list_devices(request: Request) -> List[DeviceOut]:
    """Return every device with its last health figures and online state."""
    server = state(request)
    now = utcnow()
    with Session(server.engine) as session:  # live traffic, as the dashboard shows
        alerts = count_alerts(session, ('device_id',), now - timedelta(hours=24), None,
                              replay='exclude')
        devices = session.execute(select(Device).order_by(Device.name)).scalars().all()
        configs = summaries(session.connection())
    online_after = timedelta(seconds=server.settings.online_after_s)
    return [DeviceOut(name=device.name, revoked=device.revoked_at is not None,
                      online=(device.last_seen_at is not None and device.revoked_at is None
                              and now - device.last_seen_at <= online_after),
                      last_seen_at=from_stored(device.last_seen_at),
                      alerts_24h=alerts[(device.id,)], health=device.health or {},
                      config=configs.get(device.id))
            for device in devices]


@router.get(API_PREFIX + '/stats', response_model=Stats, responses=RANGE_REFUSED)
def stats(request: Request, device: Optional[str] = Depends(known_device),
          class_name: Optional[str] = None, window: TimeRange = Depends(time_range),
          replay: ReplayChoice = Depends(replay_choice),
          kind: Optional[str] = Query(None, description=KIND_TEXT)) -> Stats:
    """Count alerts per hour, class and kind (without ``since``: the 24 hours to ``until``)."""
    engine = state(request).engine
    since, until = window.since, window.until
    if since is None:
        end = to_stored(until) if until is not None else utcnow()
        try:
            since = (end - timedelta(hours=24)).replace(minute=0, second=0, microsecond=0)
        except OverflowError:  # until in year 1
            since = datetime.min
    _check_filters(class_name, kind)
    with Session(engine) as session:
        counted = count_alerts(session, ('hour', 'class_name', 'kind'), to_stored(since),
                               None if until is None else to_stored(until), device, class_name,
                               kind, replay)
    per_hour: Dict[int, int] = {}
    per_class: Dict[str, int] = {}
    per_kind: Dict[str, int] = dict.fromkeys(ALERT_KINDS, 0)
    for (hour, name, alert_kind), alerts in counted.items():
        per_hour[hour] = per_hour.get(hour, 0) + alerts
        per_class[name] = per_class.get(name, 0) + alerts
        per_kind[alert_kind] = per_kind.get(alert_kind, 0) + alerts
    return Stats(per_hour=[(EPOCH_UTC + timedelta(seconds=hour), per_hour[hour])
                           for hour in sorted(per_hour)],
                 per_class=dict(sorted(per_class.items())), total=sum(per_class.values()),
                 per_kind=per_kind)
