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

"""Server settings: command-line defaults, passed to worker processes by environment."""

from __future__ import annotations

from dataclasses import dataclass, fields
import os
from typing import Any, Dict

from vehicle_detection.cloud.server.retention import RetentionPolicy
from vehicle_detection.cloud.server.storage import DEFAULT_MAX_PIXELS
from vehicle_detection.wire import MAX_BODY_BYTES

DEFAULT_DB = 'sqlite:///var/cloud.db'
DEFAULT_STORAGE = 'var/images'
ENV_PREFIX = 'VD_CLOUD_'


@dataclass(frozen=True)
class ServerSettings:
    """Everything the app needs; every field has an embedded default."""

    db: str = DEFAULT_DB
    storage: str = DEFAULT_STORAGE
    max_body_bytes: int = MAX_BODY_BYTES
    rate_limit: float = 50.0  # requests a second per device; 0 turns it off
    rate_burst: float = 100.0
    online_after_s: float = 120.0  # a device without a heartbeat for longer is offline
    max_image_pixels: int = DEFAULT_MAX_PIXELS  # larger snapshots are refused (415)
    public_dashboard: bool = False  # reads need no login (a trusted LAN only)
    tls: bool = False  # served over https: cookies are Secure, HSTS is sent
    workers: int = 1  # worker processes (the rate limits are in the database, shared)
    # Retention (see retention.py and the README): days kept, 0 forever; a pass an hour.
    keep_pictures_days: float = RetentionPolicy.pictures_days
    keep_alerts_days: float = RetentionPolicy.alerts_days
    keep_counts_days: float = RetentionPolicy.counts_days
    retention_interval_s: float = 3600.0  # 0: no scheduled pass (`prune` still works)

    def retention(self) -> RetentionPolicy:
        """Return the retention policy of these settings."""
        return RetentionPolicy(self.keep_pictures_days, self.keep_alerts_days,
                               self.keep_counts_days)

    def to_env(self) -> Dict[str, str]:
        """Return the settings as ``VD_CLOUD_*`` variables for worker processes."""
        return {ENV_PREFIX + f.name.upper(): str(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_env(cls) -> 'ServerSettings':
        """Read the settings that :meth:`to_env` wrote; defaults for the rest."""
        values: Dict[str, Any] = {}
        for f in fields(cls):
            raw = os.environ.get(ENV_PREFIX + f.name.upper())
            if raw is not None:
                kind = type(getattr(cls(), f.name))
                values[f.name] = raw == 'True' if kind is bool else kind(raw)
        return cls(**values)
