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
The uploader's link to the server: its state, running figures, and the requests.

:class:`ServerLink` sends each request under its deadline (:mod:`transport`),
counts its bytes in the data budget, and judges the answer: the expected one,
or an error, a refusal that stops every upload (bad key, redirect), or an
unexpected answer (a 2xx that is not the server's: a captive portal, a proxy).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Callable, Dict, Optional, TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import requests

from vehicle_detection.core.bridge.budget import DataBudget
from vehicle_detection.core.bridge.transport import Answer, exchange
from vehicle_detection.wire import API_KEY_HEADER

if TYPE_CHECKING:
    from vehicle_detection.core.bridge.uploader import UploadSettings

Accepts = Callable[[Answer], bool]


class LinkState(str, Enum):
    """What the uploader knows of the link to the server."""

    UNKNOWN = 'unknown'
    UP = 'up'
    DOWN = 'down'  # no answer, or 5xx from /health
    UNAUTHORIZED = 'unauthorized'  # 401: the key is unknown or revoked
    REDIRECTED = 'redirected'  # 3xx: api_base_url is not the server's address
    UNEXPECTED = 'unexpected'  # a 2xx that is not the server's answer (a captive portal)

    def __str__(self) -> str:
        """Return the plain name, as diagnostics and heartbeats carry it."""
        return self.value


PAUSED = (LinkState.UNAUTHORIZED, LinkState.REDIRECTED)  # uploads pause


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


class ServerLink:
    """Sends requests to the server, counts their bytes and judges the answers."""

    def __init__(self, settings: Callable[[], UploadSettings], budget: DataBudget,
                 stats: LinkStats) -> None:
        self._settings = settings  # read at each request: a settings change applies at once
        self.budget = budget
        self.stats = stats

    def exchange(self, session: requests.Session, method: str, path: str, auth: bool = True,
                 data: bytes = b'', headers: Optional[Dict[str, str]] = None
                 ) -> Optional[Answer]:
        """Send one request (the key if ``auth``), count its bytes; None on a network error."""
        settings = self._settings()
        headers = dict(headers or {})
        if auth:
            headers[API_KEY_HEADER] = settings.api_key
        try:
            answer = exchange(session, method, settings.api_base_url.rstrip('/') + path,
                              headers, data, settings.timeout, settings.request_deadline)
        except requests.RequestException as error:
            self.budget.record(len(data), 0)  # it may have left: count it
            self.stats.requests_failed += 1
            self.stats.last_error = f'{method} {path}: {type(error).__name__}: {error}'[:300]
            return None
        sent = len(data) + sum(len(k) + len(v) + 4 for k, v in
                               {**session.headers, **headers}.items())
        self.budget.record(sent, answer.received_bytes)
        return answer

    def judge(self, answer: Optional[Answer], method: str, path: str,
              accepts: Accepts) -> bool:
        """Tell whether ``answer`` is the one expected; record why not (stats, link state)."""
        if answer is None:
            return False  # a network error: counted by exchange()
        if answer.status < 300 and accepts(answer):
            self.stats.requests_ok += 1
            return True
        self.stats.requests_failed += 1
        if answer.status < 300:  # a 2xx that is not the server's: a portal, a proxy, a cache
            self.unexpected(answer, path)
        else:
            self.stats.last_error = f'{method} {path}: HTTP {answer.status} ' \
                                    f'{answer.excerpt(200)}'[:300]
        return False

    def unexpected(self, answer: Answer, path: str) -> None:
        """Report an answer that is not the server's (the link state ``unexpected``)."""
        self.stats.link_state = LinkState.UNEXPECTED
        self.stats.last_error = (
            f'unexpected answer from {self.where(path)}: HTTP {answer.status} '
            f'{answer.content_type or "(no type)"} {answer.excerpt()!r}')[:300]

    def refused(self, answer: Answer) -> bool:
        """Tell whether the answer stops every upload (bad key, redirect); report it."""
        status = answer.status
        if status == 401:
            self.stats.link_state = LinkState.UNAUTHORIZED
            self.stats.last_error = 'the server refused the API key (HTTP 401)'
        elif 300 <= status < 400:
            self.stats.link_state = LinkState.REDIRECTED
            self.stats.last_error = (
                f'the server redirects (HTTP {status}) to '
                f"{answer.headers.get('Location', '?')}: set api_base_url to the final "
                f'address (redirects are not followed: the key would go with them)')[:300]
        return self.stats.link_state in PAUSED

    def where(self, path: str) -> str:
        """Return the URL of ``path``, without any credentials the base URL holds."""
        parts = urlsplit(self._settings().api_base_url.rstrip('/') + path)
        return urlunsplit(parts._replace(netloc=parts.netloc.rpartition('@')[2]))
