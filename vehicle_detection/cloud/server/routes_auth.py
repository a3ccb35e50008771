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

"""Operator login: the login page and the session endpoints the dashboard uses."""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn, Optional

from fastapi import APIRouter, Cookie, Depends, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from vehicle_detection.cloud.server.deps import client_address, note_failure, reader, state
from vehicle_detection.cloud.server.metrics import LOGIN_REFUSALS
from vehicle_detection.cloud.server.operators import (
    check_password, close_session, open_session, Reader, SESSION_COOKIE, SESSION_HOURS)
from vehicle_detection.wire import API_PREFIX

STATIC = Path(__file__).resolve().parent / 'static'
SESSION_PATH = f'{API_PREFIX}/session'
router = APIRouter(tags=['auth'])


class LoginIn(BaseModel):
    """``POST /api/v1/session`` body."""

    name: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class SessionOut(BaseModel):
    """Who is logged in."""

    name: str
    role: str
    via: str


@router.get('/login', include_in_schema=False)
def login_page() -> FileResponse:
    """Serve the login form (it posts to ``/api/v1/session``)."""
    return FileResponse(STATIC / 'login.html')


@router.post(SESSION_PATH, response_model=SessionOut,
             responses={401: {'description': 'wrong name or password'},
                        429: {'description': 'this name or address is locked after failed '
                                             'logins (Retry-After: seconds left)'},
                        503: {'description': 'too many logins being checked at once '
                                             '(Retry-After)'}})
async def log_in(login: LoginIn, request: Request, response: Response) -> SessionOut:
    """
    Check a name and password; on success set the session cookie (HttpOnly, SameSite).

    The login lock is checked first, so a locked name or address costs no
    password hash; at most a few hashes run at once (the others wait briefly,
    then 503). Async so that waiting logins hold no worker thread.
    """
    server = state(request)
    address = client_address(request)
    wait = await run_in_threadpool(server.login_guard.locked, login.name, address)
    if wait:
        _refused_before_hashing('locked', wait)
    if not await server.hash_slots.acquire():
        _refused_before_hashing('busy', 1)
    try:
        claim = await run_in_threadpool(server.login_guard.claim, login.name, address)
        if not claim.allowed:
            _refused_before_hashing('locked', claim.retry_after)
        operator = await run_in_threadpool(check_password, server.engine, login.name,
                                           login.password)
    finally:
        server.hash_slots.release()
    if operator is None:
        await run_in_threadpool(note_failure, request, f'failed login for {login.name!r}')
        raise HTTPException(401, 'wrong name or password', headers={'WWW-Authenticate': 'Bearer'})
    await run_in_threadpool(server.login_guard.succeeded, claim)
    token = await run_in_threadpool(open_session, server.engine, operator.id)
    response.set_cookie(SESSION_COOKIE, token, max_age=SESSION_HOURS * 3600, path='/',
                        httponly=True, samesite='strict', secure=over_tls(request))
    return SessionOut(name=operator.name, role=operator.role, via='session')


def over_tls(request: Request) -> bool:
    """
    Tell whether the browser reached us over https: served with TLS, or behind a TLS proxy.

    The scheme a trusted proxy forwards (``X-Forwarded-Proto``, only from the
    addresses of ``--forwarded-allow-ips``) is the request's scheme: the
    session cookie is then Secure as with ``--tls-cert``.
    """
    return state(request).settings.tls or request.url.scheme == 'https'


def _refused_before_hashing(reason: str, wait: int) -> NoReturn:
    """Answer a login that is not checked: 429 while locked, 503 when too busy."""
    LOGIN_REFUSALS.labels(reason).inc()
    if reason == 'locked':  # the same answer whether the name exists or not
        raise HTTPException(429, 'too many failed logins for this name or from this address: '
                                 f'try again in {wait} s', headers={'Retry-After': str(wait)})
    raise HTTPException(503, 'too many logins are being checked right now: try again',
                        headers={'Retry-After': str(wait)})


@router.get(SESSION_PATH, response_model=SessionOut)
def who_am_i(who: Reader = Depends(reader)) -> SessionOut:
    """Return the logged-in operator (or the read token's name)."""
    return SessionOut(name=who.name, role=who.role, via=who.via)


@router.delete(SESSION_PATH, status_code=204)
def log_out(request: Request,
            session: Optional[str] = Cookie(None, alias=SESSION_COOKIE)) -> Response:
    """End the session and clear its cookie."""
    if session:
        close_session(state(request).engine, session)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path='/', httponly=True, samesite='strict',
                           secure=over_tls(request))
    return response
