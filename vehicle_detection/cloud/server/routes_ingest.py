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

"""What devices post: alerts (idempotent), snapshots and heartbeats."""

from __future__ import annotations

import hashlib
import logging
from typing import Optional, Union
import uuid

from fastapi import APIRouter, Depends, Header, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Row
from sqlalchemy.orm import Session

from vehicle_detection.cloud.server.db import Alert, Device
from vehicle_detection.cloud.server.deps import (
    authenticated, Caller, ServerState, state)
from vehicle_detection.cloud.server.engine import from_stored, to_stored, utcnow, writing
from vehicle_detection.cloud.server.models import (
    AlertCreated, AlertIn, HeartbeatIn, ImageStored)
from vehicle_detection.cloud.server.rollups import add_alert
from vehicle_detection.cloud.server.routes_config import latest_version
from vehicle_detection.cloud.server.storage import (
    check_jpeg, ImageStore, SnapshotConflict, StorageError, StorageFull)
from vehicle_detection.wire import (
    ALERTS_PATH, DEVICES_PATH, IDEMPOTENCY_HEADER, JPEG_CONTENT_TYPE, snapshot_name)
from vehicle_detection.wire_config import HEARTBEAT_CONFIG_FIELD

router = APIRouter(tags=['ingest'])
STORE_RETRY_AFTER = '30'  # seconds an edge waits before it retries a snapshot the store refused
log = logging.getLogger('vehicle_detection.cloud.storage')
Executes = Union[Session, Connection]  # what runs a statement: an ORM session or a connection


@router.post(ALERTS_PATH, response_model=AlertCreated, status_code=201,
             responses={200: {'model': AlertCreated, 'description': 'already stored'}})
def post_alert(alert: AlertIn, request: Request, response: Response,
               caller: Caller = Depends(authenticated),
               idempotency_key: Optional[str] = Header(None, alias=IDEMPOTENCY_HEADER)
               ) -> AlertCreated:
    """
    Store an alert once: the same event id again answers 200 with the same id.

    The alert is filed under the device of the key, whatever ``device_id`` the
    body gives (a device renamed in its configuration keeps working); the
    answer names that device.
    """
    if idempotency_key is not None and idempotency_key != str(alert.event_id):
        raise HTTPException(422, f'{IDEMPOTENCY_HEADER} must equal the event_id')
    engine = state(request).engine
    detected_at = to_stored(alert.detected_at)
    values = {'event_id': str(alert.event_id), 'device_id': caller.device_pk,
              'camera_id': alert.camera_id, 'detected_at': detected_at,
              'received_at': utcnow(), 'track_id': alert.track_id,
              'class_name': alert.class_name, 'confidence': alert.confidence,
              'bbox': list(alert.bbox), 'image_width': alert.image_width,
              'image_height': alert.image_height, 'kind': alert.kind, 'zone': alert.zone,
              'line': alert.line, 'direction': alert.direction, 'replay': alert.replay,
              'speed_kmh': alert.speed_kmh}
    dialect = postgresql if engine.dialect.name == 'postgresql' else sqlite
    # Concurrent retries of one event race here: the unique event_id decides, the
    # loser reads the winner's row.
    statement = (dialect.insert(Alert).values(**values)
                 .on_conflict_do_nothing(index_elements=['event_id']).returning(Alert.id))
    with writing(engine) as session:
        inserted = session.execute(statement).first()
        if inserted is not None:  # in the same transaction: the rollup holds what is stored
            add_alert(session, caller.device_pk, detected_at, alert.class_name, alert.kind,
                      alert.replay)
        else:
            existing = session.execute(select(Alert.id, Alert.device_id).where(
                Alert.event_id == str(alert.event_id))).one()
            if existing.device_id != caller.device_pk:
                raise HTTPException(409, 'this event id belongs to another device')
            response.status_code = 200
        alert_id = existing.id if inserted is None else inserted.id
        stored = alert.image_sha256 is not None and _link_stored_image(
            session, alert_id, caller.device_pk, alert.image_sha256)
    return AlertCreated(id=alert_id, event_id=alert.event_id, created=inserted is not None,
                        image_stored=stored, device_id=caller.name)


def _link_stored_image(session: Executes, alert_id: int, device_pk: int, digest: str) -> bool:
    """
    Give alert ``alert_id`` the device's stored snapshot with SHA-256 ``digest``, if any.

    Alerts of one frame carry the same picture: it is uploaded and stored once,
    and later alerts point at that file (its dated path stays the first
    alert's). True when the alert has its snapshot now (linked or its own).
    """
    row = session.execute(select(Alert.image_sha256).where(Alert.id == alert_id)).one()
    if row.image_sha256 is not None:
        return True
    shared = _stored_image(session, device_pk, digest)
    if shared is None:
        return False
    session.execute(update(Alert).where(Alert.id == alert_id).values(
        image_path=shared.image_path, image_bytes=shared.image_bytes, image_sha256=digest))
    return True


def _stored_image(session: Executes, device_pk: int, digest: str) -> Optional[Row]:
    """Return (image_path, image_bytes) of a snapshot of this device with ``digest``."""
    return session.execute(select(Alert.image_path, Alert.image_bytes).where(
        Alert.device_id == device_pk, Alert.image_sha256 == digest,
        Alert.image_path.is_not(None)).limit(1)).first()


