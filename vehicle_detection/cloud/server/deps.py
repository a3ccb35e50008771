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

"""Per-app state and the request dependencies: database sessions and device auth."""

from __future__ import annotations

from dataclasses import dataclass
import logging
import threading
import time
from typing import Dict, Optional, Tuple

from fastapi import Header, HTTPException, Request, Security
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select
from sqlalchemy.engine import Engine

from vehicle_detection.cloud.server.access import hash_key
from vehicle_detection.cloud.server.data_version import track_writes
from vehicle_detection.cloud.server.db import Device
from vehicle_detection.cloud.server.engine import make_engine
from vehicle_detection.cloud.server.login_guard import HashSlots, LoginGuardStore
from vehicle_detection.cloud.server.operators import (
    dummy_hash, Reader, SESSION_COOKIE, session_reader, token_reader)
from vehicle_detection.cloud.server.rate_limits import buckets_for, SharedRateLimiter
from vehicle_detection.cloud.server.read_cache import open_read_cache, ReadCache
from vehicle_detection.cloud.server.settings import ServerSettings
from vehicle_detection.cloud.server.storage import ImageStore
from vehicle_detection.cloud.server.stores import open_store
from vehicle_detection.wire import API_KEY_HEADER

DEVICE_SUBJECT, ADDRESS_SUBJECT = 'dev:', 'addr:'  # rate_limits.subject prefixes
KEY_CACHE_S = 5.0  # a revoked key stops working within this time in every worker
# Failed authentications (bad device key, token, session or password) per client
# address: a burst of 10, then one every 2 s; then 429 and a log line.
FAILURE_RATE, FAILURE_BURST = 0.5, 10.0
log = logging.getLogger('vehicle_detection.cloud.auth')
_session_cookie = APIKeyCookie(name=SESSION_COOKIE, auto_error=False,
                               description='Dashboard login (POST /api/v1/session).')
_read_token = HTTPBearer(auto_error=False, description='Read token for scripts '
                         '(vehicle-detection-cloud add-token NAME).')


@dataclass(frozen=True)
class Caller:
    """The device a request was authenticated as."""

    device_pk: int
    name: str


class ServerState:
    """What one app (one worker process) holds: engine, store, limiters, key cache."""

    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self.engine: Engine = make_engine(settings.db)
        track_writes(self.engine)  # the data versions that key the read cache
        self.store: ImageStore = open_store(settings.storage)
        self.login_guard = LoginGuardStore(self.engine)  # in the database: every instance
        self.hash_slots = HashSlots()
        dummy_hash()  # now, so that the first unknown name costs no more than a known one
        # In the database: one budget per device, and one per address for failures, for
        # every worker of every instance (no file on one host).
        buckets = buckets_for(self.engine)
        self.limiter = SharedRateLimiter(buckets, DEVICE_SUBJECT, settings.rate_limit,
                                         settings.rate_burst)
        self.failures = SharedRateLimiter(buckets, ADDRESS_SUBJECT, FAILURE_RATE,
                                          FAILURE_BURST)
        self._keys: Dict[str, Tuple[float, Optional[Caller]]] = {}
        self._lock = threading.Lock()
        self.read_cache: ReadCache = open_read_cache(settings, self.engine)

    def lookup(self, key: str) -> Optional[Caller]:
        """Return the device of ``key`` (None if unknown or revoked), cached briefly."""
        digest = hash_key(key)
        now = time.monotonic()
        with self._lock:
            cached = self._keys.get(digest)
        if cached is not None and cached[0] > now:
            return cached[1]
        with self.engine.connect() as connection:
            row = connection.execute(
                select(Device.id, Device.name).where(Device.key_hash == digest,
                                                     Device.revoked_at.is_(None))).first()
        caller = Caller(row.id, row.name) if row is not None else None
        with self._lock:
            if len(self._keys) > 10000:
                self._keys.clear()
            self._keys[digest] = (now + KEY_CACHE_S, caller)
        return caller


def state(request: Request) -> ServerState:
    """Return the app's :class:`ServerState`."""
    return request.app.state.server


def authenticated(request: Request,
                  x_api_key: Optional[str] = Header(None, alias=API_KEY_HEADER)) -> Caller:
    """Resolve the ``X-API-Key`` header to a device: 401 if bad, 429 if over its rate."""
    server = state(request)
    if not x_api_key:
        raise HTTPException(401, f'missing {API_KEY_HEADER} header')
    caller = server.lookup(x_api_key)
    if caller is None:
        refuse(request, 'bad device key', 'unknown or revoked API key')
    assert caller is not None
    wait = server.limiter.acquire(caller.name)
    if wait is not None:
        raise HTTPException(429, f'rate limit of {server.settings.rate_limit:g} requests/s '
                                 f'for device {caller.name}', headers={'Retry-After': str(wait)})
    return caller


def client_address(request: Request) -> str:
    """Return the client's address (a proxy's X-Forwarded-For only where trusted)."""
    return request.client.host if request.client else 'unknown'


def note_failure(request: Request, what: str) -> Optional[int]:
    """Log a failed authentication; return the seconds to wait when the client fails too often."""
    client = client_address(request)
    wait = state(request).failures.acquire(client)
    log.warning('%s from %s: %s %s', what, client, request.method, request.url.path)
    return wait


def refuse(request: Request, what: str, detail: str, status: int = 401) -> None:
    """
    Answer wrong credentials: 401 (or ``status``), 429 once a client fails too often.

    Every failure is logged with the client's address; a client that keeps
    failing is slowed down whatever it tries (keys, tokens, sessions; failed
    logins count here too, and have their own lock, see :mod:`login_guard`).
    Requests without credentials are not failures.
    """
    wait = note_failure(request, what)
    if wait is not None:
        raise HTTPException(429, 'too many failed authentications from this address',
                            headers={'Retry-After': str(wait)})
    raise HTTPException(status, detail, headers={'WWW-Authenticate': 'Bearer'}
                        if status == 401 else None)


def reader(request: Request, session: Optional[str] = Security(_session_cookie),
           bearer: Optional[HTTPAuthorizationCredentials] = Security(_read_token)) -> Reader:
    """Resolve a session cookie or read token to a reader: 401 without one (unless public)."""
    if state(request).settings.public_dashboard:
        return Reader('public', 'viewer', 'public')
    return _signed_in(request, session, bearer)


def admin(request: Request, session: Optional[str] = Security(_session_cookie),
          bearer: Optional[HTTPAuthorizationCredentials] = Security(_read_token)) -> Reader:
    """
    Resolve an operator with the ``admin`` role: 401 without a login, 403 for a viewer.

    Read tokens are viewers; ``--public-dashboard`` opens reads, never this.
    """
    who = _signed_in(request, session, bearer)
    if who.role != 'admin':
        raise HTTPException(403, f'{who.name} is a {who.role}: this needs the admin role')
    return who


def _signed_in(request: Request, session: Optional[str],
               bearer: Optional[HTTPAuthorizationCredentials]) -> Reader:
    """Resolve a session cookie or read token: 401 (429 when repeated) if bad or missing."""
    server = state(request)
    found = None
    if bearer is not None:
        found = token_reader(server.engine, bearer.credentials)
    elif session:
        found = session_reader(server.engine, session)
    detail = 'log in at /login, or send Authorization: Bearer <read token>'
    if not (bearer or session):  # not logged in: no attempt to count
        raise HTTPException(401, detail, headers={'WWW-Authenticate': 'Bearer'})
    if found is None:
        refuse(request, 'bad read token' if bearer else 'expired or unknown session', detail)
    assert found is not None
    return found
