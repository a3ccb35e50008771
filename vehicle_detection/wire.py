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
refuses (a test sends both the same bad bodies).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
import math
import re
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple
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
    'confidence', 'bbox', 'image_width', 'image_height', 'image_sha256', 'kind', 'zone',
    'line', 'direction')
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

# Traffic counts of one period (``POST /api/v1/counts``): vehicles that crossed each
# counting line, per direction and class. A period is sent even when nothing crossed,
# so that "no traffic" differs from "no data"; one record is a few hundred bytes.
COUNT_FIELDS: Tuple[str, ...] = (
    'record_id', 'device_id', 'camera_id', 'period_start', 'period_s', 'counts')
COUNT_ROW_FIELDS: Tuple[str, ...] = ('line', 'direction', 'class_name', 'count')
MAX_COUNT_ROWS = 1000  # rows in one record (lines x directions x classes)
MAX_PERIOD_S = 86400
MAX_COUNT = 1_000_000_000  # vehicles of one row

# Limits of single fields, the same on both sides.
MAX_NAME_LENGTH = 64  # device, camera, line, direction and zone names (NAME_PATTERN)
MAX_CLASS_NAME_LENGTH = 64
MAX_TRACK_ID = 2 ** 62  # track ids are -1 (no tracker) up to this
MAX_IMAGE_SIDE = 100_000  # pixels

# Health figures a heartbeat may carry; every one optional, numbers except link_state.
HEARTBEAT_FIELDS: Tuple[str, ...] = (
    'cpu_percent', 'memory_percent', 'temperature_c', 'gpu_percent', 'link_state',
    'queue_depth', 'oldest_unsent_s', 'upload_success_rate', 'retries', 'evictions',
    'bytes_month', 'projected_bytes_month', 'budget_bytes', 'uptime_s', 'held_events')

# Camera and device names end up in file names: keep them to a safe alphabet.
NAME_PATTERN = rf'^[A-Za-z0-9][A-Za-z0-9_.-]{{0,{MAX_NAME_LENGTH - 1}}}$'
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


def bbox_problem(bbox: Sequence[float]) -> Optional[str]:
    """Say what is wrong with a box ``[x1, y1, x2, y2]`` (None if it is one)."""
    if len(bbox) != 4 or not all(_is_number(v) and math.isfinite(v) for v in bbox):
        return 'bbox must be four finite numbers [x1, y1, x2, y2]'
    if bbox[2] < bbox[0] or bbox[3] < bbox[1]:
        return 'bbox must be [x1, y1, x2, y2] with x2 >= x1 and y2 >= y1'
    return None


def class_name_problem(name: str) -> Optional[str]:
    """Say what is wrong with a class name (None if it is fine)."""
    if not 1 <= len(name) <= MAX_CLASS_NAME_LENGTH:
        return f'class name must have 1 to {MAX_CLASS_NAME_LENGTH} characters'
    try:
        printable_text(name)
    except ValueError as error:
        return f'class name {error}'
    return None


