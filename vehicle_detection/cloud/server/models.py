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

"""Request and response bodies of the API (pydantic), mirroring the wire contract."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Annotated, Dict, List, Literal, Optional, Tuple
import uuid

from pydantic import (
    AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field,
    model_validator)

from vehicle_detection.wire import (
    EARLIEST_DETECTION, is_valid_name, MAX_CLOCK_SKEW_S, MAX_COUNT_ROWS, MAX_PERIOD_S,
    NAME_PATTERN, printable_text, SHA256_PATTERN)

Text = Annotated[str, AfterValidator(printable_text)]
BIG = 2 ** 62  # counters stay within a signed 64-bit integer


def plausible_time(value: datetime) -> datetime:
    """Refuse a time further ahead than a clock may be off, or before 2000 (clock never set)."""
    now = datetime.now(timezone.utc)
    if value > now + timedelta(seconds=MAX_CLOCK_SKEW_S):
        raise ValueError(f'lies more than {MAX_CLOCK_SKEW_S:g} s in the future '
                         f'(server time {now:%Y-%m-%dT%H:%M:%SZ}): check the clock')
    if value < EARLIEST_DETECTION:
        raise ValueError(f'lies before {EARLIEST_DETECTION:%Y-%m-%d}: check the clock')
    return value


def safe_name(value: str) -> str:
    """Refuse a device, camera, line or zone name with ``..`` (names end up in paths)."""
    if not is_valid_name(value):
        raise ValueError('must not contain ".."')
    return value


PlausibleTime = Annotated[AwareDatetime, AfterValidator(plausible_time)]
SafeName = Annotated[str, Field(pattern=NAME_PATTERN, max_length=64), AfterValidator(safe_name)]


class AlertIn(BaseModel):
    """``POST /api/v1/alerts`` body (``wire.ALERT_FIELDS``)."""

    model_config = ConfigDict(extra='forbid', allow_inf_nan=False)

    event_id: uuid.UUID
    device_id: SafeName
    camera_id: SafeName
    detected_at: PlausibleTime
    track_id: int = Field(ge=-1, le=BIG)
    class_name: Text = Field(min_length=1, max_length=64)
    confidence: float = Field(ge=0.0, le=1.0)
    bbox: Tuple[float, float, float, float]
    image_width: int = Field(gt=0, le=100_000)
    image_height: int = Field(gt=0, le=100_000)
    image_sha256: Optional[str] = Field(None, pattern=SHA256_PATTERN)
    kind: Literal['vehicle', 'stopped_vehicle'] = 'vehicle'  # wire.ALERT_KINDS
    zone: Optional[SafeName] = None  # where a stopped vehicle stayed

    @model_validator(mode='after')
    def _box_is_ordered(self) -> 'AlertIn':
        x1, y1, x2, y2 = self.bbox
        if x2 < x1 or y2 < y1:
            raise ValueError('bbox must be [x1, y1, x2, y2] with x2 >= x1 and y2 >= y1')
        if (self.zone is None) != (self.kind == 'vehicle'):
            raise ValueError('a stopped_vehicle alert names its zone, a vehicle alert none')
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


class DeviceOut(BaseModel):
    """A device with its last heartbeat, for the dashboard."""

    name: str
    online: bool
    revoked: bool
    last_seen_at: Optional[datetime]
    alerts_24h: int
    health: Dict[str, object]


class Stats(BaseModel):
    """Alert counts per hour and per class for the charts."""

    per_hour: List[Tuple[datetime, int]]
    per_class: Dict[str, int]
    total: int


class CountRowIn(BaseModel):
    """Vehicles of one class that crossed one line one way (``wire.COUNT_ROW_FIELDS``)."""

    model_config = ConfigDict(extra='forbid')

    line: SafeName
    direction: SafeName
    class_name: Text = Field(min_length=1, max_length=64)
    count: int = Field(ge=0, le=1_000_000_000)


class CountsIn(BaseModel):
    """``POST /api/v1/counts`` body: one period of one camera (``wire.COUNT_FIELDS``)."""

    model_config = ConfigDict(extra='forbid')

    record_id: uuid.UUID
    device_id: SafeName
    camera_id: SafeName
    period_start: PlausibleTime
    period_s: int = Field(gt=0, le=MAX_PERIOD_S)
    counts: List[CountRowIn] = Field(max_length=MAX_COUNT_ROWS)

    @model_validator(mode='after')
    def _rows_are_unique(self) -> 'CountsIn':
        keys = [(row.line, row.direction, row.class_name) for row in self.counts]
        if len(set(keys)) != len(keys):
            raise ValueError('counts must name each (line, direction, class_name) once')
        return self


class CountsCreated(BaseModel):
    """Answer to a counts post: 201 the first time, 200 with the same record id after."""

    record_id: uuid.UUID
    created: bool
    device_id: str  # the key's device, under which the counts are filed


class CountBucket(BaseModel):
    """Vehicles of one class that crossed one line in one direction within one bucket."""

    start: datetime
    device_id: str
    line: str
    direction: str
    class_name: str
    count: int


class CountCoverage(BaseModel):
    """Seconds of counting periods a device reported within one bucket (0: no data)."""

    start: datetime
    device_id: str
    seconds: int


class CountSeries(BaseModel):
    """Counts aggregated into buckets (``GET /api/v1/counts``); buckets without rows had none."""

    bucket_s: int
    start: datetime
    end: datetime
    rows: List[CountBucket]
    coverage: List[CountCoverage]
