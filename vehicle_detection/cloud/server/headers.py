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

"""Security headers on every response: what a browser may load, frame and sniff."""

from __future__ import annotations

from typing import Any

# The dashboard loads only its own files and its own snapshots; nothing inline.
STRICT_POLICY = ("default-src 'self'; img-src 'self' data:; script-src 'self'; "
                 "style-src 'self'; connect-src 'self'; frame-ancestors 'none'; "
                 "base-uri 'none'; form-action 'self'; object-src 'none'")
# FastAPI's /docs page is Swagger UI: an inline start-up script and files from its CDN.
DOCS_POLICY = ("default-src 'self'; img-src 'self' data: https://fastapi.tiangolo.com; "
               "script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
               "style-src 'self' https://cdn.jsdelivr.net; frame-ancestors 'none'; "
               "base-uri 'none'; object-src 'none'")
HSTS = (b'strict-transport-security', b'max-age=31536000')


class SecurityHeaders:
    """
    ASGI middleware adding CSP, nosniff, frame and referrer policies (and HSTS over TLS).

    HSTS goes with every answer over https: served with ``--tls-cert``, or
    behind a TLS proxy that forwards the scheme (uvicorn sets it from
    ``X-Forwarded-Proto`` for the proxies of ``--forwarded-allow-ips`` only).
    """

    def __init__(self, app: Any, tls: bool = False) -> None:
        self.app = app
        common = [(b'x-content-type-options', b'nosniff'), (b'x-frame-options', b'DENY'),
                  (b'referrer-policy', b'no-referrer'),
                  (b'cross-origin-opener-policy', b'same-origin')]
        self.tls = tls
        self._strict = [(b'content-security-policy', STRICT_POLICY.encode()), *common]
        self._docs = [(b'content-security-policy', DOCS_POLICY.encode()), *common]

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Run the app, adding the headers to its response."""
        if scope['type'] != 'http':
            await self.app(scope, receive, send)
            return
        extra = self._docs if scope.get('path') == '/docs' else self._strict
        if self.tls or scope.get('scheme') == 'https':
            extra = [*extra, HSTS]

        async def adding_send(message: Any) -> None:
            if message['type'] == 'http.response.start':
                message['headers'] = list(message.get('headers', [])) + extra
            await send(message)

        await self.app(scope, receive, adding_send)
