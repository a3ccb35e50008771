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
The wire contract between the edge boxes and the cloud server.

One module, imported by both sides (and by nothing heavier than the standard
library), so paths, headers, field names, limits and the retry rule cannot
drift apart. The server's request models are checked against these field
lists by a test.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timezone
import math
import re
from typing import Any, Dict, Optional, Tuple
import uuid

API_PREFIX = '/api/v1'
HEALTH_PATH = f'{API_PREFIX}/health'
ALERTS_PATH = f'{API_PREFIX}/alerts'
DEVICES_PATH = f'{API_PREFIX}/devices'
COUNTS_PATH = f'{API_PREFIX}/counts'

API_KEY_HEADER = 'X-API-Key'
IDEMPOTENCY_HEADER = 'Idempotency-Key'
JPEG_CONTENT_TYPE = 'image/jpeg'

MAX_BODY_BYTES = 5 * 1024 * 1024  # server default; the edge never sends more
# A detection time is refused when it lies further ahead than a clock may be off, or
# before 2000 (a clock never set). Older recordings replayed into the system are fine.
MAX_CLOCK_SKEW_S = 300.0
EARLIEST_DETECTION = datetime(2000, 1, 1, tzinfo=timezone.utc)

ALERT_FIELDS: Tuple[str, ...] = (
    'event_id', 'device_id', 'camera_id', 'detected_at', 'track_id', 'class_name',
    'confidence', 'bbox', 'image_width', 'image_height', 'image_sha256', 'kind', 'zone')
# What an alert reports: a vehicle seen (once per vehicle), or a vehicle that stayed in a
# counting zone longer than its dwell limit (``zone`` names it).
ALERT_KINDS: Tuple[str, ...] = ('vehicle', 'stopped_vehicle')
# The SHA-256 of the snapshot the edge will upload for an alert (lowercase hex). The
# server links an alert to a snapshot it already holds from the same device (alerts of
# one frame share one picture) and says so (``image_stored``): the edge skips the upload.
SHA256_PATTERN = r'^[0-9a-f]{64}$'

# Traffic counts of one period (``POST /api/v1/counts``): vehicles that crossed each
# counting line, per direction and class. A period is sent even when nothing crossed,
# so that "no traffic" differs from "no data"; one record is a few hundred bytes.
COUNT_FIELDS: Tuple[str, ...] = (
    'record_id', 'device_id', 'camera_id', 'period_start', 'period_s', 'counts')
COUNT_ROW_FIELDS: Tuple[str, ...] = ('line', 'direction', 'class_name', 'count')
MAX_COUNT_ROWS = 1000  # rows in one record (lines x directions x classes)
MAX_PERIOD_S = 86400

# Health figures a heartbeat may carry; every one optional, numbers except link_state.
HEARTBEAT_FIELDS: Tuple[str, ...] = (
    'cpu_percent', 'memory_percent', 'temperature_c', 'gpu_percent', 'link_state',
    'queue_depth', 'oldest_unsent_s', 'upload_success_rate', 'retries', 'evictions',
    'bytes_month', 'projected_bytes_month', 'budget_bytes', 'uptime_s', 'held_events',
    'outbox_db_bytes', 'snapshot_bytes', 'log_bytes')  # disk used on the box

# Camera and device names end up in file names: keep them to a safe alphabet.
NAME_PATTERN = r'^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'
_NAME = re.compile(NAME_PATTERN)


def alert_image_path(event_id: str) -> str:
    """Return the path of the snapshot upload of ``event_id``."""
    return f'{ALERTS_PATH}/{event_id}/image'


def heartbeat_path(device_id: str) -> str:
    """Return the path of ``device_id``'s heartbeat."""
    return f'{DEVICES_PATH}/{device_id}/heartbeat'


def is_valid_name(name: str) -> bool:
    """Tell whether ``name`` may be a device or camera id (letters, digits, ``_.-``)."""
    return bool(_NAME.match(name)) and '..' not in name


def is_retryable(status: Optional[int]) -> bool:
    """
    Tell whether a request that ended with ``status`` should be sent again.

    None stands for a network error. 5xx, 408 and 429 are retried; any other
    4xx is permanent for that request (the sender records it and moves on).
    """
    return status is None or status >= 500 or status in (408, 429)


