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

"""The read cache's middleware: it stores a computed read and sends it with its ETag."""

from __future__ import annotations

import time
from typing import Any, Dict, List

from fastapi.concurrency import run_in_threadpool

from vehicle_detection.cloud.server.read_cache import (
    CACHE_CONTROL, Entry, etag_matches, etag_of, KEPT_HEADERS, PENDING, Pending, ReadCache)


class CacheFill:
    """
    ASGI middleware: store the answer of a marked miss, give it an ETag (or a 304).

    The answer is held until its last byte (a read's JSON is sent in one piece
    anyway) so that its ETag goes in the headers.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Run the app; store and tag the answer of a request marked as a miss."""
        if scope['type'] != 'http' or scope.get('method') != 'GET':
            await self.app(scope, receive, send)
            return
        start: Dict[str, Any] = {}
        chunks: List[bytes] = []

        async def filling_send(message: Any) -> None:
            pending = scope.get('state', {}).get(PENDING)
            if not isinstance(pending, Pending):
                await send(message)
                return
            if message['type'] == 'http.response.start':
                start.update(message)
                return
            chunks.append(message.get('body', b''))
            if not message.get('more_body', False):
                await self._finish(scope, pending, start, b''.join(chunks), send)

        try:
            await self.app(scope, receive, filling_send)
        finally:
            pending = scope.get('state', {}).get(PENDING)
            if isinstance(pending, Pending):
                cache: ReadCache = scope['app'].state.server.read_cache
                if pending.claimed:  # stored by now, or never: the others stop waiting
                    await run_in_threadpool(cache.release, pending.key)
                if pending.done is not None:
                    cache.finished(pending.key, pending.done)

    async def _finish(self, scope: Any, pending: Pending, start: Dict[str, Any], body: bytes,
                      send: Any) -> None:
        headers = [(name, value) for name, value in start.get('headers', [])]
        if start.get('status') != 200:
            await send(start)
            await send({'type': 'http.response.body', 'body': body})
            return
        etag = etag_of(body)
        if pending.versions is not None:
            kept = {name.decode('latin-1'): value.decode('latin-1') for name, value in headers
                    if name.decode('latin-1').lower() in KEPT_HEADERS}
            entry = Entry(pending.versions, time.time(), etag, kept, body)
            cache: ReadCache = scope['app'].state.server.read_cache
            await run_in_threadpool(cache.put, pending.key, entry)
        tags = [(b'etag', etag.encode()), (b'cache-control', CACHE_CONTROL.encode()),
                (b'x-cache', b'miss')]
        request_headers = dict(scope.get('headers', []))
        wanted = request_headers.get(b'if-none-match', b'').decode('latin-1')
        if etag_matches(wanted, etag):
            await send({'type': 'http.response.start', 'status': 304, 'headers': tags})
            await send({'type': 'http.response.body', 'body': b''})
            return
        kept_headers = [(n, v) for n, v in headers if n.lower() != b'cache-control']
        await send({**start, 'headers': kept_headers + tags})
        await send({'type': 'http.response.body', 'body': body})
