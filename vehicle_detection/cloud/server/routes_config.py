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
Configuration pushed from the dashboard: admins save versions, devices fetch and report.

Each save is a new version of the device's desired configuration (1, 2, ...),
kept with the admin who saved it; the server checks the document's shape only
(:func:`wire_config.parameters_problem`), the edge its values. The answer to a
heartbeat names the latest version (:func:`latest_versions`), so an edge
fetches a configuration only when it changed.
"""

from __future__ import annotations

from datetime import datetime
import logging
from typing import Any, Dict, List, Optional

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from vehicle_detection.cloud.server.db import Device, DeviceConfig
from vehicle_detection.cloud.server.deps import admin, authenticated, Caller, state
from vehicle_detection.cloud.server.engine import from_stored, utcnow, writing
from vehicle_detection.cloud.server.models import ConfigSummary
from vehicle_detection.cloud.server.operators import Reader
from vehicle_detection.cloud.server.routes_admin import ADMIN_PREFIX
from vehicle_detection.wire import is_valid_name
from vehicle_detection.wire_config import (
    config_report_path, device_config_path, MAX_CONFIG_VERSION, MAX_REASON,
    parameters_problem, PENDING, REPORTED_STATES)

log = logging.getLogger('vehicle_detection.cloud.config')
device_router = APIRouter(tags=['configuration'])
admin_router = APIRouter(prefix=ADMIN_PREFIX, tags=['configuration'],
                         responses={401: {'description': 'not logged in'},
                                    403: {'description': 'not an admin'},
                                    404: {'description': 'no such device'}})


class ConfigIn(BaseModel):
    """A new version of a device's configuration, as an admin saves it."""

    model_config = ConfigDict(extra='forbid')

    parameters: Dict[str, Any]
    # The version the admin edited: refused (409) if another was saved since, so that
    # two admins editing one device never overwrite each other unknowingly.
    base_version: Optional[int] = Field(None, ge=0, le=MAX_CONFIG_VERSION)

    @field_validator('parameters')
    @classmethod
    def _shape(cls, parameters: Dict[str, Any]) -> Dict[str, Any]:
        reason = parameters_problem(parameters)
        if reason:
            raise ValueError(reason)
        return parameters


class ConfigVersion(BaseModel):
    """One stored version: what it sets, who saved it, what the device did with it."""

    version: int
    parameters: Dict[str, Any]
    created_at: datetime
    created_by: str
    state: str  # pending, applied or refused
    reason: Optional[str]
    reported_at: Optional[datetime]


class DeviceConfigOut(BaseModel):
    """What a device fetches: the latest version and its parameters."""

    version: int
    parameters: Dict[str, Any]


class ConfigReport(BaseModel):
    """A device's answer to a version: applied, or refused with the reason."""

    model_config = ConfigDict(extra='forbid')

    version: int = Field(ge=1, le=MAX_CONFIG_VERSION)
    state: str = Field(pattern='^(' + '|'.join(REPORTED_STATES) + ')$')
    reason: str = Field('', max_length=MAX_REASON)


def _version_out(row: Any) -> ConfigVersion:
    return ConfigVersion(version=row.version, parameters=row.parameters,
                         created_at=from_stored(row.created_at), created_by=row.created_by,
                         state=row.state, reason=row.reason,
                         reported_at=from_stored(row.reported_at))


def _device_pk(connection: Connection, name: str) -> int:
    if not is_valid_name(name):
        raise HTTPException(422, 'device name must be 1-64 letters, digits, "_", "." or "-"')
    row = connection.execute(select(Device.id).where(Device.name == name)).first()
    if row is None:
        raise HTTPException(404, f'no device {name}')
    return int(row.id)


def latest_version(connection: Connection, device_pk: int) -> Optional[int]:
    """Return the device's latest configuration version, None when it has none."""
    return connection.execute(select(func.max(DeviceConfig.version)).where(
        DeviceConfig.device_id == device_pk)).scalar()


