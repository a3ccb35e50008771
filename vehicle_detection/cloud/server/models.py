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
Request and response bodies of the API (pydantic), built from the wire contract.

Kinds, the places each kind names, name rules and limits all come from
:mod:`vehicle_detection.wire`, the module the edge checks its bodies with
before it queues them: the edge never queues what the server refuses (a
test feeds both the same bad bodies). The counts API's bodies are in
:mod:`.models_counts`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Dict, List, Optional, Tuple
import uuid

from pydantic import (
    AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field,
    model_validator)

from vehicle_detection.wire import (
    alert_kind_problem, ALERT_KINDS, bbox_problem, class_name_problem, is_valid_name,
    MAX_IMAGE_SIDE, MAX_NAME_LENGTH, MAX_TRACK_ID, NAME_PATTERN, plausible_time,
    printable_text, SHA256_PATTERN)
from vehicle_detection.wire_speeds import MAX_SPEED_KMH

Text = Annotated[str, AfterValidator(printable_text)]
BIG = 2 ** 62  # counters stay within a signed 64-bit integer
# Numbers are strict: JSON true is no number, nor is "5" (lax pydantic took both as 1 and 5).
# A float field still takes an integer.
Number = Annotated[float, Field(strict=True)]


def safe_name(value: str) -> str:
    """Refuse a device, camera, line or zone name with ``..`` (names end up in paths)."""
    if not is_valid_name(value):
        raise ValueError('must not contain ".."')
    return value


def class_name(value: str) -> str:
    """Refuse a class name the wire refuses (length, control characters)."""
    problem = class_name_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def iso_text(value: Any) -> Any:
    """Refuse a time given as anything but ISO 8601 text (the wire sends text)."""
    if not isinstance(value, str):
        raise ValueError('must be an ISO 8601 time with its time zone')
    return value


PlausibleTime = Annotated[AwareDatetime, BeforeValidator(iso_text),
                          AfterValidator(plausible_time)]
SafeName = Annotated[str, Field(pattern=NAME_PATTERN, max_length=MAX_NAME_LENGTH),
                     AfterValidator(safe_name)]
ClassName = Annotated[str, Field(min_length=1), AfterValidator(class_name)]


class AlertIn(BaseModel):
    """``POST /api/v1/alerts`` body (``wire.ALERT_FIELDS``, checked as ``wire.Alert`` does)."""

    model_config = ConfigDict(extra='forbid', allow_inf_nan=False)

    event_id: uuid.UUID
    device_id: SafeName
    camera_id: SafeName
    detected_at: PlausibleTime
    track_id: int = Field(ge=-1, le=MAX_TRACK_ID, strict=True)
    class_name: ClassName
    confidence: float = Field(ge=0.0, le=1.0, strict=True)
    bbox: Tuple[Number, Number, Number, Number]
    image_width: int = Field(gt=0, le=MAX_IMAGE_SIDE, strict=True)
    image_height: int = Field(gt=0, le=MAX_IMAGE_SIDE, strict=True)
    image_sha256: Optional[str] = Field(None, pattern=SHA256_PATTERN)
    kind: str = Field('vehicle', json_schema_extra={'enum': list(ALERT_KINDS)})
    zone: Optional[SafeName] = None  # where a stopped vehicle stayed
    line: Optional[SafeName] = None  # the line a wrong-way driver crossed...
    direction: Optional[SafeName] = None  # ...and the way it crossed it
    replay: bool = Field(False, strict=True)  # seen in recorded images (a bag), not live
    speed_kmh: Optional[float] = Field(None, ge=0.0, le=MAX_SPEED_KMH, strict=True)

    @model_validator(mode='after')
    def _as_the_wire_says(self) -> 'AlertIn':
        problem = bbox_problem(self.bbox) or alert_kind_problem(
            self.kind, {'zone': self.zone, 'line': self.line, 'direction': self.direction})
        if problem:
            raise ValueError(problem)
        return self


