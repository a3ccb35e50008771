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
HTTP with request deadlines: a client that sends its request too slowly is cut off.

uvicorn waits for a half-sent request for ever, so a few thousand sockets
that trickle their headers or bodies (slowloris) use up the file descriptors
and the server stops answering. Here every request has a deadline:

- the request line and headers within ``VD_CLOUD_READ_TIMEOUT`` seconds of
  the connection opening (or of the first byte of a later request on it);
- the body no pause longer than that, and a total deadline: the read timeout
  (grace) plus one second per ``VD_CLOUD_MIN_BODY_RATE`` bytes received.
  A body slower on average than that rate is cut off, however it trickles; a
  login of 60 bytes sent one byte every 5 s is gone after about 10 s, while a
  5 MB snapshot over a 64 kbit/s uplink (8 KiB/s, the default rate) still
  gets in (about 650 s).

Time the server itself holds the body (uvicorn stops reading while the app
has not taken what came, or has not yet answered ``Expect: 100-continue``)
is not the client's. A connection cut off is logged in one line naming the
client, and the request it was sending learns that its client is gone. Idle
keep-alive connections are uvicorn's (``timeout_keep_alive``).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
from typing import Any, NamedTuple, Optional

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

READ_TIMEOUT_ENV = 'VD_CLOUD_READ_TIMEOUT'
MIN_BODY_RATE_ENV = 'VD_CLOUD_MIN_BODY_RATE'
DEFAULT_READ_TIMEOUT_S = 10.0
DEFAULT_MIN_BODY_RATE = 8 * 1024  # bytes/s: 64 kbit/s, below a poor 4G or an EDGE uplink
CUT_OFF = 'vd_cut_off'  # request state: its connection was closed for its deadline
log = logging.getLogger('vehicle_detection.cloud.http')


class Deadlines(NamedTuple):
    """The limits every request gets."""

    read_timeout_s: float  # headers in total; longest pause in a body; a body's grace
    min_body_rate: float  # bytes/s a body must average after its grace


class DeadlineHttpProtocol(HttpToolsProtocol):
    """httptools' protocol, closing connections whose request does not arrive in time."""

    _deadline: Optional[asyncio.TimerHandle] = None
    _in_body = False  # the headers are in, the body is not
    _body_start = 0.0  # loop time the headers were in
    _body_bytes = 0

    def connection_made(self, transport: Any) -> None:
        """Start the clock for the first request."""
        super().connection_made(transport)
        self._arm(self.loop.time() + deadlines().read_timeout_s)

    def connection_lost(self, exc: Optional[Exception]) -> None:
        """Stop the clock."""
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        """Start the clock for a later request's headers (the first one's runs already)."""
        super().on_message_begin()
        self._in_body = False
        if self._deadline is None:
            self._arm(self.loop.time() + deadlines().read_timeout_s)

    def on_headers_complete(self) -> None:
        """Start the clock of the body."""
        super().on_headers_complete()
        self._in_body, self._body_start, self._body_bytes = True, self.loop.time(), 0
        self._arm_body()

    def on_body(self, body: bytes) -> None:
        """Count the body; move the deadline to its next chunk or its end, whichever is first."""
        super().on_body(body)
        self._body_bytes += len(body)
        self._arm_body()

    def on_message_complete(self) -> None:
        """Stop the clock: the request is in."""
        super().on_message_complete()
        self._in_body = False
        self._disarm()

    def _arm_body(self) -> None:
        limits = deadlines()
        total = (self._body_start + limits.read_timeout_s
                 + self._body_bytes / limits.min_body_rate)
        self._arm(min(self.loop.time() + limits.read_timeout_s, total))

    def _arm(self, when: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_at(when, self._expire)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _server_holds_the_body(self) -> bool:
        cycle = self.cycle
        return cycle is not None and not cycle.response_complete and (
            self.flow.read_paused or cycle.waiting_for_100_continue)

    def _expire(self) -> None:
        self._deadline = None
        limits = deadlines()
        if self._server_holds_the_body():  # not the client's delay: a fresh grace
            self._body_start = (self.loop.time()
                                - self._body_bytes / limits.min_body_rate)
            self._arm_body()
            return
        client = f'{self.client[0]}:{self.client[1]}' if self.client else 'unknown'
        if self._in_body:
            self.scope['state'][CUT_OFF] = True  # the app, if reading, logs no second line
            log.warning('closing the connection of %s: request body of %s %s not received '
                        'in time (%d bytes in %.1f s; a body may pause %g s and must average '
                        '%d bytes/s after that)', client, self.scope['method'],
                        self.scope.get('path', ''), self._body_bytes,
                        self.loop.time() - self._body_start, limits.read_timeout_s,
                        limits.min_body_rate)
        else:
            log.warning('closing the connection of %s: request not received within %g s',
                        client, limits.read_timeout_s)
        self.transport.close()


@functools.lru_cache(maxsize=1)
def deadlines() -> Deadlines:
    """
    Return the limits from ``VD_CLOUD_READ_TIMEOUT`` and ``VD_CLOUD_MIN_BODY_RATE``.

    Defaults where a variable is missing or wrong. Read once, at the first
    connection: ``serve`` sets the variables before uvicorn starts, and every
    request arms a timer with them.
    """
    return Deadlines(_positive(READ_TIMEOUT_ENV, DEFAULT_READ_TIMEOUT_S, 0.1),
                     _positive(MIN_BODY_RATE_ENV, DEFAULT_MIN_BODY_RATE, 1.0))


def _positive(name: str, default: float, least: float) -> float:
    try:
        return max(least, float(os.environ.get(name, default)))
    except ValueError:
        return default
