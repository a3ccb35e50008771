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
HTTP with read deadlines: a client that sends a request too slowly is cut off.

uvicorn waits for a half-sent request for ever, so a few thousand sockets
that trickle their headers (slowloris) use up the file descriptors and the
server stops answering. Here a connection must send its request line and
headers within ``VD_CLOUD_READ_TIMEOUT`` seconds of opening (or of its
previous request), and its body may pause no longer than that between two
chunks (a slow 4G uplink sends steadily; a stalled one is gone). Idle
keep-alive connections are uvicorn's (``timeout_keep_alive``).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
from typing import Any, Optional

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

READ_TIMEOUT_ENV = 'VD_CLOUD_READ_TIMEOUT'
DEFAULT_READ_TIMEOUT_S = 10.0
log = logging.getLogger('vehicle_detection.cloud.http')


class DeadlineHttpProtocol(HttpToolsProtocol):
    """httptools' protocol, closing connections whose request does not arrive in time."""

    _deadline: Optional[asyncio.TimerHandle] = None

    def connection_made(self, transport: Any) -> None:
        """Start the clock for the first request."""
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Optional[Exception]) -> None:
        """Stop the clock."""
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        """Start the clock for this request's headers."""
        super().on_message_begin()
        self._arm()

    def on_headers_complete(self) -> None:
        """Start the clock for the body's first chunk."""
        super().on_headers_complete()
        self._arm()

    def on_body(self, body: bytes) -> None:
        """Restart the clock for the body's next chunk."""
        super().on_body(body)
        self._arm()

    def on_message_complete(self) -> None:
        """Stop the clock: the request is in."""
        super().on_message_complete()
        self._disarm()

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(read_timeout(), self._expire)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        client = f'{self.client[0]}:{self.client[1]}' if self.client else 'unknown'
        log.warning('closing the connection of %s: request not received within %g s',
                    client, read_timeout())
        self.transport.close()


@functools.lru_cache(maxsize=1)
def read_timeout() -> float:
    """
    Return the read deadline in seconds (``VD_CLOUD_READ_TIMEOUT``, else the default).

    Read once, at the first connection: ``serve`` sets the variable before
    uvicorn starts, and every request re-arms a timer with it.
    """
    try:
        return max(0.1, float(os.environ.get(READ_TIMEOUT_ENV, DEFAULT_READ_TIMEOUT_S)))
    except ValueError:
        return DEFAULT_READ_TIMEOUT_S
