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
``Retry-After`` honoured up to ``max_retry_after``; new work ends a wait),
other 4xx are permanent for that request (403 included: the server refuses
that event, not the key). 401 means the key is wrong and a redirect that
the configured URL is: uploads pause and the fault is reported instead of
hammering the server. Redirects are never followed, so the key only goes to
the configured host, and ``GET /health`` carries no key.

Every request has a deadline on the whole of it and reads a bounded answer
(:mod:`transport`); a part counts as stored only when the answer is the
server's JSON naming it (:mod:`answers`): anything else (a captive portal's
page) leaves it queued and the link state ``unexpected``. An event the
server keeps failing with 5xx while it accepts the events behind it is a
poison event: it is held for a growing time so that it cannot hold back the
rest; when every event fails alike (an outage) none is held (:mod:`set_aside`).
"""

from __future__ import annotations

from dataclasses import dataclass
import json
import threading
import time
from typing import Callable, Dict, Optional

import requests

from vehicle_detection.core.backoff import Backoff
from vehicle_detection.core.bridge import answers
from vehicle_detection.core.bridge.budget import DataBudget
from vehicle_detection.core.bridge.config import BridgeSettings
from vehicle_detection.core.bridge.link import Accepts, LinkState, LinkStats, PAUSED, ServerLink
from vehicle_detection.core.bridge.outbox import ALERT, Event, FAILED, Outbox, PENDING, SENT
from vehicle_detection.core.bridge.set_aside import RETRY, SetAside, SUSPECT
from vehicle_detection.core.bridge.transport import Answer, new_session, retry_after_seconds
from vehicle_detection.wire import (
    alert_image_path, ALERTS_PATH, COUNTS_PATH, HEALTH_PATH, heartbeat_path,
    IDEMPOTENCY_HEADER, is_retryable, JPEG_CONTENT_TYPE)

AUTH_PAUSE_S = 300.0  # a refused key is tried again after this long (or a settings change)
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


class Uploader:
    """Owns the upload and health threads for one outbox."""

    def __init__(self, settings: UploadSettings, outbox: Outbox, budget: DataBudget,
                 health_figures: Optional[Callable[[], Dict[str, object]]] = None) -> None:
        self.settings = settings
        self.outbox = outbox
        self.budget = budget
        self.stats = LinkStats()
        self.link = ServerLink(lambda: self.settings, budget, self.stats)
        self.set_aside = SetAside(outbox, lambda: self.settings, self.stats)
        self._health_figures = health_figures or dict
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._drained = threading.Event()  # set when a round leaves nothing to send
        self._retry_at = 0.0  # time.monotonic() before which the server asked for no retry
        self._failed_rounds = 0
        self._health_unexpected = False  # the last health check had an unexpected answer
        self._threads = [threading.Thread(target=self._drain_loop, daemon=True,
                                          name='cloud-upload'),
                         threading.Thread(target=self._health_loop, daemon=True,
                                          name='cloud-health')]

    def start(self) -> None:
        """Start both threads."""
        for thread in self._threads:
            thread.start()

    def wake(self) -> None:
        """Tell the drain thread that an event was queued (this ends any wait)."""
        self._wake.set()

    def stop(self, timeout: float = 10.0, drain_s: float = 0.0) -> None:
        """
        Stop the threads (a request in flight ends by its deadline).

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

    # -- draining --------------------------------------------------------------------------
    def _drain_loop(self) -> None:
        session = new_session()
        while not self._stop.is_set():
            if self.stats.link_state in PAUSED or not self.settings.enable_alert_upload:
                self._wait(AUTH_PAUSE_S if self.stats.link_state in PAUSED
                           else self.settings.upload_interval)
                if self.stats.link_state in PAUSED:
                    self.stats.link_state = LinkState.UNKNOWN  # try the key and the URL again
                continue
            drained = self._drain_round(session)
            self._failed_rounds = 0 if drained else self._failed_rounds + 1
            if drained:
                self._drained.set()
            self._wait(self._next_round_in())

    def _next_round_in(self) -> Optional[float]:
        """
        Return how long to wait for the next round; None: until wake().

        After a failed round: ``upload_interval``, doubled while rounds fail (up
        to ``retry_max_delay``), and no less than a Retry-After asked. After a
        drained one: until a held event is due.
        """
        if self._failed_rounds:
            settings = self.settings
            growing = settings.upload_interval * 2.0 ** min(self._failed_rounds - 1, 30)
            return max(min(growing, max(settings.upload_interval, settings.retry_max_delay)),
                       self._retry_at - time.monotonic())
        due = self.outbox.next_release()
        return None if due is None else max(0.0, due - time.time())

    def _wait(self, timeout: Optional[float]) -> None:
        if not self._stop.is_set():  # stop() may have ended an earlier wait: never sleep on
            self._wake.wait(timeout)
        self._wake.clear()

    def _drain_round(self, session: requests.Session) -> bool:
        """Send open events oldest first; False when one could not go this round."""
        self.set_aside.new_round()
        after = 0  # events failing alone are passed over: the ones behind them are tried
        while not self._stop.is_set():
            event = self.outbox.next_open(after)
            if event is None:
                return not self.set_aside.suspected
            outcome = self._deliver(session, event)
            if outcome is None:
                return False
            if outcome == SUSPECT:
                after = event.seq
        return True

    def _deliver(self, session: requests.Session, event: Event) -> Optional[str]:
        """Send what is left of ``event``; return the outcome, None to end the round."""
        if event.alert_state == PENDING:
            try:  # serialised once: the same bytes on every try
                body = json.dumps(event.alert, allow_nan=False).encode()
            except ValueError:
                # Queued by an older version without the number check: the server would
                # refuse it (422) on every try; record why and let the others go.
                self.stats.permanent_failures += 1
                self.outbox.mark(event.seq, 'alert', FAILED,
                                 'not sendable: a number is not finite')
                return FAILED
            path = ALERTS_PATH if event.kind == ALERT else COUNTS_PATH
            stored = answers.alert_stored if event.kind == ALERT else answers.counts_stored
            last: Dict[str, Answer] = {}

            def post() -> Optional[Answer]:
                answer = self.link.exchange(session, 'POST', path, data=body, headers={
                    IDEMPOTENCY_HEADER: event.event_id, 'Content-Type': 'application/json'})
                if answer is not None:
                    last['answer'] = answer
                return answer

            outcome = self._send(event, 'alert', event.kind, 'POST', path, post,
                                 lambda answer: stored(answer, event.event_id))
            if outcome != SENT or event.kind != ALERT:
                return outcome  # a count record has no snapshot and is filed like an alert
            receipt = last['answer'].json_object() or {}
            filed_as = str(receipt.get('device_id') or '')
            self.stats.filed_as = filed_as if filed_as != self.settings.device_id else ''
            if event.image_state == PENDING and receipt.get('image_stored') is True:
                # An alert of the same frame sent this picture already: no upload.
                self.outbox.mark(event.seq, 'image', SENT, 'shared: already on the server')
                return SENT
        if event.image_state != PENDING:
            return SENT
        return self._deliver_image(session, event)

    def _deliver_image(self, session: requests.Session, event: Event) -> Optional[str]:
        if not self.settings.enable_image_upload:
            self.outbox.mark(event.seq, 'image', 'skipped', 'image upload disabled')
            return SENT
        if not self.budget.images_allowed():
            self.stats.budget_skipped_images += 1
            self.outbox.mark(event.seq, 'image', 'skipped', 'monthly data budget spent')
            return SENT
        try:
            data = self.outbox.read_snapshot(event)
            if not (data.startswith(b'\xff\xd8') and data.rstrip(b'\x00').endswith(b'\xff\xd9')):
                raise ValueError('the snapshot file is not a complete JPEG')
        except (OSError, ValueError) as error:
            self.stats.missing_snapshots += 1
            self.stats.last_error = f'snapshot of {event.event_id}: {error}'
            self.outbox.mark(event.seq, 'image', 'missing', str(error))
            return SENT
        path = alert_image_path(event.event_id)
        return self._send(event, 'image', 'image', 'PUT', path, lambda: self.link.exchange(
            session, 'PUT', path, data=data, headers={
                'Content-Type': JPEG_CONTENT_TYPE, IDEMPOTENCY_HEADER: event.event_id}),
            lambda answer: answers.image_stored(answer, event.event_id))

    def _send(self, event: Event, part: str, kind: str, method: str, path: str,
              request: Callable[[], Optional[Answer]], accepts: Accepts) -> Optional[str]:
        """
        Try one request up to ``retry_attempts`` times.

        Return SENT, FAILED (refused for good), HELD (a poison event, set
        aside), SUSPECT (failing alone so far) or None (try again next round).
        """
        backoff = Backoff(self.settings.retry_delay,
                          max(self.settings.retry_delay, self.settings.retry_max_delay),
                          jitter=0.5)
        for attempt in range(max(1, self.settings.retry_attempts)):
            if attempt:
                self.stats.retries += 1
            answer = request()
            if self.link.judge(answer, method, path, accepts):
                self.stats.link_state = LinkState.UP
                self._retry_at = 0.0  # the server takes events again
                self.outbox.mark(event.seq, part, SENT)
                self.set_aside.stored(kind)
                return SENT
            if answer is not None and self.link.refused(answer):
                return None
            if answer is not None and answer.status >= 300 and not is_retryable(answer.status):
                self.stats.permanent_failures += 1
                self.outbox.mark(event.seq, part, FAILED, self.stats.last_error)
                return FAILED
            if answer is None:
                self.stats.link_state = LinkState.DOWN
            delay = self._retry_delay(backoff, answer)  # a Retry-After holds the next rounds too
            # An unexpected 2xx stays queued too: retried, never failed nor held.
            outcome = self.set_aside.failed(event, kind, None if answer is None
                                            else answer.status)
            if outcome != RETRY:
                return outcome
            if attempt + 1 < self.settings.retry_attempts and self._pause(delay):
                return None
        return None

    def _retry_delay(self, backoff: Backoff, answer: Optional[Answer]) -> float:
        """Return the backoff delay, or what the server asked (Retry-After, capped)."""
        delay = backoff.next_delay()
        asked = None if answer is None else retry_after_seconds(
            answer.headers.get('Retry-After', ''), self.settings.max_retry_after)
        if asked is not None:
            self._retry_at = time.monotonic() + asked  # the next rounds wait as long
            delay = max(delay, asked)
        return delay

    def _pause(self, seconds: float) -> bool:
        """Wait up to ``seconds``; new work (wake) ends it early. True when stopping."""
        self._wait(seconds)
        return self._stop.is_set()

    # -- health and heartbeat ----------------------------------------------------------------
    def _health_loop(self) -> None:
        session = new_session()
        next_heartbeat = elapsed = 0.0
        while not self._stop.is_set():
            self._check_health(session)
            if elapsed >= next_heartbeat and self.stats.link_state == LinkState.UP:
                figures = {k: v for k, v in self._health_figures().items() if v is not None}
                path = heartbeat_path(self.settings.device_id)
                reply = self.link.exchange(session, 'POST', path, data=json.dumps(
                    figures, allow_nan=False).encode(), headers={
                    'Content-Type': 'application/json'})
                if reply is not None and not self.link.refused(reply):
                    self.link.judge(reply, 'POST', path, answers.server_ok)  # a 403 stops nothing
                next_heartbeat = elapsed + self.settings.heartbeat_interval
            if self._stop.wait(self.settings.health_interval):
                return
            elapsed += self.settings.health_interval

    def _check_health(self, session: requests.Session) -> None:
        answer = self.link.exchange(session, 'GET', HEALTH_PATH, auth=False)
        healthy = self.link.judge(answer, 'GET', HEALTH_PATH, answers.server_ok)
        if answer is None or answer.status >= 500:
            self.stats.link_state = LinkState.DOWN
            self.set_aside.link_failed()
        elif self.link.refused(answer) or answer.status in (408, 429):
            pass  # a redirect: reported, not followed; a busy server: no news of the link
        elif not healthy:  # not the server's answer (a portal, another web server)
            self.link.unexpected(answer, HEALTH_PATH)
            self._health_unexpected = True
            self.set_aside.link_failed()
        else:
            state = self.stats.link_state
            if state == LinkState.UNKNOWN:
                self.stats.link_state = LinkState.UP
            elif state == LinkState.DOWN or (
                    state == LinkState.UNEXPECTED and self._health_unexpected):
                self.stats.link_state = LinkState.UP
                self.set_aside.link_back()  # back after an outage: held events go now
                self._wake.set()  # and the queue drains now
            self._health_unexpected = False