def plausible_time(value: datetime) -> datetime:
    """Refuse a time further ahead than a clock may be off, or before 2000 (clock never set)."""
    now = datetime.now(timezone.utc)
    if value > now + timedelta(seconds=MAX_CLOCK_SKEW_S):
        raise ValueError(f'lies more than {MAX_CLOCK_SKEW_S:g} s in the future '
                         f'(server time {now:%Y-%m-%dT%H:%M:%SZ}): check the clock')
    if value < EARLIEST_DETECTION:
        raise ValueError(f'lies before {EARLIEST_DETECTION:%Y-%m-%d}: check the clock')
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_int(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _check(problems: Sequence[Optional[str]]) -> None:
    """Raise ValueError naming every problem found (None: no problem)."""
    found = [problem for problem in problems if problem]
    if found:
        raise ValueError('; '.join(found))


def _names(**names: Any) -> List[Optional[str]]:
    return [None if isinstance(value, str) and is_valid_name(value)
            else f'{field} {value!r} is not a valid name' for field, value in names.items()]


def _moment(field: str, value: Any) -> Optional[str]:
    """Check an ISO 8601 time with its time zone, and that it is plausible."""
    try:
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            raise ValueError('needs a time zone')
        plausible_time(moment)
    except (TypeError, ValueError) as error:
        return f'{field} {value!r}: {error}'
    return None


def _uuid(field: str, value: Any) -> Optional[str]:
    try:
        uuid.UUID(value)
    except (AttributeError, TypeError, ValueError):
        return f'{field} {value!r} is not a UUID'
    return None


def _from_json(kind: type, body: Mapping[str, Any], fields: Tuple[str, ...],
               optional: Tuple[str, ...] = ()) -> Dict[str, Any]:
    """Return ``body``'s fields as keyword arguments; refuse unknown or missing ones."""
    if not isinstance(body, Mapping):
        raise ValueError(f'a {kind.__name__} body is a JSON object')
    _check([f'unknown field {name!r}' for name in sorted(set(body) - set(fields))]
           + [f'missing field {name!r}' for name in fields
              if name not in body and name not in optional])
    return dict(body)


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

    def __post_init__(self) -> None:
        """Refuse what the server would refuse, before it is queued (clear error, no retry)."""
        sides = (self.image_width, self.image_height)
        places = {'zone': self.zone, 'line': self.line, 'direction': self.direction}
        _check([
            _uuid('event_id', self.event_id),
            *_names(device_id=self.device_id, camera_id=self.camera_id),
            _moment('detected_at', self.detected_at),
            None if _is_int(self.track_id, -1, MAX_TRACK_ID)
            else f'track id {self.track_id!r} is not an integer in [-1, {MAX_TRACK_ID}]',
            class_name_problem(self.class_name) if isinstance(self.class_name, str)
            else 'class name must be text',
            None if _is_number(self.confidence) and 0.0 <= self.confidence <= 1.0
            else f'confidence {self.confidence!r} is not a number in [0, 1]',
            bbox_problem(self.bbox) if isinstance(self.bbox, (list, tuple))
            else 'bbox must be four finite numbers [x1, y1, x2, y2]',
            None if all(_is_int(side, 1, MAX_IMAGE_SIDE) for side in sides)
            else f'image size {sides!r}: integers in [1, {MAX_IMAGE_SIDE}]',
            None if self.image_sha256 is None or (isinstance(self.image_sha256, str)
                                                  and re.match(SHA256_PATTERN, self.image_sha256))
            else 'image_sha256 must be 64 lowercase hex digits',
            alert_kind_problem(self.kind, places) if isinstance(self.kind, str)
            else 'kind must be text'])

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> 'Alert':
        """Return the alert of a JSON body; ValueError says what the server would refuse."""
        values = _from_json(cls, body, ALERT_FIELDS,
                            ('image_sha256', 'kind', *ALERT_PLACES))
        if isinstance(values.get('bbox'), list):
            values['bbox'] = tuple(values['bbox'])
        return cls(**values)

    def to_json(self) -> Dict[str, Any]:
        """Return the JSON body (without ``image_sha256`` and places it has none of)."""
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
        keys = [tuple(row[:3]) for row in self.counts]
        _check([
            _uuid('record_id', self.record_id),
            *_names(device_id=self.device_id, camera_id=self.camera_id),
            _moment('period_start', self.period_start),
            None if _is_int(self.period_s, 1, MAX_PERIOD_S)
            else f'period of {self.period_s!r} s: an integer, at most {MAX_PERIOD_S} s',
            None if len(self.counts) <= MAX_COUNT_ROWS
            else f'{len(self.counts)} rows: at most {MAX_COUNT_ROWS}',
            *(problem for row in self.counts for problem in _count_row_problems(row)),
            None if len(set(keys)) == len(keys)
            else 'counts must name each (line, direction, class_name) once'])

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> 'CountRecord':
        """Return the record of a JSON body; ValueError says what the server would refuse."""
        values = _from_json(cls, body, COUNT_FIELDS)
        rows = values['counts']
        if not isinstance(rows, list):
            raise ValueError('counts must be a list of rows')
        values['counts'] = tuple(
            tuple(_from_json(cls, row, COUNT_ROW_FIELDS)[name] for name in COUNT_ROW_FIELDS)
            for row in rows)
        return cls(**values)

    def to_json(self) -> Dict[str, Any]:
        """Return the JSON body."""
        body: Dict[str, Any] = {name: getattr(self, name) for name in COUNT_FIELDS[:-1]}
        body['counts'] = [dict(zip(COUNT_ROW_FIELDS, row)) for row in self.counts]
        return body


def _count_row_problems(row: Sequence[Any]) -> List[Optional[str]]:
    if len(row) != len(COUNT_ROW_FIELDS):
        return [f'count row {row!r} is not (line, direction, class_name, count)']
    line, direction, class_name, count = row
    return [*_names(line=line, direction=direction),
            class_name_problem(class_name) if isinstance(class_name, str)
            else 'class name must be text',
            None if _is_int(count, 0, MAX_COUNT)
            else f'count {count!r} is not an integer in [0, {MAX_COUNT}]']
