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
Count records on the wire: what a box counted in one period, and the limits of counting.

Part of the wire contract (:mod:`vehicle_detection.wire` re-exports it): the
edge checks a record with :class:`CountRecord` before it queues it, and the
server's request models take the same fields, flags and limits from here, so
both refuse the same bodies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from vehicle_detection.wire_speeds import speeds_problems, vehicles_problems
from vehicle_detection.wire_values import (
    class_name_problem, is_integer, is_integer_in, is_number, is_valid_name, json_fields,
    name_problems, refuse, replay_problem, time_problem, uuid_problem)


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
# Fields of a count record (and an alert: wire.OPTIONAL_ALERT_FIELDS) an older server
# does not know: refused by it as unknown (422, extra_forbidden), the edge sends the body
# again without them, so that the counts (the alert) themselves still arrive. Also the
# ones json_fields takes as optional.
OPTIONAL_COUNT_FIELDS: Tuple[str, ...] = ('scheme', 'quality', 'speeds', 'vehicles')
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
            replay_problem(self.replay),
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