class AlertCreated(BaseModel):
    """Answer to an alert post: 201 the first time, 200 with the same id after."""

    id: int  # noqa: A003 (wire name)
    event_id: uuid.UUID
    created: bool
    #: the snapshot is on the server already (shared with an alert of the same frame)
    image_stored: bool = False
    #: the device the alert is filed under: the key's, whatever the body said
    device_id: str = ''


class AlertOut(BaseModel):
    """An alert as the read endpoints return it."""

    id: int  # noqa: A003 (wire name)
    event_id: str
    device_id: str
    camera_id: str
    detected_at: datetime
    received_at: datetime
    track_id: int
    class_name: str
    confidence: float
    bbox: List[float]
    image_width: int
    image_height: int
    image_url: Optional[str]
    thumbnail_url: Optional[str]
    image_bytes: Optional[int]
    kind: str = 'vehicle'
    zone: Optional[str] = None
    line: Optional[str] = None
    direction: Optional[str] = None
    replay: bool = False  # made from recorded images: not live traffic
    speed_kmh: Optional[float] = None  # where the camera is calibrated


class AlertPage(BaseModel):
    """One page of alerts, newest first; pass ``next_cursor`` as ``before_id``."""

    items: List[AlertOut]
    next_cursor: Optional[int]


class ImageStored(BaseModel):
    """Answer to a snapshot upload."""

    event_id: str
    path: str
    bytes: int  # noqa: A003 (wire name)
    created: bool


class HeartbeatIn(BaseModel):
    """``POST /api/v1/devices/{device_id}/heartbeat`` body (``wire.HEARTBEAT_FIELDS``)."""

    model_config = ConfigDict(extra='forbid', allow_inf_nan=False)

    cpu_percent: Optional[float] = Field(None, ge=0, le=100 * 1024)
    memory_percent: Optional[float] = Field(None, ge=0, le=100)
    temperature_c: Optional[float] = Field(None, ge=-100, le=200)
    gpu_percent: Optional[float] = Field(None, ge=0, le=100)
    link_state: Optional[Text] = Field(None, max_length=32)
    queue_depth: Optional[int] = Field(None, ge=0, le=BIG)
    oldest_unsent_s: Optional[float] = Field(None, ge=0)
    upload_success_rate: Optional[float] = Field(None, ge=0, le=1)
    retries: Optional[int] = Field(None, ge=0, le=BIG)
    evictions: Optional[int] = Field(None, ge=0, le=BIG)
    bytes_month: Optional[int] = Field(None, ge=0, le=BIG)
    projected_bytes_month: Optional[int] = Field(None, ge=0, le=BIG)
    budget_bytes: Optional[int] = Field(None, ge=0, le=BIG)
    uptime_s: Optional[float] = Field(None, ge=0)
    held_events: Optional[int] = Field(None, ge=0, le=BIG)
    outbox_db_bytes: Optional[int] = Field(None, ge=0, le=BIG)
    snapshot_bytes: Optional[int] = Field(None, ge=0, le=BIG)
    log_bytes: Optional[int] = Field(None, ge=0, le=BIG)


class ConfigSummary(BaseModel):
    """A device's configuration at a glance, for the devices panel."""

    version: int  # the latest (desired) version
    state: str  # of the latest version: pending, applied or refused
    reason: Optional[str]
    applied_version: Optional[int]  # the newest version the device applied, if any


class DeviceOut(BaseModel):
    """A device with its last heartbeat, for the dashboard."""

    name: str
    online: bool
    revoked: bool
    last_seen_at: Optional[datetime]
    alerts_24h: int
    health: Dict[str, object]
    config: Optional[ConfigSummary] = None  # None: never configured from the dashboard


class Stats(BaseModel):
    """Alert counts per hour, per class and per kind (every kind, 0 too) for the charts."""

    per_hour: List[Tuple[datetime, int]]
    per_class: Dict[str, int]
    total: int
    per_kind: Dict[str, int] = Field(default_factory=dict)
