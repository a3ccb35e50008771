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
from typing import Optional

from fastapi import APIRouter, Cookie, Depends, Request, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from vehicle_detection.cloud.server.deps import reader, refuse, state
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
                        429: {'description': 'too many failed attempts from this address'}})
def log_in(login: LoginIn, request: Request, response: Response) -> SessionOut:
    """Check a name and password; on success set the session cookie (HttpOnly, SameSite)."""
    server = state(request)
    operator = check_password(server.engine, login.name, login.password)
    if operator is None:
        refuse(request, f'failed login for {login.name!r}', 'wrong name or password')
    assert operator is not None
    token = open_session(server.engine, operator.id)
    response.set_cookie(SESSION_COOKIE, token, max_age=SESSION_HOURS * 3600, path='/',
                        httponly=True, samesite='strict', secure=server.settings.tls)
    return SessionOut(name=operator.name, role=operator.role, via='session')


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
                           secure=state(request).settings.tls)
    return response
