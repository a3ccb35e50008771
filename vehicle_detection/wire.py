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
drift apart. The server's request models take their kinds, name rules and
limits from here; ``Alert`` and ``CountRecord`` refuse what the server
refuses (a test sends both the same bad bodies). The checks of single values
(names, times, boxes, numbers) live in :mod:`vehicle_detection.wire_values`
and are re-exported here, as are count records and the limits of counting
(:mod:`vehicle_detection.wire_counts`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timezone
import re
from typing import Any, Dict, Mapping, Optional, Tuple
import uuid

# Part of the contract: count records and the limits of counting, re-exported.
from vehicle_detection.wire_counts import (  # noqa: F401
    COUNT_FIELDS, count_limits_problem, COUNT_OPTIONAL, COUNT_ROW_FIELDS, CountRecord, MAX_COUNT,
    MAX_COUNT_CLASSES, MAX_COUNT_DIRECTIONS, MAX_COUNT_LINES, MAX_COUNT_ROWS, MAX_PERIOD_S,
    OPTIONAL_COUNT_FIELDS, QUALITY_FIELDS, QUALITY_FLAGS, quality_problem)
from vehicle_detection.wire_speeds import speed_kmh_problem
# Part of the contract: the single-value checks and limits, re-exported.
from vehicle_detection.wire_values import (  # noqa: F401
    bbox_problem, class_name_problem, EARLIEST_DETECTION, is_integer, is_number, is_valid_name,
    MAX_CLASS_NAME_LENGTH, MAX_CLOCK_SKEW_S, MAX_IMAGE_SIDE, MAX_NAME_LENGTH, MAX_TRACK_ID,
    NAME_PATTERN, plausible_time, printable_text)
from vehicle_detection.wire_values import (
    is_integer_in, json_fields, name_problems, refuse, replay_problem, time_problem, uuid_problem)

API_PREFIX = '/api/v1'
HEALTH_PATH = f'{API_PREFIX}/health'
ALERTS_PATH = f'{API_PREFIX}/alerts'
DEVICES_PATH = f'{API_PREFIX}/devices'
COUNTS_PATH = f'{API_PREFIX}/counts'

API_KEY_HEADER = 'X-API-Key'
IDEMPOTENCY_HEADER = 'Idempotency-Key'
JPEG_CONTENT_TYPE = 'image/jpeg'

MAX_BODY_BYTES = 5 * 1024 * 1024  # server default; the edge never sends more

ALERT_FIELDS: Tuple[str, ...] = (
    'event_id', 'device_id', 'camera_id', 'detected_at', 'track_id', 'class_name',
    'confidence', 'bbox', 'image_width', 'image_height', 'image_sha256', 'kind', 'zone',
    'line', 'direction', 'replay', 'speed_kmh')
# Where an alert happened: each kind names the places it needs, and no others.
ALERT_PLACES: Tuple[str, ...] = ('zone', 'line', 'direction')
# What an alert reports, with the places of its kind:
# - vehicle: a vehicle seen (once per vehicle);
# - stopped_vehicle: a vehicle that stayed in a counting zone longer than its dwell limit;
# - wrong_way: a vehicle that crossed a counting line against its allowed direction
#   (``direction`` names the way it crossed).
ALERT_KINDS: Dict[str, Tuple[str, ...]] = {
    'vehicle': (),
    'stopped_vehicle': ('zone',),
    'wrong_way': ('line', 'direction'),
}
# The SHA-256 of the snapshot the edge will upload for an alert (lowercase hex). The
# server links an alert to a snapshot it already holds from the same device (alerts of
# one frame share one picture) and says so (``image_stored``): the edge skips the upload.
SHA256_PATTERN = r'^[0-9a-f]{64}$'
# ``replay: true`` marks an alert or a count record made from recorded images (a bag played
# into the system: ``replay.launch.py``, ``vehicle-detection run --replay``), so that it
# never passes for live traffic; the read API and the dashboard leave replays out unless
# asked. Sent only when true: a live event's body is what older servers know.

OPTIONAL_ALERT_FIELDS: Tuple[str, ...] = ('speed_kmh',)  # as OPTIONAL_COUNT_FIELDS

# Health figures a heartbeat may carry; every one optional, numbers except link_state.
HEARTBEAT_FIELDS: Tuple[str, ...] = (
    'cpu_percent', 'memory_percent', 'temperature_c', 'gpu_percent', 'link_state',
    'queue_depth', 'oldest_unsent_s', 'upload_success_rate', 'retries', 'evictions',
    'bytes_month', 'projected_bytes_month', 'budget_bytes', 'uptime_s', 'held_events',
    'outbox_db_bytes', 'snapshot_bytes', 'log_bytes')  # disk used on the box


def alert_image_path(event_id: str) -> str:
    """Return the path of the snapshot upload of ``event_id``."""
    return f'{ALERTS_PATH}/{event_id}/image'


def heartbeat_path(device_id: str) -> str:
    """Return the path of ``device_id``'s heartbeat."""
    return f'{DEVICES_PATH}/{device_id}/heartbeat'


def is_retryable(status: Optional[int]) -> bool:
    """
    Tell whether a request that ended with ``status`` should be sent again.

    None stands for a network error. 5xx, 408 and 429 are retried; any other
    4xx is permanent for that request (the sender records it and moves on).
    """
    return status is None or status >= 500 or status in (408, 429)


def alert_kind_problem(kind: str, places: Mapping[str, Optional[str]]) -> Optional[str]:
    """Say what is wrong with an alert's kind and places (None if they agree)."""
    if kind not in ALERT_KINDS:
        return f'alert kind {kind!r} is not one of {", ".join(ALERT_KINDS)}'
    unknown = sorted(set(places) - set(ALERT_PLACES))
    if unknown:
        return f'{", ".join(unknown)} is not a place of an alert'
    for place in ALERT_PLACES:
        value = places.get(place)
        if (value is None) == (place in ALERT_KINDS[kind]):
            return (f'a {kind} alert names its {place}' if value is None
                    else f'a {kind} alert names no {place}')
        if value is not None and not (isinstance(value, str) and is_valid_name(value)):
            return f'{place} {value!r} is not a valid name'
    return None


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
    line: Optional[str] = None  # the line a wrong-way vehicle crossed...
    direction: Optional[str] = None  # ...and the way it crossed it
    replay: bool = False  # seen in recorded images, not live
    speed_kmh: Optional[float] = None  # the vehicle's speed, where the camera is calibrated

    def __post_init__(self) -> None:
        """Refuse what the server would refuse, before it is queued (clear error, no retry)."""
        sides = (self.image_width, self.image_height)
        places = {'zone': self.zone, 'line': self.line, 'direction': self.direction}
        refuse([
            uuid_problem('event_id', self.event_id),
            *name_problems(device_id=self.device_id, camera_id=self.camera_id),
            time_problem('detected_at', self.detected_at),
            None if is_integer_in(self.track_id, -1, MAX_TRACK_ID)
            else f'track id {self.track_id!r} is not an integer in [-1, {MAX_TRACK_ID}]',
            class_name_problem(self.class_name) if isinstance(self.class_name, str)
            else 'class name must be text',
            None if is_number(self.confidence) and 0.0 <= self.confidence <= 1.0
            else f'confidence {self.confidence!r} is not a number in [0, 1]',
            bbox_problem(self.bbox) if isinstance(self.bbox, (list, tuple))
            else 'bbox must be four finite numbers [x1, y1, x2, y2]',
            None if all(is_integer_in(side, 1, MAX_IMAGE_SIDE) for side in sides)
            else f'image size {sides!r}: integers in [1, {MAX_IMAGE_SIDE}]',
            None if self.image_sha256 is None or (isinstance(self.image_sha256, str)
                                                  and re.match(SHA256_PATTERN, self.image_sha256))
            else 'image_sha256 must be 64 lowercase hex digits',
            alert_kind_problem(self.kind, places) if isinstance(self.kind, str)
            else 'kind must be text',
            replay_problem(self.replay), speed_kmh_problem(self.speed_kmh)])

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> 'Alert':
        """Return the alert of a JSON body; ValueError says what the server would refuse."""
        values = json_fields(cls, body, ALERT_FIELDS,
                             ('image_sha256', 'kind', *ALERT_PLACES, 'replay', 'speed_kmh'))
        if isinstance(values.get('bbox'), list):
            values['bbox'] = tuple(values['bbox'])
        return cls(**values)

    def to_json(self) -> Dict[str, Any]:
        """Return the JSON body: no ``image_sha256`` or place it lacks, ``replay`` if live."""
        body = {k: v for k, v in asdict(self).items() if v is not None}
        if not self.replay:
            del body['replay']
        body['bbox'] = [round(float(v), 1) for v in self.bbox]
        body['confidence'] = round(float(self.confidence), 4)
        if self.speed_kmh is not None:
            body['speed_kmh'] = round(float(self.speed_kmh), 1)
        return body