def printable_text(value: str) -> str:
    """
    Return ``value`` if it is text every database stores; raise ValueError if not.

    Refused: NUL and other control characters, and lone surrogates (not
    Unicode: they cannot be encoded as UTF-8).
    """
    if any(ord(c) < 32 or ord(c) == 127 or 0xD800 <= ord(c) <= 0xDFFF for c in value):
        raise ValueError('must not contain control characters or lone surrogates')
    return value


def utc_iso(moment: datetime) -> str:
    """Format an aware datetime as UTC ISO 8601 with a ``Z``, to the microsecond."""
    return moment.astimezone(timezone.utc).strftime('%Y-%m-%dT%H:%M:%S.%fZ')


def snapshot_name(detected_at: datetime, camera_id: str, event_id: str) -> str:
    """
    Return the storage path of a snapshot: ``YYYY-MM-DD/HHMMSS_<camera>_<event>.jpg``.

    Only the server calls this, with a validated camera id and a parsed UUID,
    so the result never leaves the storage root.
    """
    if not is_valid_name(camera_id):
        raise ValueError(f'camera id {camera_id!r} is not a safe name')
    event = str(uuid.UUID(event_id))
    moment = detected_at.astimezone(timezone.utc)
    return f'{moment:%Y-%m-%d}/{moment:%H%M%S}_{camera_id}_{event}.jpg'


@dataclass(frozen=True)
class Alert:
    """One alert as the edge sends it (``POST /api/v1/alerts``)."""

    event_id: str
    device_id: str
    camera_id: str
    detected_at: str
    track_id: int
    class_name: str
    confidence: float
    bbox: Tuple[float, float, float, float]
    image_width: int
    image_height: int
    image_sha256: Optional[str] = None
    kind: str = 'vehicle'
    zone: Optional[str] = None  # the zone a stopped vehicle stayed in

    def __post_init__(self) -> None:
        """Refuse what the server would refuse, before it is queued (clear error, no retry)."""
        if self.kind not in ALERT_KINDS or (self.zone is None) != (self.kind == 'vehicle'):
            raise ValueError(f'alert kind {self.kind!r} with zone {self.zone!r}: a '
                             'stopped_vehicle alert names its zone, a vehicle alert none')
        if self.zone is not None and not is_valid_name(self.zone):
            raise ValueError(f'{self.zone!r} is not a valid zone name')
        numbers = (self.confidence, *self.bbox)
        if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in numbers):
            raise ValueError(f'alert numbers must be finite: confidence {self.confidence}, '
                             f'bbox {self.bbox}')
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f'confidence {self.confidence} is outside [0, 1]')
        for name in (self.device_id, self.camera_id):
            if not is_valid_name(name):
                raise ValueError(f'{name!r} is not a valid device or camera id')
        printable_text(self.class_name)

    def to_json(self) -> Dict[str, Any]:
        """Return the JSON body (without ``image_sha256`` when there is no snapshot)."""
        body = {k: v for k, v in asdict(self).items() if v is not None}
        body['bbox'] = [round(float(v), 1) for v in self.bbox]
        body['confidence'] = round(float(self.confidence), 4)
        return body


@dataclass(frozen=True)
class CountRecord:
    """Vehicles counted on each line in one period (``POST /api/v1/counts``)."""

    record_id: str  # a UUID: the server stores each record once
    device_id: str
    camera_id: str
    period_start: str  # UTC ISO 8601
    period_s: int
    counts: Tuple[Tuple[str, str, str, int], ...]  # (line, direction, class_name, count)

    def __post_init__(self) -> None:
        """Refuse what the server would refuse, before it is queued."""
        for name in (self.device_id, self.camera_id):
            if not is_valid_name(name):
                raise ValueError(f'{name!r} is not a valid device or camera id')
        if not 0 < self.period_s <= MAX_PERIOD_S or len(self.counts) > MAX_COUNT_ROWS:
            raise ValueError(f'period of {self.period_s} s with {len(self.counts)} rows: '
                             f'at most {MAX_PERIOD_S} s and {MAX_COUNT_ROWS} rows')
        for line, direction, class_name, count in self.counts:
            if not (is_valid_name(line) and is_valid_name(direction)) or count < 0:
                raise ValueError(f'count row {line!r} {direction!r}: names must be valid and '
                                 f'the count ({count}) not negative')
            printable_text(class_name)

    def to_json(self) -> Dict[str, Any]:
        """Return the JSON body."""
        body: Dict[str, Any] = {name: getattr(self, name) for name in COUNT_FIELDS[:-1]}
        body['counts'] = [dict(zip(COUNT_ROW_FIELDS, row)) for row in self.counts]
        return body