@router.put(ALERTS_PATH + '/{event_id}/image', response_model=ImageStored, status_code=201,
            responses={200: {'model': ImageStored, 'description': 'same bytes already stored'},
                       409: {'description': 'another snapshot is stored for this event'},
                       413: {'description': 'body too large'},
                       415: {'description': 'not a decodable JPEG'}},
            openapi_extra={'requestBody': {'required': True, 'content': {
                JPEG_CONTENT_TYPE: {'schema': {'type': 'string', 'format': 'binary'}}}}})
async def put_image(event_id: uuid.UUID, request: Request, response: Response,
                    caller: Caller = Depends(authenticated)) -> ImageStored:
    """Store the snapshot of an alert under a name the server makes."""
    content_type = request.headers.get('content-type', '').split(';')[0].strip().lower()
    if content_type != JPEG_CONTENT_TYPE:
        raise HTTPException(415, f'Content-Type must be {JPEG_CONTENT_TYPE}, '
                                 f'not {content_type or "missing"}')
    data = await request.body()  # the size was checked as it streamed in (BodyLimit)
    stored = await run_in_threadpool(_store_image, request, str(event_id), caller, data)
    if not stored.created:
        response.status_code = 200
    return stored


def _store_image(request: Request, event_id: str, caller: Caller, data: bytes) -> ImageStored:
    server = state(request)
    digest = hashlib.sha256(data).hexdigest()
    with Session(server.engine) as session:
        alert = session.execute(select(Alert).where(
            Alert.event_id == event_id, Alert.device_id == caller.device_pk)).scalar_one_or_none()
        if alert is None:
            raise HTTPException(404, f'no alert {event_id} from device {caller.name}: '
                                     f'post the alert first')
        if alert.image_sha256 is not None:
            return _already_stored(event_id, alert.image_sha256, alert.image_path, digest, data)
        shared = _stored_image(session, caller.device_pk, digest)
        name = snapshot_name(from_stored(alert.detected_at), alert.camera_id, event_id)
    if shared is not None:  # the same picture as another alert's (one frame): no copy
        return _record_image(server, event_id, shared.image_path, shared.image_bytes, digest,
                             data, written=False)
    try:
        check_jpeg(data, server.settings.max_image_pixels)
    except ValueError as error:
        raise HTTPException(415, str(error)) from error
    try:
        written = server.store.put(name, data)
    except SnapshotConflict as error:
        raise HTTPException(409, str(error)) from error
    except StorageFull as error:
        raise HTTPException(507, str(error)) from error
    except StorageError as error:  # unreachable or refusing: the alert row stays, try later
        raise HTTPException(503, str(error), headers={'Retry-After': STORE_RETRY_AFTER}
                            ) from error
    return _record_image(server, event_id, name, len(data), digest, data, written)


def _record_image(server: ServerState, event_id: str, path: str, size: int, digest: str,
                  data: bytes, written: bool) -> ImageStored:
    """
    Point the alert at its stored snapshot, unless a concurrent upload did first.

    Uploads of one event race: the file is written once (the store decides),
    and the row is only set while it has no snapshot, so the row and the
    file always agree. The loser answers 200 (same bytes) or 409.
    """
    try:
        with writing(server.engine) as session:
            claimed = session.execute(update(Alert).where(
                Alert.event_id == event_id, Alert.image_sha256.is_(None)).values(
                image_path=path, image_bytes=size, image_sha256=digest)).rowcount
            if not claimed:
                row = session.execute(select(Alert.image_sha256, Alert.image_path).where(
                    Alert.event_id == event_id)).one()
    except Exception:
        if written:
            _undo(server.store, path)  # nothing partial: no file without its row
        raise
    if not claimed:
        # The winner may be an upload of the same bytes that found this very file in
        # place (it wrote nothing): its row names the file, which then stays.
        if written and row.image_path != path:
            _undo(server.store, path)
        return _already_stored(event_id, row.image_sha256, row.image_path, digest, data)
    return ImageStored(event_id=event_id, path=path, bytes=len(data), created=True)


def _undo(store: ImageStore, path: str) -> None:
    """Remove a snapshot no row names; if the store refuses, retention removes it later."""
    try:
        store.delete(path)
    except StorageError as error:
        log.warning('snapshot %s without its row left in the store: %s', path, error)


def _already_stored(event_id: str, stored_digest: str, path: Optional[str], digest: str,
                    data: bytes) -> ImageStored:
    if stored_digest != digest:
        raise HTTPException(409, 'a different snapshot is already stored for this event')
    return ImageStored(event_id=event_id, path=path or '', bytes=len(data), created=False)


@router.post(DEVICES_PATH + '/{device_id}/heartbeat')
def post_heartbeat(device_id: str, heartbeat: HeartbeatIn, request: Request,
                   caller: Caller = Depends(authenticated)) -> dict:
    """
    Record the health figures of the key's device (named in the path) and mark it online.

    The answer names the device's latest configuration version (``config_version``,
    null when none; see :mod:`vehicle_detection.wire_config`).
    """
    now = utcnow()
    with writing(state(request).engine) as session:
        session.execute(update(Device).where(Device.id == caller.device_pk).values(
            last_seen_at=now, health=heartbeat.model_dump(exclude_none=True)))
        config_version = latest_version(session, caller.device_pk)
    # The latest configuration version: the device fetches it only when it changed.
    return {'status': 'ok', 'server_time': now.isoformat() + 'Z', 'device_id': caller.name,
            HEARTBEAT_CONFIG_FIELD: config_version}
