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

"""The FastAPI application: routes, body limit, metrics, dashboard."""

from __future__ import annotations

from contextlib import asynccontextmanager
import ctypes
import logging
import multiprocessing
from multiprocessing.process import BaseProcess
import os
from pathlib import Path
import signal
from typing import Any, AsyncIterator, Awaitable, Callable, MutableMapping, Optional

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import (
    FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response)
from fastapi.staticfiles import StaticFiles
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import ClientDisconnect

from vehicle_detection import __version__
from vehicle_detection.cloud.server import metrics
from vehicle_detection.cloud.server.deps import reader, ServerState, state
from vehicle_detection.cloud.server.headers import SecurityHeaders
from vehicle_detection.cloud.server.operators import SESSION_COOKIE, session_reader
from vehicle_detection.cloud.server.protocol import CUT_OFF
from vehicle_detection.cloud.server.retention_schedule import RetentionSchedule
from vehicle_detection.cloud.server.routes_admin import router as admin_router
from vehicle_detection.cloud.server.routes_auth import router as auth_router
from vehicle_detection.cloud.server.routes_counts import ingest_router as counts_ingest_router
from vehicle_detection.cloud.server.routes_counts import read_router as counts_read_router
from vehicle_detection.cloud.server.routes_ingest import router as ingest_router
from vehicle_detection.cloud.server.routes_read import router as read_router
from vehicle_detection.cloud.server.settings import ServerSettings
from vehicle_detection.wire import HEALTH_PATH

STATIC = Path(__file__).resolve().parent / 'static'
PR_SET_PDEATHSIG = 1  # prctl option: a signal for this process when its parent dies
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
log = logging.getLogger('vehicle_detection.cloud.http')


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` when a streamed body passes the limit (answered 413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f'body over the limit of {limit} bytes')


class BodyLimit:
    """
    Refuse bodies over ``max_bytes`` with 413 before reading them whole.

    A declared Content-Length over the limit is refused before any byte is
    read; a chunked body is counted as it streams and cut off at the limit.
    """

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the wrapped app with a counting ``receive``."""
        if scope['type'] != 'http':
            await self.app(scope, receive, send)
            return
        declared = dict(scope['headers']).get(b'content-length')
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get('body', b''))
            if seen > self.max_bytes:
                raise BodyTooLarge(self.max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message['type'] == 'http.response.start'
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        response = JSONResponse({'detail': f'body over the limit of {self.max_bytes} bytes'},
                                status_code=413, headers={'Connection': 'close'})
        await response({'type': 'http'}, _no_body, send)


async def _no_body() -> Message:
    return {'type': 'http.request', 'body': b'', 'more_body': False}


async def invalid_request(request: Request, error: Exception) -> JSONResponse:
    """
    Answer 422 with where and why, never echoing the value.

    FastAPI's own handler echoes the refused input, and a NaN, an infinity or
    a lone surrogate cannot be written as JSON: that was a 500.
    """
    assert isinstance(error, RequestValidationError)
    detail = [{'loc': [_text(part) for part in item.get('loc', ())],
               'msg': _text(item.get('msg', '')), 'type': _text(item.get('type', ''))}
              for item in error.errors()]
    return JSONResponse({'detail': detail}, status_code=422)


async def client_gone(request: Request, error: Exception) -> Response:
    """
    Log, in one line, a client that went away before its request body was in.

    A dropped upload (a lost link, a killed edge box) ends the body with a
    disconnect: that is the network, not a server error worth a traceback.
    A connection the server cut for its deadline was logged there already.
    """
    if not request.scope.get('state', {}).get(CUT_OFF):
        client = request.client.host if request.client else 'unknown'
        log.warning('client %s went away before its request body was in: %s %s', client,
                    request.method, request.url.path)
    return Response(status_code=400)  # nobody is there to read it


def _text(value: object) -> object:
    """Return ``value`` as JSON can carry it (a string's lone surrogates replaced)."""
    if isinstance(value, int):
        return value
    return str(value).encode('utf-8', 'replace').decode('utf-8')


def create_app(settings: ServerSettings) -> FastAPI:
    """Build the app for ``settings`` (the database must already be migrated)."""
    server = ServerState(settings)
    retention = RetentionSchedule(server.engine, server.store, settings.retention(),
                                  settings.retention_interval_s)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        retention.start()  # a pass an hour, one worker at a time (retention_schedule.py)
        try:
            yield
        finally:
            retention.stop()

    app = FastAPI(title='vehicle_detection cloud', version=__version__, lifespan=lifespan,
                  description='Alerts, snapshots and device health from vehicle_detection '
                              'edge boxes. Devices write with `X-API-Key`; operators read '
                              'after logging in (session cookie), scripts with a read '
                              'token (`Authorization: Bearer`).',
                  docs_url=None, redoc_url=None, openapi_url=None)
    app.state.server = server
    app.state.retention = retention
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(ClientDisconnect, client_gone)
    app.include_router(ingest_router)
    app.include_router(counts_ingest_router)
    app.include_router(read_router, dependencies=[Depends(reader)])
    app.include_router(counts_read_router, dependencies=[Depends(reader)])
    app.include_router(auth_router)
    app.include_router(admin_router)
    app.add_middleware(metrics.RequestMetrics)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(SecurityHeaders, tls=settings.tls)

    @app.get(HEALTH_PATH, tags=['health'])
    def health(request: Request) -> Any:
        """Tell whether the server and its database answer (no auth)."""
        try:
            with request.app.state.server.engine.connect() as connection:
                connection.execute(text('SELECT 1'))
        except SQLAlchemyError as error:
            return JSONResponse({'status': 'degraded', 'database': str(error)[:200]},
                                status_code=503)
        return {'status': 'ok', 'version': __version__, 'database': 'ok'}

    app.get('/metrics', include_in_schema=False, dependencies=[Depends(reader)])(
        metrics.endpoint)

    @app.get('/openapi.json', include_in_schema=False, dependencies=[Depends(reader)])
    def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get('/docs', include_in_schema=False, dependencies=[Depends(reader)])
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url='/openapi.json', title=app.title)

    @app.get('/', include_in_schema=False, response_model=None)
    def dashboard(request: Request) -> Any:
        server = state(request)
        session = request.cookies.get(SESSION_COOKIE)
        if not server.settings.public_dashboard and not (
                session and session_reader(server.engine, session)):
            return RedirectResponse('/login', status_code=303)
        return FileResponse(STATIC / 'index.html')

    app.mount('/static', StaticFiles(directory=STATIC), name='static')
    return app


def app_from_env() -> FastAPI:
    """Build the app from ``VD_CLOUD_*`` variables (uvicorn workers start here)."""
    die_with_master(multiprocessing.parent_process())
    return create_app(ServerSettings.from_env())


def die_with_master(master: Optional[BaseProcess]) -> None:
    """
    Have the kernel stop this worker process when its master dies (Linux).

    A worker whose master was killed (``kill -9``) would go on serving the
    port, and the restarted server could not bind it. ``master`` is the
    process that spawned this one (``multiprocessing.parent_process()``):
    None in the master itself and in the single process of the default
    mode, which never follow their own parent: that is a shell, systemd,
    tini or a container runtime, and it may exit at once or be PID 1.
    """
    if master is None:
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        return  # not Linux: nothing to arm
    if os.getppid() != master.pid:  # the master died before the signal was armed
        os.kill(os.getpid(), signal.SIGTERM)
