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
and are re-exported here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timezone
import re
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple
import uuid

from vehicle_detection.wire_speeds import speed_kmh_problem, speeds_problems, vehicles_problems
# Part of the contract: the single-value checks and limits, re-exported.
from vehicle_detection.wire_values import (  # noqa: F401
    bbox_problem, class_name_problem, EARLIEST_DETECTION, is_integer, is_number, is_valid_name,
    MAX_CLASS_NAME_LENGTH, MAX_CLOCK_SKEW_S, MAX_IMAGE_SIDE, MAX_NAME_LENGTH, MAX_TRACK_ID,
    NAME_PATTERN, plausible_time, printable_text)
from vehicle_detection.wire_values import (
    is_integer_in, json_fields, name_problems, refuse, time_problem, uuid_problem)

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

# Traffic counts of one period (``POST /api/v1/counts``): vehicles that crossed each
# counting line, per direction and class. A period is sent even when nothing crossed,
# so that "no traffic" differs from "no data"; one record is a few hundred bytes.
# Optional, sent only when there is something in them (an older server knows neither):
# ``speeds``, per line, direction and class, the 2 km/h bins of the counted vehicles' speeds
# (a calibrated camera); ``vehicles``, one row per counted vehicle (the device's
# ``count_vehicles``): see :mod:`vehicle_detection.wire_speeds`.
COUNT_FIELDS: Tuple[str, ...] = (
    'record_id', 'device_id', 'camera_id', 'period_start', 'period_s', 'counts', 'replay',
    'scheme', 'quality', 'speeds', 'vehicles')
COUNT_ROW_FIELDS: Tuple[str, ...] = ('line', 'direction', 'class_name', 'count')
# Optional on a count record (an older edge sends neither): ``scheme``, the name of the class
# scheme its class names belong to (``uk6``, ``coco``: the detector's labels), and
# ``quality``: ``{"flags": [...], "observed_s": s}``, what degraded detection in the period
# (flags of QUALITY_FLAGS) and the seconds of it the camera actually saw.
QUALITY_FLAGS: Tuple[str, ...] = (
    'dark', 'glare', 'detections_collapsed', 'camera_reconnected', 'stalled')
QUALITY_FIELDS: Tuple[str, ...] = ('flags', 'observed_s')
# Fields of a count record (and an alert) an older server does not know: refused by it as
# unknown (422, extra_forbidden), the edge sends the body again without them, so that the
# counts (the alert) themselves still arrive. Also the ones json_fields takes as optional.
OPTIONAL_COUNT_FIELDS: Tuple[str, ...] = ('scheme', 'quality', 'speeds', 'vehicles')
OPTIONAL_ALERT_FIELDS: Tuple[str, ...] = ('speed_kmh',)
COUNT_OPTIONAL: Tuple[str, ...] = ('replay', *OPTIONAL_COUNT_FIELDS)
# Limits of counting, the same at the edge (its lines) and on the server (per record, and
# per device and UTC day, so that a read of counts stays bounded): 32 lines of 2 directions
# each, 16 classes (the 13 of FHWA's vehicle classification fit; the default is 5).
MAX_COUNT_LINES = 32
MAX_COUNT_DIRECTIONS = 2  # per line
MAX_COUNT_CLASSES = 16
MAX_COUNT_ROWS = MAX_COUNT_LINES * MAX_COUNT_DIRECTIONS * MAX_COUNT_CLASSES  # 1024
MAX_COUNT = 1_000_000_000  # vehicles in one row of one period
MAX_PERIOD_S = 86400

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


def count_limits_problem(keys: Iterable[Tuple[str, str, str]]) -> Optional[str]:
    """
    Say which counting limit the (line, direction, class) ``keys`` pass, or None.

    The same check runs on one record (edge and server) and on what a device
    counted in a day (server).
    """
    unique = set(keys)
    lines = {line for line, _, _ in unique}
    classes = {class_name for _, _, class_name in unique}
    directions = len({(line, direction) for line, direction, _ in unique})
    if len(lines) > MAX_COUNT_LINES:
        return f'{len(lines)} counting lines, at most {MAX_COUNT_LINES}'
    if directions > MAX_COUNT_DIRECTIONS * len(lines):
        return (f'{directions} directions on {len(lines)} line(s), at most '
                f'{MAX_COUNT_DIRECTIONS} per line')
    if len(classes) > MAX_COUNT_CLASSES:
        return f'{len(classes)} classes, at most {MAX_COUNT_CLASSES}'
    return None


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


def _replay_problem(replay: Any) -> Optional[str]:
    return None if isinstance(replay, bool) else f'replay must be true or false, not {replay!r}'


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
            _replay_problem(self.replay), speed_kmh_problem(self.speed_kmh)])

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


