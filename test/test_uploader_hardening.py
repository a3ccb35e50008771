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

"""The edge uploader against hostile or broken answers: poison events, redirects, renames."""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import json
from pathlib import Path
import threading
from typing import Dict, Iterator, List, Tuple

from cloud_helpers import free_port
from fake_cloud import expected_answer
import pytest
from test_bridge_faults import cloud, make_alert, server_alerts, settings, wait_for  # noqa: F401

from vehicle_detection.core.bridge.budget import DataBudget
from vehicle_detection.core.bridge.outbox import Outbox
from vehicle_detection.core.bridge.uploader import Uploader


class Recording(BaseHTTPRequestHandler):
    """Answers by a rule and records every request with its headers."""

    rule = staticmethod(lambda method, path, body: (201, {}))
    seen: List[Tuple[str, str, Dict[str, str]]] = []

    def _answer(self) -> None:
        length = int(self.headers.get('Content-Length') or 0)
        body = self.rfile.read(length)
        Recording.seen.append((self.command, self.path, dict(self.headers)))
        if self.path.endswith('/health'):
            status, headers = 200, {}
        else:
            status, headers = self.rule(self.command, self.path, body)
        payload = json.dumps(expected_answer(self.command, self.path, body)[1]).encode()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header('Content-Length', str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = _answer

    def log_message(self, *_args: object) -> None:
        """Keep test output quiet."""


def serve(handler: type) -> Tuple[ThreadingHTTPServer, str]:
    server = ThreadingHTTPServer(('127.0.0.1', free_port()), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f'http://127.0.0.1:{server.server_address[1]}'


@pytest.fixture
def recording() -> Iterator[str]:
    Recording.seen = []
    server, url = serve(Recording)
    try:
        yield url
    finally:
        server.shutdown()
        server.server_close()


def requests_to(path_end: str) -> List[Dict[str, str]]:
    return [headers for _, path, headers in Recording.seen if path.endswith(path_end)]


def test_a_poison_event_is_set_aside_and_the_rest_flow(recording: str, tmp_path: Path) -> None:
    poison = make_alert(0)

    def rule(method: str, path: str, body: bytes) -> Tuple[int, Dict[str, str]]:
        if method == 'POST' and path.endswith('/alerts') and \
                json.loads(body)['event_id'] == poison['event_id']:
            return 500, {}  # the server fails on this one event, for ever
        return 201, {}

    Recording.rule = staticmethod(rule)
    outbox = Outbox(str(tmp_path))
    uploader = Uploader(settings(recording, 'k'), outbox, DataBudget(outbox, 0))
    outbox.enqueue(poison, None)
    valid = [make_alert(i) for i in range(1, 4)]
    for alert in valid:
        outbox.enqueue(alert, None)
    uploader.start()
    try:
        wait_for(lambda: outbox.stats().held == 1 and outbox.stats().depth == 1,
                 what='the valid events delivered past the poison one')
    finally:
        uploader.stop()
    states = {e['event_id']: e['alert_state'] for e in outbox.events()}
    assert states[poison['event_id']] == 'pending'  # kept, to be tried again
    assert all(states[a['event_id']] == 'sent' for a in valid)
    posts = [h for m, p, h in Recording.seen if m == 'POST' and p.endswith('/alerts')]
    assert len(posts) <= 5 + len(valid) + 1  # set aside after 5 server errors, not retried
    assert 'set aside' in uploader.stats.last_error


def test_an_event_the_server_would_refuse_does_not_block_the_queue(
        cloud, tmp_path: Path) -> None:  # noqa: F811
    server, key = cloud
    outbox = Outbox(str(tmp_path))
    refused = make_alert(0)
    refused['confidence'] = float('nan')  # written by an older version, before the check
    outbox.enqueue(refused, None)
    valid = [make_alert(i) for i in range(1, 4)]
    for alert in valid:
        outbox.enqueue(alert, None)
    uploader = Uploader(settings(server.url, key), outbox, DataBudget(outbox, 0))
    uploader.start()
    try:
        wait_for(lambda: outbox.stats().depth == 0, what='the queue drained')
    finally:
        uploader.stop()
    assert [a['event_id'] for a in server_alerts(server.url)] == [a['event_id'] for a in valid]
    assert outbox.events()[0]['alert_state'] == 'failed'
    assert uploader.stats.permanent_failures == 1


def test_a_renamed_device_keeps_uploading_under_its_keys_name(
        cloud, tmp_path: Path) -> None:  # noqa: F811
    server, key = cloud  # the key of edge-1
    outbox = Outbox(str(tmp_path))
    alerts = [make_alert(i, device='gate-7') for i in range(3)]
    for alert in alerts:
        outbox.enqueue(alert, None)
    uploader = Uploader(settings(server.url, key, device_id='gate-7', heartbeat_interval=0.2),
                        outbox, DataBudget(outbox, 0), lambda: {'queue_depth': 0})
    uploader.start()
    try:
        wait_for(lambda: outbox.stats().depth == 0, what='the queue drained')
    finally:
        uploader.stop()
    stored = server_alerts(server.url)
    assert [a['device_id'] for a in stored] == ['edge-1'] * 3
    assert uploader.stats.filed_as == 'edge-1' and uploader.stats.link_state == 'up'


class Redirecting(Recording):
    """Answers every upload with a redirect to another server."""

    target = ''

    def _answer(self) -> None:
        Recording.seen.append((self.command, self.path, dict(self.headers)))
        self.send_response(307)
        self.send_header('Location', Redirecting.target + self.path)
        self.send_header('Content-Length', '0')
        self.end_headers()

    do_GET = do_POST = do_PUT = _answer


def test_redirects_are_not_followed_and_the_key_stays(recording: str, tmp_path: Path) -> None:
    Recording.rule = staticmethod(lambda method, path, body: (201, {}))
    Redirecting.target = recording  # where the key must never arrive
    redirector, url = serve(Redirecting)
    outbox = Outbox(str(tmp_path))
    outbox.enqueue(make_alert(0), None)
    uploader = Uploader(settings(url, 'secret-key'), outbox, DataBudget(outbox, 0))
    uploader.start()
    try:
        wait_for(lambda: uploader.stats.link_state == 'redirected', what='redirect reported')
    finally:
        uploader.stop()
        redirector.shutdown()
        redirector.server_close()
    reached = [h for _, _, h in Recording.seen if h.get('Host', '') in recording]
    assert not reached, 'a request followed the redirect'
    assert 'api_base_url' in uploader.stats.last_error
    assert outbox.events()[0]['alert_state'] == 'pending'  # kept


def test_health_checks_carry_no_key(recording: str, tmp_path: Path) -> None:
    Recording.rule = staticmethod(lambda method, path, body: (201, {}))
    outbox = Outbox(str(tmp_path))
    outbox.enqueue(make_alert(0), None)
    uploader = Uploader(settings(recording, 'secret-key', heartbeat_interval=0.2), outbox,
                        DataBudget(outbox, 0), lambda: {'queue_depth': 0})
    uploader.start()
    try:
        wait_for(lambda: len(requests_to('/health')) >= 2 and requests_to('/heartbeat')
                 and outbox.stats().depth == 0, what='health checks, a heartbeat, the alert')
    finally:
        uploader.stop()
    assert all('X-API-Key' not in h for h in requests_to('/health'))
    assert all(h.get('X-API-Key') == 'secret-key'
               for h in requests_to('/heartbeat') + requests_to('/alerts'))
