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

"""What the uploader knows of its link to the server: a state and running figures."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class LinkState(str, Enum):
    """What the uploader knows of the link to the server."""

    UNKNOWN = 'unknown'
    UP = 'up'
    DOWN = 'down'  # no answer, or 5xx from /health
    UNAUTHORIZED = 'unauthorized'  # 401: the key is unknown or revoked
    REDIRECTED = 'redirected'  # 3xx: api_base_url is not the server's address

    def __str__(self) -> str:
        """Return the plain name, as diagnostics and heartbeats carry it."""
        return self.value


@dataclass
class LinkStats:
    """What the link did (read by diagnostics, heartbeats and the health service)."""

    link_state: LinkState = LinkState.UNKNOWN
    requests_ok: int = 0
    requests_failed: int = 0
    retries: int = 0
    permanent_failures: int = 0
    missing_snapshots: int = 0
    budget_skipped_images: int = 0
    last_error: str = ''
    filed_as: str = ''  # the device the server files alerts under, when not device_id

    @property
    def success_rate(self) -> float:
        """Share of requests that succeeded (1.0 before any)."""
        total = self.requests_ok + self.requests_failed
        return self.requests_ok / total if total else 1.0
