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
Configuration pushed from the dashboard, at the edge: which parameters, and its record.

A version's document names bridge parameters and their values
(:mod:`vehicle_detection.wire_config`). The effective values are the local
configuration (the config file, ``--set``) overlaid with the latest applied
document: a parameter an older version set and the new one leaves out goes
back to its local value. What was applied is kept in ``remote_config.json``
in the bridge's data folder, so a restart applies it again before the first
heartbeat.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
import json
import os
from pathlib import Path
from typing import Any, Dict, FrozenSet, Mapping, Optional, Sequence

from vehicle_detection.core.params import ParamError, ParamSpec, validate_values
from vehicle_detection.wire_config import (
    APPLIED, MAX_CONFIG_VERSION, MAX_REASON, parameters_problem, REFUSED)

STATE_FILE = 'remote_config.json'
# Never set from the server: the link and the identity (a mistake there cuts the box off
# the server that could undo it), remote_config itself, and replay (whether the images
# are live is a fact of how the box was started, not a setting to change from afar).
NOT_REMOTE: FrozenSet[str] = frozenset(
    {'enabled', 'api_base_url', 'allow_insecure_http', 'api_key_file', 'device_id',
     'remote_config', 'replay'})


class ConfigRefused(ValueError):
    """A configuration the edge does not apply; the message says why (sent to the server)."""


def remote_names(specs: Sequence[ParamSpec]) -> FrozenSet[str]:
    """Return the parameters a remote configuration may set: changeable while running."""
    return frozenset(spec.name for spec in specs
                     if not spec.read_only and spec.name not in NOT_REMOTE)


@dataclass(frozen=True)
class RemoteConfig:
    """One version of a device's desired configuration, as the server sent it."""

    version: int
    parameters: Dict[str, Any] = field(default_factory=dict)


def parse_document(document: Optional[Mapping[str, Any]]) -> RemoteConfig:
    """Return the configuration of a ``GET .../config`` answer; ValueError if malformed."""
    if not isinstance(document, Mapping):
        raise ValueError('the configuration is not a JSON object')
    version = document.get('version')
    if isinstance(version, bool) or not isinstance(version, int) or not (
            1 <= version <= MAX_CONFIG_VERSION):
        raise ValueError(f'the configuration has no valid version: {version!r}')
    parameters = document.get('parameters')
    reason = parameters_problem(parameters)
    if reason:
        raise ConfigRefused(reason)
    return RemoteConfig(version, dict(parameters))  # type: ignore[arg-type]  # checked


def changes_for(config: RemoteConfig, previous: Optional[RemoteConfig],
                local: Mapping[str, Any], specs: Sequence[ParamSpec]) -> Dict[str, Any]:
    """
    Return the parameter values to set for ``config``, in their declared types.

    Raises :class:`ConfigRefused` naming every parameter a remote configuration
    may not set, or each value its spec refuses (an integer is taken for a
    float, as by ``ros2 param set``). Setting the values whole is the node's
    business, with its own validation of the set (the checks across
    parameters). Parameters ``previous`` set and ``config`` leaves out go back
    to their ``local`` values.
    """
    allowed = remote_names(specs)
    refused = sorted(name for name in config.parameters if name not in allowed)
    if refused:
        raise ConfigRefused(
            f'{", ".join(refused)}: not settable from the server (settable: '
            f'{", ".join(sorted(allowed))})')
    changes = {name: local[name] for name in (previous.parameters if previous else {})
               if name not in config.parameters and name in allowed}
    try:  # each value's type and range, with the words of the node's own validation
        changes.update(validate_values(specs, config.parameters))
    except ParamError as error:
        raise ConfigRefused(str(error)) from error
    return changes


@dataclass
class ConfigRecord:
    """What this edge did with the latest version it saw; kept across restarts."""

    version: int = 0  # the last version acted on; 0: none yet
    state: str = ''  # applied or refused
    reason: str = ''
    reported: bool = True  # the server knows the state (a report is due otherwise)
    applied: Optional[RemoteConfig] = None  # the version in force, if any

    def outcome(self, version: int, reason: Optional[str],
                config: Optional[RemoteConfig] = None) -> None:
        """Record that ``version`` was applied (``reason`` None) or refused, to report."""
        self.version, self.reported = version, False
        self.state, self.reason = (APPLIED, '') if reason is None else (
            REFUSED, reason[:MAX_REASON])
        if reason is None and config is not None:
            self.applied = config

    def report(self) -> Dict[str, Any]:
        """Return the body of the report of the latest outcome."""
        return {'version': self.version, 'state': self.state, 'reason': self.reason}


class ConfigFile:
    """The :class:`ConfigRecord` in ``data_dir/remote_config.json``, written atomically."""

    def __init__(self, data_dir: str) -> None:
        self.path = Path(data_dir).expanduser() / STATE_FILE

    def load(self) -> ConfigRecord:
        """Return the record; an empty one when there is none or it cannot be read."""
        try:
            stored = json.loads(self.path.read_text())
            applied = stored.pop('applied', None)
            record = ConfigRecord(**stored)
            if applied is not None:
                record.applied = RemoteConfig(int(applied['version']),
                                              dict(applied['parameters']))
            return record
        except FileNotFoundError:
            return ConfigRecord()
        except (OSError, ValueError, TypeError, KeyError) as error:
            # A damaged file: the server's latest version is fetched and applied again.
            raise ConfigFileDamaged(f'{self.path}: {error}') from error

    def save(self, record: ConfigRecord) -> None:
        """Write the record so that a crash leaves the old one or the new one, whole."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(f'.{STATE_FILE}.tmp')
        with open(temporary, 'w') as stream:
            json.dump(asdict(record), stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, self.path)


class ConfigFileDamaged(ValueError):
    """The record of applied configuration cannot be read."""
