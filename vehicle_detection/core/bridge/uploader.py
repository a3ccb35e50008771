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
The upload worker: drains the outbox in order over a flaky link.

Runs in its own threads (never a ROS executor): one drains the outbox, one
checks ``/health`` and sends heartbeats. Each event goes as alert JSON, then
its JPEG, both keyed by the event id (a period's traffic counts go as one
JSON body keyed by its record id), so a retry after any failure or crash
is harmless. Per the wire contract 5xx, 408, 429 and network errors are
retried (``retry_attempts`` a round, exponential backoff with jitter, and
``Retry-After`` honoured), other 4xx are permanent for that request (403
included: the server refuses that event, not the key). 401 means the key is
wrong and a redirect that the configured URL is: uploads pause and the fault
is reported instead of hammering the server. Redirects are never followed,
so the key only goes to the configured host, and ``GET /health`` carries no
key. An event the server keeps failing with 5xx while it answers its health
check is set aside for a while (:meth:`Outbox.count_attempt`), so that one
poison event cannot hold back the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
import json
import threading
from typing import Callable, Dict, List, Optional

import requests

from vehicle_detection.core.backoff import Backoff
from vehicle_detection.core.bridge.budget import DataBudget
from vehicle_detection.core.bridge.config import BridgeSettings
from vehicle_detection.core.bridge.link import LinkState, LinkStats
from vehicle_detection.core.bridge.outbox import ALERT, Event, FAILED, Outbox, PENDING, SENT
from vehicle_detection.wire import (
    alert_image_path, ALERTS_PATH, API_KEY_HEADER, COUNTS_PATH, HEALTH_PATH, heartbeat_path,
    IDEMPOTENCY_HEADER, is_retryable, JPEG_CONTENT_TYPE)

AUTH_PAUSE_S = 300.0  # a refused key is tried again after this long (or a settings change)


PAUSED = (LinkState.UNAUTHORIZED, LinkState.REDIRECTED)  # uploads wait AUTH_PAUSE_S
HELD = 'held'  # _send's outcome for an event set aside
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
    upload_interval: float = _BRIDGE.upload_interval  # seconds between rounds after a failure
    retry_attempts: int = _BRIDGE.retry_attempts
    retry_delay: float = _BRIDGE.retry_delay  # first backoff delay, doubled per retry
    retry_max_delay: float = 60.0
    timeout: float = 10.0
    heartbeat_interval: float = _BRIDGE.heartbeat_interval
    health_interval: float = _BRIDGE.health_interval