@dataclass(frozen=True)
class CountRecord:
    """Vehicles counted on each line in one period (``POST /api/v1/counts``)."""

    record_id: str  # a UUID: the server stores each record once
    device_id: str
    camera_id: str
    period_start: str  # UTC ISO 8601
    period_s: int
    counts: Tuple[Tuple[str, str, str, int], ...]  # (line, direction, class_name, count)
    replay: bool = False  # counted in recorded images, not live
    # (line, direction, class_name, ((bin, vehicles), ...)): 2 km/h bins of measured speeds
    speeds: Optional[Tuple[Tuple[str, str, str, Tuple[Tuple[int, int], ...]], ...]] = None
    # (offset_s, line, direction, class_name, speed_kmh or None): one per counted vehicle
    vehicles: Optional[Tuple[Tuple[float, str, str, str, Optional[float]], ...]] = None
    scheme: Optional[str] = None  # the class scheme of the class names (uk6, coco)
    quality: Optional[Mapping[str, Any]] = None  # {"flags": [...], "observed_s": s}

    def __post_init__(self) -> None:
        """Refuse what the server would refuse, before it is queued."""
        row_problems = [problem for row in self.counts for problem in _count_row_problems(row)]
        keys = [(row[0], row[1], row[2]) for row in self.counts if len(row) > 2]
        counted = {(row[0], row[1], row[2]): row[3] for row in self.counts if len(row) == 4}
        refuse([
            uuid_problem('record_id', self.record_id),
            *name_problems(device_id=self.device_id, camera_id=self.camera_id),
            time_problem('period_start', self.period_start),
            None if is_integer_in(self.period_s, 1, MAX_PERIOD_S)
            else f'period of {self.period_s!r} s: an integer, at most {MAX_PERIOD_S} s',
            None if len(self.counts) <= MAX_COUNT_ROWS
            else f'{len(self.counts)} rows: at most {MAX_COUNT_ROWS}',
            *row_problems,
            None if len(set(keys)) == len(keys)
            else 'counts must name each (line, direction, class_name) once',
            # Limits on a record's lines, directions and classes (as the server's per day).
            None if any(row_problems) or not count_limits_problem(keys)
            else f'a count record of {count_limits_problem(keys)}',
            _replay_problem(self.replay),
            None if self.scheme is None or (isinstance(self.scheme, str)
                                            and is_valid_name(self.scheme))
            else f'scheme {self.scheme!r} is not a valid name',
            quality_problem(self.quality, self.period_s),
            *(speeds_problems(_as_lists(self.speeds), counted) if self.speeds is not None
              else ()),
            *(vehicles_problems(_as_lists(self.vehicles), self.period_s, counted)
              if self.vehicles is not None else ())])

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> 'CountRecord':
        """Return the record of a JSON body; ValueError says what the server would refuse."""
        values = json_fields(cls, body, COUNT_FIELDS, COUNT_OPTIONAL)
        rows = values['counts']
        if not isinstance(rows, list):
            raise ValueError('counts must be a list of rows')
        values['counts'] = tuple(
            tuple(json_fields(cls, row, COUNT_ROW_FIELDS)[name] for name in COUNT_ROW_FIELDS)
            for row in rows)
        for name in ('speeds', 'vehicles'):  # checked in __post_init__, kept as tuples
            if isinstance(values.get(name), list):
                values[name] = _as_tuples(values[name])
        return cls(**values)

    def to_json(self) -> Dict[str, Any]:
        """Return the JSON body (``replay`` only when true, the optional fields when known)."""
        body: Dict[str, Any] = {name: getattr(self, name) for name in COUNT_FIELDS[:5]}
        body['counts'] = [dict(zip(COUNT_ROW_FIELDS, row)) for row in self.counts]
        if self.replay:
            body['replay'] = True
        if self.scheme is not None:
            body['scheme'] = self.scheme
        if self.quality is not None:
            body['quality'] = {'flags': list(self.quality['flags']),
                               'observed_s': self.quality['observed_s']}
        if self.speeds:
            body['speeds'] = _as_lists(self.speeds)
        if self.vehicles:
            body['vehicles'] = _as_lists(self.vehicles)
        return body


def quality_problem(quality: Any, period_s: Any) -> Optional[str]:
    """Say what is wrong with a count record's ``quality`` (None if fine or absent)."""
    if quality is None:
        return None
    if not isinstance(quality, Mapping) or set(quality) != set(QUALITY_FIELDS):
        return 'quality must be {"flags": [...], "observed_s": seconds}'
    flags, observed = quality['flags'], quality['observed_s']
    if not isinstance(flags, (list, tuple)) or not all(
            isinstance(flag, str) and flag in QUALITY_FLAGS for flag in flags) \
            or len(set(flags)) != len(flags):
        return f'quality flags must be distinct, of {", ".join(QUALITY_FLAGS)}'
    limit = period_s if is_integer(period_s) else MAX_PERIOD_S
    if not (is_number(observed) and 0 <= observed <= limit):
        return f'observed_s {observed!r} is not a number of seconds in [0, {limit}]'
    return None


def _as_lists(value: Any) -> Any:
    """Return nested tuples as the JSON lists they travel as."""
    return [_as_lists(item) for item in value] if isinstance(value, (list, tuple)) else value


def _as_tuples(value: Any) -> Any:
    return tuple(_as_tuples(item) for item in value) if isinstance(value, list) else value


def _count_row_problems(row: Sequence[Any]) -> List[Optional[str]]:
    if len(row) != len(COUNT_ROW_FIELDS):
        return [f'count row {row!r} is not (line, direction, class_name, count)']
    line, direction, class_name, count = row
    return [*name_problems(line=line, direction=direction),
            class_name_problem(class_name) if isinstance(class_name, str)
            else 'class name must be text',
            None if is_integer_in(count, 0, MAX_COUNT)
            else f'count {count!r} is not an integer in [0, {MAX_COUNT}]']
