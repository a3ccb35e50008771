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
Checks of single values on the wire: the edge's records and the server's models.

Names, class names, times, boxes and numbers: each check returns what is
wrong as text (None when the value is fine) or raises ValueError, so that
the edge refuses a value before it queues it with the same words as the
server. Standard library only; :mod:`vehicle_detection.wire` re-exports
every public name here.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
import math
import re
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple
import uuid

# A detection time is refused when it lies further ahead than a clock may be off, or
# before 2000 (a clock never set). Older recordings replayed into the system are fine.
MAX_CLOCK_SKEW_S = 300.0
EARLIEST_DETECTION = datetime(2000, 1, 1, tzinfo=timezone.utc)

# Limits of single fields, the same on both sides.
MAX_NAME_LENGTH = 64  # device, camera, line, direction and zone names (NAME_PATTERN)
MAX_CLASS_NAME_LENGTH = 64
MAX_TRACK_ID = 2 ** 62  # track ids are -1 (no tracker) up to this
MAX_IMAGE_SIDE = 100_000  # pixels

# Camera and device names end up in file names: keep them to a safe alphabet.
NAME_PATTERN = rf'^[A-Za-z0-9][A-Za-z0-9_.-]{{0,{MAX_NAME_LENGTH - 1}}}$'
_NAME = re.compile(NAME_PATTERN)


def is_valid_name(name: str) -> bool:
    """Tell whether ``name`` may be a device or camera id (letters, digits, ``_.-``)."""
    return bool(_NAME.match(name)) and '..' not in name


def is_integer(value: object) -> bool:
    """Tell whether ``value`` is an integer, and not a bool (JSON true is no number)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> bool:
    """Tell whether ``value`` is a finite int or float, and not a bool."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool) and
            math.isfinite(value))


def is_integer_in(value: object, low: int, high: int) -> bool:
    """Tell whether ``value`` is an integer (not a bool) in [``low``, ``high``]."""
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def printable_text(value: str) -> str:
    """
    Return ``value`` if it is text every database stores; raise ValueError if not.

    Refused: NUL and other control characters, and lone surrogates (not
    Unicode: they cannot be encoded as UTF-8).
    """
    if any(ord(c) < 32 or ord(c) == 127 or 0xD800 <= ord(c) <= 0xDFFF for c in value):
        raise ValueError('must not contain control characters or lone surrogates')
    return value


def plausible_time(value: datetime) -> datetime:
    """Refuse a time further ahead than a clock may be off, or before 2000 (clock never set)."""
    now = datetime.now(timezone.utc)
    if value > now + timedelta(seconds=MAX_CLOCK_SKEW_S):
        raise ValueError(f'lies more than {MAX_CLOCK_SKEW_S:g} s in the future '
                         f'(server time {now:%Y-%m-%dT%H:%M:%SZ}): check the clock')
    if value < EARLIEST_DETECTION:
        raise ValueError(f'lies before {EARLIEST_DETECTION:%Y-%m-%d}: check the clock')
    return value


def bbox_problem(bbox: Sequence[float]) -> Optional[str]:
    """Say what is wrong with a box ``[x1, y1, x2, y2]`` (None if it is one)."""
    if len(bbox) != 4 or not all(is_number(v) for v in bbox):
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


def name_problems(**names: Any) -> List[Optional[str]]:
    """Say, per ``field=value``, what is wrong with each name (None where it is valid)."""
    return [None if isinstance(value, str) and is_valid_name(value)
            else f'{field} {value!r} is not a valid name' for field, value in names.items()]


def time_problem(field: str, value: Any) -> Optional[str]:
    """Say what is wrong with an ISO 8601 time: no time zone, not plausible (None if fine)."""
    try:
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            raise ValueError('needs a time zone')
        plausible_time(moment)
    except (TypeError, ValueError) as error:
        return f'{field} {value!r}: {error}'
    return None


def uuid_problem(field: str, value: Any) -> Optional[str]:
    """Say that ``value`` is not a UUID (None if it is one)."""
    try:
        uuid.UUID(value)
    except (AttributeError, TypeError, ValueError):
        return f'{field} {value!r} is not a UUID'
    return None


def replay_problem(replay: Any) -> Optional[str]:
    """Say what is wrong with a body's ``replay`` flag (None if it is true or false)."""
    return None if isinstance(replay, bool) else f'replay must be true or false, not {replay!r}'


def refuse(problems: Sequence[Optional[str]]) -> None:
    """Raise ValueError naming every problem found (None: no problem)."""
    found = [problem for problem in problems if problem]
    if found:
        raise ValueError('; '.join(found))


def json_fields(kind: type, body: Mapping[str, Any], fields: Tuple[str, ...],
                optional: Tuple[str, ...] = ()) -> Dict[str, Any]:
    """Return ``body``'s fields as keyword arguments; refuse unknown or missing ones."""
    if not isinstance(body, Mapping):
        raise ValueError(f'a {kind.__name__} body is a JSON object')
    refuse([f'unknown field {name!r}' for name in sorted(set(body) - set(fields))]
           + [f'missing field {name!r}' for name in fields
              if name not in body and name not in optional])
    return dict(body)