def summaries(connection: Connection) -> Dict[int, ConfigSummary]:
    """Return each configured device's :class:`ConfigSummary`, by device key."""
    latest = (select(DeviceConfig.device_id, func.max(DeviceConfig.version).label('v'))
              .group_by(DeviceConfig.device_id).subquery())
    applied = (select(DeviceConfig.device_id, func.max(DeviceConfig.version).label('v'))
               .where(DeviceConfig.state == 'applied')
               .group_by(DeviceConfig.device_id).subquery())
    rows = connection.execute(
        select(DeviceConfig.device_id, DeviceConfig.version, DeviceConfig.state,
               DeviceConfig.reason, applied.c.v.label('applied'))
        .join(latest, (latest.c.device_id == DeviceConfig.device_id)
              & (latest.c.v == DeviceConfig.version))
        .outerjoin(applied, applied.c.device_id == DeviceConfig.device_id)).all()
    return {row.device_id: ConfigSummary(version=row.version, state=row.state,
                                         reason=row.reason, applied_version=row.applied)
            for row in rows}


@admin_router.get('/devices/{name}/config', response_model=List[ConfigVersion])
def list_versions(request: Request, name: str, _: Reader = Depends(admin)
                  ) -> List[ConfigVersion]:
    """Return every version of a device's configuration, newest first, with its outcome."""
    with state(request).engine.connect() as connection:
        device_pk = _device_pk(connection, name)
        rows = connection.execute(select(DeviceConfig).where(
            DeviceConfig.device_id == device_pk).order_by(DeviceConfig.version.desc())).all()
    return [_version_out(row) for row in rows]


@admin_router.post('/devices/{name}/config', response_model=ConfigVersion, status_code=201,
                   responses={409: {'description': 'another version was saved meanwhile'},
                              422: {'description': 'not a configuration document'}})
def save_version(request: Request, name: str, config: ConfigIn,
                 who: Reader = Depends(admin)) -> ConfigVersion:
    """Save a new version of a device's configuration; the device takes it at its heartbeat."""
    try:
        with writing(state(request).engine) as connection:
            device_pk = _device_pk(connection, name)
            latest = latest_version(connection, device_pk) or 0
            if config.base_version is not None and config.base_version != latest:
                raise HTTPException(409, f'version {latest} was saved since version '
                                    f'{config.base_version}: reload and edit that one')
            now = utcnow()
            connection.execute(insert(DeviceConfig).values(
                device_id=device_pk, version=latest + 1, parameters=config.parameters,
                created_at=now, created_by=who.name, state=PENDING))
    except IntegrityError:  # another admin's save took this version number first
        raise HTTPException(409, 'another version was saved at the same time: reload') from None
    log.warning('admin %s saved configuration version %d of device %s: %s', who.name,
                latest + 1, name, ', '.join(sorted(config.parameters)) or 'no parameters')
    return ConfigVersion(version=latest + 1, parameters=config.parameters,
                         created_at=from_stored(now), created_by=who.name, state=PENDING,
                         reason=None, reported_at=None)


@device_router.get(device_config_path('{device_id}'), response_model=DeviceConfigOut,
                   responses={404: {'description': 'no configuration for this device'}})
def fetch_config(device_id: str, request: Request, caller: Caller = Depends(authenticated)
                 ) -> DeviceConfigOut:
    """Return the latest configuration of the key's device (named in the path)."""
    with state(request).engine.connect() as connection:
        row = connection.execute(select(DeviceConfig.version, DeviceConfig.parameters).where(
            DeviceConfig.device_id == caller.device_pk).order_by(
            DeviceConfig.version.desc()).limit(1)).first()
    if row is None:
        raise HTTPException(404, f'no configuration for device {caller.name}')
    return DeviceConfigOut(version=row.version, parameters=row.parameters)


@device_router.post(config_report_path('{device_id}'), response_model=ConfigVersion,
                    responses={404: {'description': 'no such version for this device'}})
def report_config(device_id: str, report: ConfigReport, request: Request,
                  caller: Caller = Depends(authenticated)) -> ConfigVersion:
    """Record what the key's device did with a version: applied, or refused and why."""
    with writing(state(request).engine) as connection:
        done = connection.execute(update(DeviceConfig).where(
            DeviceConfig.device_id == caller.device_pk,
            DeviceConfig.version == report.version).values(
            state=report.state, reason=report.reason or None,
            reported_at=utcnow())).rowcount
        if not done:
            raise HTTPException(404, f'no configuration version {report.version} for device '
                                f'{caller.name}')
        row = connection.execute(select(DeviceConfig).where(
            DeviceConfig.device_id == caller.device_pk,
            DeviceConfig.version == report.version)).one()
    if report.state != 'applied':
        log.warning('device %s refused configuration version %d: %s', caller.name,
                    report.version, report.reason)
    return _version_out(row)
