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
Fetch, apply and report the dashboard's configuration, after each heartbeat.

Runs on the uploader's health thread (never the executor): the answer to a
heartbeat names the latest version; only when it differs from the version
this edge last acted on is the configuration fetched (a few hundred bytes on
the metered link, once per change). Applying it is the node's business
(``apply`` hands it to the executor and waits for the verdict); the outcome
is recorded on disk first, then reported, and reported again after the next
heartbeats until the server has it.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Callable, Mapping, Optional

from vehicle_detection.core.bridge.remote_config import (
    ConfigFile, ConfigRecord, ConfigRefused, parse_document, RemoteConfig)
from vehicle_detection.core.bridge.transport import Answer
from vehicle_detection.wire import is_retryable
from vehicle_detection.wire_config import (
    config_report_path, device_config_path, HEARTBEAT_CONFIG_FIELD, MAX_CONFIG_VERSION)

#: sends one request: (method, path, data=..., headers=...) -> the answer, None on a network error
Exchange = Callable[..., Optional[Answer]]
#: applies a configuration on the executor; returns why it was refused, None when applied;
#: raises TimeoutError when the node did not get to it
Apply = Callable[[RemoteConfig], Optional[str]]
DISABLED = ('remote_config is false on this device: its local configuration wins '
            '(set remote_config: true to take the configuration from the server)')
log = logging.getLogger('vehicle_detection.remote_config')


class ConfigSync:
    """The edge's side of remote configuration: what was seen, applied and reported."""

    def __init__(self, store: ConfigFile, record: ConfigRecord, enabled: bool,
                 apply: Apply, logger: Any = log) -> None:
        self.log = logger  # logging's or a ROS node's: one formatted message per call
        self.store = store
        self.record = record
        self.enabled = enabled
        self._apply = apply

    def after_heartbeat(self, exchange: Exchange, device_id: str,
                        answer: Optional[Mapping[str, Any]]) -> None:
        """Act on the version a heartbeat's answer names, then report any outcome due."""
        desired = (answer or {}).get(HEARTBEAT_CONFIG_FIELD)
        if (isinstance(desired, int) and not isinstance(desired, bool)
                and 1 <= desired <= MAX_CONFIG_VERSION and desired != self.record.version):
            self._act(exchange, device_id, desired)
        if not self.record.reported:
            self._report(exchange, device_id)

    def _act(self, exchange: Exchange, device_id: str, desired: int) -> None:
        if not self.enabled:  # nothing fetched: the box keeps its own configuration
            self._record(desired, DISABLED)
            return
        path = device_config_path(device_id)
        answer = exchange('GET', path)
        if answer is None or answer.status != 200:  # tried again after the next heartbeat
            self.log.warning(f'configuration {desired} not fetched: ' + (
                'network error' if answer is None else f'HTTP {answer.status}'))
            return
        try:
            config = parse_document(answer.json_object())
        except ConfigRefused as error:  # the server's answer, but not a configuration
            self._record(desired, str(error))
            return
        except ValueError as error:  # not the server's answer (a portal): try again later
            self.log.warning(f'configuration {desired}: unexpected answer: {error}')
            return
        try:
            reason = self._apply(config)
        except TimeoutError:
            self.log.warning(f'configuration {config.version} not applied yet: the node is busy')
            return
        self._record(config.version, reason, config)

    def _record(self, version: int, reason: Optional[str],
                config: Optional[RemoteConfig] = None) -> None:
        self.record.outcome(version, reason, config)
        if reason is None:
            self.log.info(f'configuration version {version} from the server applied')
        else:
            self.log.warning(f'configuration version {version} from the server refused: {reason}')
        self._save()

    def _report(self, exchange: Exchange, device_id: str) -> None:
        answer = exchange('POST', config_report_path(device_id),
                          data=json.dumps(self.record.report()).encode(),
                          headers={'Content-Type': 'application/json'})
        if answer is None or is_retryable(answer.status) or 300 <= answer.status < 400:
            return  # reported after the next heartbeat
        if answer.status >= 400:  # refused for good (an older server, a deleted version)
            self.log.warning(f'configuration report refused: HTTP {answer.status} '
                             f'{answer.excerpt()}')
        self.record.reported = True
        self._save()

    def _save(self) -> None:
        try:
            self.store.save(self.record)
        except OSError as error:  # the outcome stands; only a restart would forget it
            self.log.warning(f'cannot record the configuration state in {self.store.path}: '
                             f'{error}')
