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

"""What an admin manages over HTTP: users, devices and their keys, sessions."""

from __future__ import annotations

from datetime import datetime
import logging
from typing import Any, List, Optional

from fastapi import APIRouter, Depends, HTTPException, Path, Request, Response
from pydantic import BaseModel
from sqlalchemy import delete, select, update
from sqlalchemy.engine import Row

from vehicle_detection.cloud.server.db import Device, Operator, OperatorSession
from vehicle_detection.cloud.server.deps import admin, KEY_CACHE_S, state
from vehicle_detection.cloud.server.engine import from_stored, utcnow, writing
from vehicle_detection.cloud.server.operators import end_sessions, live_sessions, Reader
from vehicle_detection.wire import API_PREFIX, is_valid_name

ADMIN_PREFIX = f'{API_PREFIX}/admin'
SESSION_ID_CHARS = 16  # a session is named by the start of its cookie's SHA-256
log = logging.getLogger('vehicle_detection.cloud.auth')
router = APIRouter(prefix=ADMIN_PREFIX, tags=['admin'],
                   responses={401: {'description': 'not logged in'},
                              403: {'description': 'not an admin (viewers and read tokens)'}})


class UserOut(BaseModel):
    """An operator and how many live sessions they have."""

    name: str
    role: str
    created_at: datetime
    sessions: int


class DeviceKeyOut(BaseModel):
    """A device and the state of its API key."""

    name: str
    key: str  # active or revoked
    created_at: datetime
    revoked_at: Optional[datetime]
    last_seen_at: Optional[datetime]


class SessionInfo(BaseModel):
    """A live login (never its cookie)."""

    id: str  # noqa: A003 (wire name)
    user: str
    created_at: datetime
    expires_at: datetime


class Ended(BaseModel):
    """How many sessions were ended."""

    ended: int


def _checked(kind: str, name: str) -> str:
    if not is_valid_name(name):
        raise HTTPException(422, f'{kind} name must be 1-64 letters, digits, "_", "." or "-"')
    return name


def _device_out(device: Row[Any]) -> DeviceKeyOut:
    return DeviceKeyOut(name=device.name, key='revoked' if device.revoked_at else 'active',
                        created_at=from_stored(device.created_at),
                        revoked_at=from_stored(device.revoked_at),
                        last_seen_at=from_stored(device.last_seen_at))


@router.get('/users', response_model=List[UserOut])
def list_users(request: Request, _: Reader = Depends(admin)) -> List[UserOut]:
    """Return every operator: name, role, created, live sessions."""
    with state(request).engine.connect() as connection:
        users = connection.execute(select(Operator).order_by(Operator.name)).all()
        sessions = live_sessions(connection)
    return [UserOut(name=user.name, role=user.role, created_at=from_stored(user.created_at),
                    sessions=sessions.get(user.id, 0)) for user in users]


@router.get('/devices', response_model=List[DeviceKeyOut])
def list_devices(request: Request, _: Reader = Depends(admin)) -> List[DeviceKeyOut]:
    """Return every device with the state of its key."""
    with state(request).engine.connect() as connection:
        devices = connection.execute(select(Device).order_by(Device.name)).all()
    return [_device_out(device) for device in devices]


@router.post('/devices/{name}/revoke', response_model=DeviceKeyOut,
             responses={404: {'description': 'no such device'}})
def revoke_device(request: Request, name: str, who: Reader = Depends(admin)) -> DeviceKeyOut:
    """Revoke a device's key (its alerts stay); every worker refuses it within seconds."""
    _checked('device', name)
    with writing(state(request).engine) as connection:
        device = connection.execute(select(Device).where(Device.name == name)).first()
        if device is None:
            raise HTTPException(404, f'no device {name}')
        if device.revoked_at is None:
            connection.execute(update(Device).where(Device.id == device.id)
                               .values(revoked_at=utcnow()))
            log.warning('admin %s revoked the key of device %s (refused everywhere within '
                        '%g s)', who.name, name, KEY_CACHE_S)
        device = connection.execute(select(Device).where(Device.id == device.id)).one()
    return _device_out(device)


@router.get('/sessions', response_model=List[SessionInfo])
def list_sessions(request: Request, _: Reader = Depends(admin)) -> List[SessionInfo]:
    """Return the live sessions, newest first."""
    with state(request).engine.connect() as connection:
        rows = connection.execute(
            select(OperatorSession, Operator.name).join(
                Operator, Operator.id == OperatorSession.operator_id)
            .where(OperatorSession.expires_at > utcnow())
            .order_by(OperatorSession.created_at.desc())).all()
    return [SessionInfo(id=row.token_hash[:SESSION_ID_CHARS], user=row.name,
                        created_at=from_stored(row.created_at),
                        expires_at=from_stored(row.expires_at)) for row in rows]


@router.delete('/sessions/{session_id}', status_code=204,
               responses={404: {'description': 'no such session'}})
def end_session(request: Request, who: Reader = Depends(admin),
                session_id: str = Path(pattern=f'^[0-9a-f]{{{SESSION_ID_CHARS}}}$')
                ) -> Response:
    """End one session (its cookie stops working at once)."""
    with writing(state(request).engine) as connection:
        ended = connection.execute(delete(OperatorSession).where(
            OperatorSession.token_hash.startswith(session_id))).rowcount
    if not ended:
        raise HTTPException(404, f'no session {session_id}')
    log.warning('admin %s ended session %s', who.name, session_id)
    return Response(status_code=204)


@router.delete('/users/{name}/sessions', response_model=Ended,
               responses={404: {'description': 'no such user'}})
def end_user_sessions(request: Request, name: str, who: Reader = Depends(admin)) -> Ended:
    """End every session of a user (logged out everywhere)."""
    _checked('user', name)
    with writing(state(request).engine) as connection:
        user = connection.execute(select(Operator.id).where(Operator.name == name)).first()
        if user is None:
            raise HTTPException(404, f'no user {name}')
        ended = end_sessions(connection, user.id)
    log.warning('admin %s ended the %d session(s) of %s', who.name, ended, name)
    return Ended(ended=ended)
