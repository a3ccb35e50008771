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
HTTP for the uploader: a deadline on each whole request, and bounded answers.

``requests`` applies its timeout to each socket operation, so a server (or a
middlebox) that trickles a byte now and then holds a request for ever. Here
every request runs under a deadline that covers connecting, sending and the
whole answer: a watchdog shuts the connection down when it passes. Answers are
read up to :data:`MAX_ANSWER_BYTES`; the rest is never read (the connection is
closed), so a huge or endless answer costs neither memory nor data. Answers
are asked for uncompressed: a compressed one could expand without bound.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timezone
from email.utils import parsedate_to_datetime
import http.client
import json
import os
import re
import socket
import threading
import time
from typing import Any, Dict, List, Mapping, Optional

import requests
from requests.adapters import HTTPAdapter
import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

MAX_ANSWER_BYTES = 64 * 1024  # the server's answers are a few hundred bytes
_DIGITS = re.compile(r'[0-9]+')
_current = threading.local()  # the watch of the request this thread is making


class DeadlinePassed(requests.Timeout):
    """The whole request (connect, send, answer) did not finish within its deadline."""


@dataclass(frozen=True)
class Answer:
    """An HTTP answer, its body read up to :data:`MAX_ANSWER_BYTES`."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    complete: bool  # False: the answer was longer, the rest was not read
    received_bytes: int  # status line, headers and the body read: what the link carried

    @property
    def content_type(self) -> str:
        """Return the media type, lowercase, without parameters."""
        return self.headers.get('Content-Type', '').split(';')[0].strip().lower()

    def json_object(self) -> Optional[Dict[str, Any]]:
        """Return the body as a JSON object; None if cut short, not JSON or not an object."""
        if not self.complete:
            return None
        try:
            value = json.loads(self.body)
        except (ValueError, RecursionError):  # RecursionError: nested too deep
            return None
        return value if isinstance(value, dict) else None

    def excerpt(self, length: int = 120) -> str:
        """Return the start of the body as text, for an error message."""
        return self.body[:length].decode('utf-8', 'replace')


def retry_after_seconds(value: str, cap: float, now: Optional[float] = None
                        ) -> Optional[float]:
    """
    Return how long a ``Retry-After`` header asks to wait, at most ``cap`` seconds.

    RFC 9110 allows a number of seconds or an HTTP-date; a date in the past
    means now. None when the header is absent or unreadable.
    """
    value = value.strip()
    if _DIGITS.fullmatch(value):
        seconds = float(value)
    else:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if moment.tzinfo is None:  # "GMT" is the only zone HTTP-dates use
            moment = moment.replace(tzinfo=timezone.utc)
        seconds = moment.timestamp() - (time.time() if now is None else now)
    return min(cap, max(0.0, seconds))


def new_session() -> requests.Session:
    """Return a session whose connections :func:`exchange` can cut at a deadline."""
    session = requests.Session()
    session.trust_env = False  # no proxy or .netrc credentials from the environment
    session.headers['Accept-Encoding'] = 'identity'
    adapter = _WatchedAdapter()
    session.mount('http://', adapter)
    session.mount('https://', adapter)
    return session


def exchange(session: requests.Session, method: str, url: str, headers: Dict[str, str],
             data: bytes, timeout: float, deadline: float) -> Answer:
    """
    Send one request and read its answer, all within ``deadline`` seconds.

    ``timeout`` bounds each connect or read as well. Redirects are never
    followed. Raises :class:`requests.RequestException` on a network error,
    :class:`DeadlinePassed` when the deadline cut the request off.
    """
    watch = _Watch()
    timer = threading.Timer(deadline, watch.expire)
    timer.daemon = True
    _current.watch = watch
    timer.start()
    try:
        response = session.request(method, url, headers=headers, data=data or None,
                                   timeout=min(timeout, deadline), allow_redirects=False,
                                   stream=True)
        try:
            body, read = _read_bounded(response)
        finally:
            # Unless the whole answer was read (the connection is back in the pool
            # then), this closes the connection: the rest is never read.
            response.close()
        if watch.expired:  # a cut connection can look like the end of the answer
            raise DeadlinePassed(f'no whole answer within {deadline:g} s')
    except requests.RequestException as error:
        if watch.expired and not isinstance(error, DeadlinePassed):
            raise DeadlinePassed(f'no whole answer within {deadline:g} s') from error
        raise
    except (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError) as error:
        if watch.expired:
            raise DeadlinePassed(f'no whole answer within {deadline:g} s') from error
        raise requests.ConnectionError(f'reading the answer: {error}') from error
    finally:
        timer.cancel()
        _current.watch = None
        watch.close()
    head = len(f'HTTP/1.1 {response.status_code} {response.reason}\r\n') + sum(
        len(k) + len(v) + 4 for k, v in response.headers.items())
    return Answer(response.status_code, response.headers, body[:MAX_ANSWER_BYTES],
                  read <= MAX_ANSWER_BYTES, head + read)


def _read_bounded(response: requests.Response) -> tuple[bytes, int]:
    """Read the body up to one byte past MAX_ANSWER_BYTES (a longer one is cut there)."""
    chunks: List[bytes] = []
    size = 0
    while size <= MAX_ANSWER_BYTES:
        chunk = response.raw.read(MAX_ANSWER_BYTES + 1 - size, decode_content=False)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b''.join(chunks), size


class _Watch:
    """The sockets of one request, shut down when its deadline passes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sockets: List[socket.socket] = []
        self.expired = False

    def add(self, sock: socket.socket) -> None:
        # A duplicate of the descriptor: shutting it down cuts the TCP connection
        # (and the TLS on it, even while it is set up), and closing it never
        # closes a descriptor that another socket reuses.
        try:
            copy = socket.socket(fileno=os.dup(sock.fileno()))
        except OSError:
            return
        with self._lock:
            self._sockets.append(copy)
            if self.expired:
                _shutdown(copy)

    def expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shutdown(sock)

    def close(self) -> None:
        with self._lock:
            for sock in self._sockets:
                sock.close()
            self._sockets.clear()


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed by the other side


def _watch(sock: Optional[socket.socket]) -> None:
    watch = getattr(_current, 'watch', None)
    if watch is not None and sock is not None:
        watch.add(sock)


class _HTTPConnection(HTTPConnection):
    """A connection whose socket the current request's watch can shut down."""

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        _watch(sock)
        return sock

    def request(self, *args: Any, **kwargs: Any) -> None:
        _watch(self.sock)  # a kept-alive connection, reused
        super().request(*args, **kwargs)


class _HTTPSConnection(HTTPSConnection):
    """The same for https (the watched socket is the TCP one, under TLS)."""

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        _watch(sock)
        return sock

    def request(self, *args: Any, **kwargs: Any) -> None:
        _watch(self.sock)
        super().request(*args, **kwargs)


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


class _WatchedAdapter(HTTPAdapter):
    """Builds its connections from the watched classes above."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {'http': _HTTPPool, 'https': _HTTPSPool}
