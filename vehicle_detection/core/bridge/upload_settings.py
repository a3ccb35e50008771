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

"""The uploader's settings: a slice of the bridge's, plus the device identity."""

from __future__ import annotations

from dataclasses import dataclass

from vehicle_detection.core.bridge.config import BridgeSettings

_BRIDGE = BridgeSettings()  # the upload settings' defaults are the bridge's


@dataclass(frozen=True)
class UploadSettings:
    """
    The original system's upload settings, plus the device identity.

    A slice of the bridge's settings (``params.slice_of(UploadSettings,
    settings, api_key=...)``); the defaults are the bridge's.
    """

    api_base_url: str
    api_key: str
    device_id: str
    enable_alert_upload: bool = _BRIDGE.enable_alert_upload
    enable_image_upload: bool = _BRIDGE.enable_image_upload
    upload_interval: float = _BRIDGE.upload_interval  # before a failed round is tried again
    retry_attempts: int = _BRIDGE.retry_attempts
    retry_delay: float = _BRIDGE.retry_delay  # first backoff delay, doubled per retry
    retry_max_delay: float = 60.0
    timeout: float = 10.0  # each connect and each read
    request_deadline: float = _BRIDGE.request_deadline  # one whole request: connect, send, answer
    max_retry_after: float = _BRIDGE.max_retry_after  # the longest wait a Retry-After imposes
    hold_initial: float = 60.0  # the first hold of a poison event, doubled at each next one
    hold_max: float = 3600.0
    heartbeat_interval: float = _BRIDGE.heartbeat_interval
    health_interval: float = _BRIDGE.health_interval