class Uploader:
    """Owns the upload and health threads for one outbox."""

    def __init__(self, settings: UploadSettings, outbox: Outbox, budget: DataBudget,
                 health_figures: Optional[Callable[[], Dict[str, object]]] = None) -> None:
        self.settings = settings
        self.outbox = outbox
        self.budget = budget
        self.stats = LinkStats()
        self._health_figures = health_figures or dict
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._drained = threading.Event()  # set when a round leaves nothing to send
        self._threads = [threading.Thread(target=self._drain_loop, daemon=True,
                                          name='cloud-upload'),
                         threading.Thread(target=self._health_loop, daemon=True,
                                          name='cloud-health')]

    def start(self) -> None:
        """Start both threads."""
        for thread in self._threads:
            thread.start()

    def wake(self) -> None:
        """Tell the drain thread that an event was queued."""
        self._wake.set()

    def stop(self, timeout: float = 10.0, drain_s: float = 0.0) -> None:
        """
        Stop the threads (an upload in flight ends by its own timeout).

        With ``drain_s``, what is queued gets up to that long to go first (the
        last period's counts, alerts confirmed at the stop); the rest stays in
        the outbox for the next start.
        """
        if drain_s > 0 and self._threads[0].is_alive():
            self._drained.clear()
            self._wake.set()
            self._drained.wait(drain_s)
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout)

    # -- HTTP ------------------------------------------------------------------------------
    def _exchange(self, session: requests.Session, method: str, path: str,
                  auth: bool = True, **options: object) -> Optional[requests.Response]:
        """Send one request (the key if ``auth``), count its bytes; None on a network error."""
        headers = dict(options.pop('headers', None) or {})  # type: ignore[call-overload]
        if 'json' in options:  # serialise once: the same bytes are sent and counted
            options['data'] = json.dumps(options.pop('json'), allow_nan=False).encode()
            headers['Content-Type'] = 'application/json'
        if auth:
            headers[API_KEY_HEADER] = self.settings.api_key
        data = options.get('data')
        body = data if isinstance(data, bytes) else b''
        try:
            # Never follow a redirect: the key would go to whatever host it names.
            response = session.request(method, self.settings.api_base_url.rstrip('/') + path,
                                       timeout=self.settings.timeout, headers=headers,
                                       allow_redirects=False, **options)  # type: ignore
        except requests.RequestException as error:
            self.budget.record(len(body), 0)  # it may have left: count it
            self.stats.requests_failed += 1
            self.stats.last_error = f'{method} {path}: {type(error).__name__}: {error}'[:300]
            return None
        sent = len(body) + sum(len(k) + len(v) + 4 for k, v in
                               {**session.headers, **headers}.items())
        self.budget.record(sent, len(response.content) + sum(
            len(k) + len(v) + 4 for k, v in response.headers.items()))
        if response.status_code < 300:
            self.stats.requests_ok += 1
        else:
            self.stats.requests_failed += 1
            self.stats.last_error = f'{method} {path}: HTTP {response.status_code} ' \
                                    f'{response.text[:200]}'
        return response

    @staticmethod
    def _session() -> requests.Session:
        session = requests.Session()
        session.trust_env = False  # no proxy or .netrc credentials from the environment
        return session

    # -- draining --------------------------------------------------------------------------
    def _drain_loop(self) -> None:
        session = self._session()
        while not self._stop.is_set():
            if self.stats.link_state in PAUSED or not self.settings.enable_alert_upload:
                self._wait(AUTH_PAUSE_S if self.stats.link_state in PAUSED
                           else self.settings.upload_interval)
                if self.stats.link_state in PAUSED:
                    self.stats.link_state = LinkState.UNKNOWN  # try the key and the URL again
                continue
            # A failed round waits for the next; an empty outbox waits for wake().
            drained = self._drain_round(session)
            if drained:
                self._drained.set()
            self._wait(None if drained else self.settings.upload_interval)

    def _wait(self, timeout: Optional[float]) -> None:
        self._wake.wait(timeout)
        self._wake.clear()

    def _drain_round(self, session: requests.Session) -> bool:
        """Send open events oldest first; False when one could not go this round."""
        while not self._stop.is_set():
            event = self.outbox.next_open()
            if event is None:
                return True
            if not self._deliver(session, event):
                return False
        return True

    def _deliver(self, session: requests.Session, event: Event) -> bool:
        if event.alert_state == PENDING:
            try:  # serialised once: the same bytes on every try
                body = json.dumps(event.alert, allow_nan=False).encode()
            except ValueError:
                # Queued by an older version without the number check: the server would
                # refuse it (422) on every try; record why and let the others go.
                self.stats.permanent_failures += 1
                self.outbox.mark(event.seq, 'alert', FAILED,
                                 'not sendable: a number is not finite')
                return True
            answers: List[requests.Response] = []
            path = ALERTS_PATH if event.kind == ALERT else COUNTS_PATH

            def post() -> Optional[requests.Response]:
                answer = self._exchange(session, 'POST', path, data=body,
                                        headers={IDEMPOTENCY_HEADER: event.event_id,
                                                 'Content-Type': 'application/json'})
                if answer is not None:
                    answers.append(answer)
                return answer

            outcome = self._send(session, event, 'alert', post)
            if outcome is None:
                return False
            if outcome in (FAILED, HELD) or event.kind != ALERT:
                return True  # a count record has no snapshot and is filed like an alert
            filed_as = str(_answer_field(answers[-1], 'device_id') or '')
            self.stats.filed_as = filed_as if filed_as != self.settings.device_id else ''
            if event.image_state == PENDING and _answer_field(answers[-1], 'image_stored'):
                # An alert of the same frame sent this picture already: no upload.
                self.outbox.mark(event.seq, 'image', SENT, 'shared: already on the server')
                return True
        if event.image_state != PENDING:
            return True
        if not self.settings.enable_image_upload:
            self.outbox.mark(event.seq, 'image', 'skipped', 'image upload disabled')
            return True
        if not self.budget.images_allowed():
            self.stats.budget_skipped_images += 1
            self.outbox.mark(event.seq, 'image', 'skipped', 'monthly data budget spent')
            return True
        try:
            data = self.outbox.read_snapshot(event)
            if not (data.startswith(b'\xff\xd8') and data.rstrip(b'\x00').endswith(b'\xff\xd9')):
                raise ValueError('the snapshot file is not a complete JPEG')
        except (OSError, ValueError) as error:
            self.stats.missing_snapshots += 1
            self.stats.last_error = f'snapshot of {event.event_id}: {error}'
            self.outbox.mark(event.seq, 'image', 'missing', str(error))
            return True
        return self._send(session, event, 'image', lambda: self._exchange(
            session, 'PUT', alert_image_path(event.event_id), data=data,
            headers={'Content-Type': JPEG_CONTENT_TYPE,
                     IDEMPOTENCY_HEADER: event.event_id})) is not None

    def _send(self, session: requests.Session, event: Event, part: str,
              request: Callable[[], Optional[requests.Response]]) -> Optional[str]:
        """Try one request up to ``retry_attempts`` times; return SENT, FAILED, HELD or None."""
        backoff = Backoff(self.settings.retry_delay,
                          max(self.settings.retry_delay, self.settings.retry_max_delay),
                          jitter=0.5)
        for attempt in range(max(1, self.settings.retry_attempts)):
            if attempt:
                self.stats.retries += 1
            response = request()
            status = None if response is None else response.status_code
            if status is not None and status < 300:
                self.stats.link_state = LinkState.UP
                self.outbox.mark(event.seq, part, SENT)
                return SENT
            if response is not None and self._link_refused(response):
                return None
            if not is_retryable(status):
                self.stats.permanent_failures += 1
                self.outbox.mark(event.seq, part, FAILED, self.stats.last_error)
                return FAILED
            if response is None:
                self.stats.link_state = LinkState.DOWN
            # A 5xx while the server's health check passes is this event's own fault.
            server_error = status is not None and status >= 500 \
                and self.stats.link_state == LinkState.UP
            if self.outbox.count_attempt(event.seq, self.stats.last_error, server_error):
                self.stats.last_error = f'event {event.event_id} set aside after repeated ' \
                                        f'server errors: {self.stats.last_error}'[:300]
                return HELD
            delay = backoff.next_delay()
            retry_after = response.headers.get('Retry-After', '') if response is not None else ''
            if retry_after.isdigit():
                delay = max(delay, float(retry_after))
            if attempt + 1 < self.settings.retry_attempts and self._stop.wait(delay):
                return None
        return None

    def _link_refused(self, response: requests.Response) -> bool:
        """Tell whether the answer stops every upload (bad key, redirect); report it."""
        status = response.status_code
        if status == 401:
            self.stats.link_state = LinkState.UNAUTHORIZED
            self.stats.last_error = 'the server refused the API key (HTTP 401)'
        elif 300 <= status < 400:
            self.stats.link_state = LinkState.REDIRECTED
            self.stats.last_error = (
                f'the server redirects (HTTP {status}) to '
                f"{response.headers.get('Location', '?')}: set api_base_url to the final "
                f'address (redirects are not followed: the key would go with them)')[:300]
        return self.stats.link_state in PAUSED

    # -- health and heartbeat ----------------------------------------------------------------
    def _health_loop(self) -> None:
        session = self._session()
        next_heartbeat = elapsed = 0.0
        while not self._stop.is_set():
            response = self._exchange(session, 'GET', HEALTH_PATH, auth=False)
            if response is None or response.status_code >= 500:
                self.stats.link_state = LinkState.DOWN
            elif self._link_refused(response):  # a redirect: reported, not followed
                pass
            elif self.stats.link_state in (LinkState.DOWN, LinkState.UNKNOWN):
                self.stats.link_state = LinkState.UP
                self._wake.set()  # the link is back: drain now
            if elapsed >= next_heartbeat and self.stats.link_state == LinkState.UP:
                figures = {k: v for k, v in self._health_figures().items() if v is not None}
                reply = self._exchange(session, 'POST', heartbeat_path(self.settings.device_id),
                                       json=figures)
                if reply is not None:
                    self._link_refused(reply)  # a 403 (another device's name) stops nothing
                next_heartbeat = elapsed + self.settings.heartbeat_interval
            if self._stop.wait(self.settings.health_interval):
                return
            elapsed += self.settings.health_interval


def _answer_field(response: requests.Response, name: str) -> object:
    """Return a field of a JSON answer (None if absent, or not a JSON object)."""
    try:
        return response.json().get(name)
    except (ValueError, AttributeError):
        return None
