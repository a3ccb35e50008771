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
The wire contract of configuration pushed from the dashboard (edge <-> cloud).

An admin saves a device's desired configuration on the server as a new
version (1, 2, ...). The document is generic: ``{"parameters": {NAME: VALUE}}``
with bridge parameter names (``counting_lines``, ``counting_zones``, ...): the
server checks only its shape (:func:`parameters_problem`), the edge checks the
values with the same validation as ``ros2 param set`` and applies all or
nothing. The flow, light on a metered link:

- the answer to every heartbeat names the latest version (``config_version``,
  null when none); the heartbeat body is unchanged;
- only when that version differs from the one the edge last acted on, the
  edge fetches it: ``GET /api/v1/devices/{device}/config`` (404: none);
- the edge reports what it did: ``POST /api/v1/devices/{device}/config/report``
  with ``{"version": N, "state": "applied"|"refused", "reason": "..."}``.
"""

from __future__ import annotations

import math
import re
from typing import Any, Mapping, Optional

from vehicle_detection.wire import DEVICES_PATH
from vehicle_detection.wire_values import printable_text

HEARTBEAT_CONFIG_FIELD = 'config_version'  # in the answer to a heartbeat
APPLIED, REFUSED, PENDING = 'applied', 'refused', 'pending'
REPORTED_STATES = (APPLIED, REFUSED)  # what an edge reports; pending is the server's
MAX_CONFIG_PARAMETERS = 64
MAX_CONFIG_TEXT = 8192  # characters of one text value (32 lines of 200 characters fit)
MAX_CONFIG_LIST = 256  # items of one list value
MAX_REASON = 1000  # characters of a refusal's reason
MAX_CONFIG_VERSION = 2 ** 31 - 1
PARAMETER_NAME = re.compile(r'^[a-z][a-z0-9_]{0,63}$')


def device_config_path(device_id: str) -> str:
    """Return the path where ``device_id`` fetches its desired configuration."""
    return f'{DEVICES_PATH}/{device_id}/config'


def config_report_path(device_id: str) -> str:
    """Return the path where ``device_id`` reports the version it applied or refused."""
    return f'{DEVICES_PATH}/{device_id}/config/report'


def parameters_problem(parameters: Any) -> Optional[str]:
    """
    Say what is wrong with the shape of a document's ``parameters``, None if fine.

    An object of at most :data:`MAX_CONFIG_PARAMETERS` parameter names (lower
    case, digits, ``_``) to a bool, a finite number, a text or a list of
    those; whether a name and value suit the device is the edge's to judge.
    """
    if not isinstance(parameters, Mapping):
        return 'parameters must be an object of NAME: VALUE'
    if len(parameters) > MAX_CONFIG_PARAMETERS:
        return f'at most {MAX_CONFIG_PARAMETERS} parameters'
    for name, value in parameters.items():
        if not isinstance(name, str) or not PARAMETER_NAME.match(name):
            return f'{name!r}: a parameter name is lower case letters, digits and "_"'
        items = value if isinstance(value, list) else [value]
        if isinstance(value, list) and len(value) > MAX_CONFIG_LIST:
            return f'{name}: at most {MAX_CONFIG_LIST} items'
        for item in items:
            reason = _value_problem(item)
            if reason:
                return f'{name}: {reason}'
    return None


def _value_problem(value: Any) -> Optional[str]:
    if isinstance(value, int):  # bool too
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else 'numbers must be finite'
    if isinstance(value, str):
        if len(value) > MAX_CONFIG_TEXT:
            return f'a text is at most {MAX_CONFIG_TEXT} characters'
        try:
            printable_text(value)
        except ValueError as error:
            return str(error)
        return None
    return f'expected a bool, number or text (or a list of them), got {type(value).__name__}'
