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
A small fake cloud on 127.0.0.1 that answers like the real server, or misbehaves.

The real server's answers (``cloud/server/routes_ingest.py``, ``routes_counts.py``
and ``/health``) are copied by :func:`expected_answer`; a test's ``rule`` may
answer instead (a captive portal, a trickle, an endless body, an outage).
"""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import json
import threading
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from cloud_helpers import free_port

from vehicle_detection.wire import ALERTS_PATH, COUNTS_PATH, DEVICES_PATH, HEALTH_PATH


def expected_answer(method: str, path: str, body: bytes, device: str = 'edge-1'
                    ) -> Tuple[int, Dict[str, Any]]:
    """Return the status and JSON the real server gives to a successful request."""
    if path == HEALTH_PATH:
        return 200, {'status': 'ok', 'version': 'fake', 'database': 'ok'}
    if path.startswith(DEVICES_PATH) and path.endswith('/heartbeat'):
        return 200, {'status': 'ok', 'server_time': '2026-11-23T10:00:00Z', 'device_id': device}
    if method == 'PUT' and path.startswith(ALERTS_PATH + '/') and path.endswith('/image'):
        event_id = path[len(ALERTS_PATH) + 1:-len('/image')]
        return 201, {'event_id': event_id, 'path': f'x/{event_id}.jpg', 'bytes': len(body),
                     'created': True}
    if path == ALERTS_PATH:
        event_id = json.loads(body)['event_id']
        return 201, {'id': 1, 'event_id': event_id, 'created': True, 'image_stored': False,
                     'device_id': device}
    if path == COUNTS_PATH:
        return 201, {'record_id': json.loads(body)['record_id'], 'created': True,
                     'device_id': device}
    return 404, {'detail': 'Not Found'}


# A rule may answer a request itself (return True) or leave it to expected_answer.
Rule = Callable[['FakeCloud', str, str, bytes], bool]


class FakeCloud(BaseHTTPRequestHandler):
    """Answers like the server unless ``rule`` answers; records every request."""

    protocol_version = 'HTTP/1.1'  # keep-alive, as uvicorn
    rule: Rule = staticmethod(lambda handler, method, path, body: False)
    seen: List[Tuple[float, str, str, bytes, Dict[str, str]]] = []
    closing = threading.Event()  # set at teardown: trickles and endless bodies end

    def _answer(self) -> None:
        length = int(self.headers.get('Content-Length') or 0)
        body = self.rfile.read(length)
        FakeCloud.seen.append((time.monotonic(), self.command, self.path, body,
                               dict(self.headers)))
        if not FakeCloud.rule(self, self.command, self.path, body):
            status, payload = expected_answer(self.command, self.path, body)
            self.reply(status, payload)

    do_GET = do_POST = do_PUT = _answer

    def reply(self, status: int, payload: object, content_type: str = 'application/json',
              headers: Optional[Dict[str, str]] = None) -> None:
        """Send one whole answer (JSON unless ``payload`` is bytes)."""
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header('Content-Type', content_type)
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_args: object) -> None:
        """Keep test output quiet."""


def requests_to(method: str, path_end: str) -> List[Tuple[float, bytes]]:
    """Return (time, body) of each request the fake cloud received for that route."""
    return [(at, body) for at, m, path, body, _ in FakeCloud.seen
            if m == method and path.endswith(path_end)]


def event_id_of(method: str, path: str, body: bytes) -> str:
    """Return the event id an alert post or snapshot upload is about."""
    if method == 'PUT':
        return path.split('/')[-2]
    return json.loads(body)['event_id']


def serve_fake_cloud(rule: Optional[Rule] = None) -> Iterator[str]:
    """Run the fake cloud (answering by ``rule`` first) and yield its URL."""
    FakeCloud.rule = staticmethod(rule or (lambda handler, method, path, body: False))
    FakeCloud.seen = []
    FakeCloud.closing = threading.Event()
    server = ThreadingHTTPServer(('127.0.0.1', free_port()), FakeCloud)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:  # polling for shutdown every 0.05 s: each test's teardown takes no 0.5 s
        yield f'http://127.0.0.1:{server.server_address[1]}'
    finally:
        FakeCloud.closing.set()
        server.shutdown()
        server.server_close()
