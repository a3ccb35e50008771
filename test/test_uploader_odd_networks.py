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
The real uploader and outbox against a fake cloud that misbehaves as odd networks do.

Long Retry-After, trickling answers, captive portals, server-wide outages,
endless answers. Times are scaled down through the settings (a 1 s cap for
a 300 s one), never slept.
"""

from __future__ import annotations

from email.utils import formatdate
from itertools import pairwise
import json
from pathlib import Path
import threading
import time
from typing import Iterator, List
import uuid

from cloud_helpers import jpeg_bytes
from fake_cloud import event_id_of, expected_answer, FakeCloud, requests_to, serve_fake_cloud
import pytest
import requests
from test_bridge_faults import cloud, make_alert, settings, wait_for  # noqa: F401

from vehicle_detection.core.bridge.budget import DataBudget
from vehicle_detection.core.bridge.outbox import COUNTS, Outbox
from vehicle_detection.core.bridge.uploader import Uploader
from vehicle_detection.wire import CountRecord

PORTAL = b'<html><body>Sign in to the hotel Wi-Fi to continue</body></html>'


@pytest.fixture
def fake() -> Iterator[str]:
    yield from serve_fake_cloud()


def nth_post(n: int) -> bool:
    """Tell whether the alert post being answered is the ``n``-th one (from 1)."""
    return len(requests_to('POST', '/alerts')) == n


def started(url: str, outbox: Outbox, **changes: object) -> Uploader:
    uploader = Uploader(settings(url, 'k', **changes), outbox, DataBudget(outbox, 0),
                        lambda: {'queue_depth': 0})
    uploader.start()
    return uploader


def trickle(handler: FakeCloud, head: bytes, byte: bytes) -> None:
    """Send ``head``, then one byte every 0.2 s until the client hangs up."""
    try:
        handler.wfile.write(head)
        while not FakeCloud.closing.wait(0.2):
            handler.wfile.write(byte)
    except OSError:
        pass
    handler.close_connection = True


# -- item 10: Retry-After ---------------------------------------------------------------------
@pytest.mark.parametrize('attempts', [3, 1])  # 1: the next round waits as long
def test_a_retry_after_of_a_day_is_cut_to_max_retry_after(attempts: int, fake: str,
                                                          tmp_path: Path) -> None:
    def rule(handler: FakeCloud, method: str, path: str, body: bytes) -> bool:
        if method == 'POST' and path.endswith('/alerts') and nth_post(1):
            handler.reply(429, {'detail': 'slow down'}, headers={'Retry-After': '86400'})
            return True
        return False

    FakeCloud.rule = staticmethod(rule)
    outbox = Outbox(str(tmp_path))
    outbox.enqueue(make_alert(0), None)
    uploader = started(fake, outbox, max_retry_after=1.0, retry_attempts=attempts)
    try:
        wait_for(lambda: outbox.stats().depth == 0, timeout=10, what='the alert sent')
    finally:
        uploader.stop()
    first, second = [at for at, _ in requests_to('POST', '/alerts')]
    assert 0.9 <= second - first < 5  # waited the capped second, not a day


def test_retry_after_as_an_http_date_is_honoured_and_capped(fake: str, tmp_path: Path) -> None:
    def rule(handler: FakeCloud, method: str, path: str, body: bytes) -> bool:
        if method == 'POST' and path.endswith('/alerts') and nth_post(1):
            tomorrow = formatdate(time.time() + 86400, usegmt=True)  # RFC 9110 HTTP-date
            handler.reply(503, {'detail': 'maintenance'}, headers={'Retry-After': tomorrow})
            return True
        return False

    FakeCloud.rule = staticmethod(rule)
    outbox = Outbox(str(tmp_path))
    outbox.enqueue(make_alert(0), None)
    uploader = started(fake, outbox, max_retry_after=1.0)
    try:
        wait_for(lambda: outbox.stats().depth == 0, timeout=10, what='the alert sent')
    finally:
        uploader.stop()
    first, second = [at for at, _ in requests_to('POST', '/alerts')]
    assert 0.9 <= second - first < 5  # the date was read (backoff alone is 0.05 s) and capped


def test_new_events_and_stop_end_a_retry_after_wait(fake: str, tmp_path: Path) -> None:
    def rule(handler: FakeCloud, method: str, path: str, body: bytes) -> bool:
        if method == 'POST' and path.endswith('/alerts') and nth_post(1):
            handler.reply(429, {'detail': 'slow down'}, headers={'Retry-After': '86400'})
            return True
        return False

    FakeCloud.rule = staticmethod(rule)
    outbox = Outbox(str(tmp_path))
    outbox.enqueue(make_alert(0), None)
    uploader = started(fake, outbox)  # the default cap: 300 s
    try:
        wait_for(lambda: len(requests_to('POST', '/alerts')) == 1, what='the 429')
        outbox.enqueue(make_alert(1), None)
        uploader.wake()  # new work: the wait ends
        wait_for(lambda: outbox.stats().depth == 0, timeout=5, what='both alerts sent')
        FakeCloud.rule = staticmethod(lambda handler, method, path, body: handler.reply(
            429, {'detail': 'slow down'}, headers={'Retry-After': '86400'}) or True)
        outbox.enqueue(make_alert(2), None)
        uploader.wake()
        wait_for(lambda: len(requests_to('POST', '/alerts')) == 4, what='the next 429')
    finally:
        begun = time.monotonic()
        uploader.stop()
    assert time.monotonic() - begun < 2  # stop ends the 300 s wait


# -- item 11: a whole-request deadline -------------------------------------------------------
def test_a_trickling_answer_is_cut_off_at_the_request_deadline(
        fake: str, tmp_path: Path) -> None:
    def rule(handler: FakeCloud, method: str, path: str, body: bytes) -> bool:
        if method == 'POST' and path.endswith('/alerts') and nth_post(1):
            trickle(handler, b'HTTP/1.1 201 Created\r\nX-Slow: ', b'a')  # the head trickles
            return True
        if method == 'POST' and path.endswith('/alerts') and nth_post(2):
            trickle(handler, b'HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n'
                    b'Content-Length: 5000\r\n\r\n', b' ')  # the body trickles
            return True
        return False

    FakeCloud.rule = staticmethod(rule)
    outbox = Outbox(str(tmp_path))
    for index in range(3):
        outbox.enqueue(make_alert(index), None)
    uploader = started(fake, outbox, request_deadline=1.0)
    try:
        wait_for(lambda: outbox.stats().depth == 0, timeout=10, what='the queue drained')
    finally:
        uploader.stop()
    posts = [at for at, _ in requests_to('POST', '/alerts')]
    assert len(posts) == 5  # two cut off, then three sent
    assert 0.9 <= posts[1] - posts[0] < 3 and 0.9 <= posts[2] - posts[1] < 3
    assert uploader.stats.requests_failed == 2


# -- item 12: only the expected answer stores an event ------------------------------------------
def test_a_captive_portal_is_not_taken_for_the_server(fake: str, tmp_path: Path) -> None:
    portal = threading.Event()
    portal.set()

    def rule(handler: FakeCloud, method: str, path: str, body: bytes) -> bool:
        if portal.is_set():
            handler.reply(200, PORTAL, 'text/html')
            return True
        return False

    FakeCloud.rule = staticmethod(rule)
    outbox = Outbox(str(tmp_path))
    for index in range(5):
        outbox.enqueue(make_alert(index), jpeg_bytes(seed=index))
    uploader = started(fake, outbox)
    try:
        wait_for(lambda: len(requests_to('POST', '/alerts')) >= 4 and
                 uploader.stats.link_state == 'unexpected', what='the portal reported')
        assert f'unexpected answer from {fake}/api/v1/' in uploader.stats.last_error
        assert all(e['alert_state'] == 'pending' for e in outbox.events())
        assert outbox.stats().held == 0 and uploader.stats.permanent_failures == 0
        portal.clear()  # signed in: the server answers again
        wait_for(lambda: outbox.stats().depth == 0, timeout=10, what='the queue drained')
    finally:
        uploader.stop()
    assert all(e['alert_state'] == 'sent' and e['image_state'] == 'sent'
               for e in outbox.events())
    assert uploader.stats.link_state == 'up'


def record(index: int) -> dict:
    return CountRecord(str(uuid.uuid4()), 'edge-1', 'cam0', f'2026-11-23T10:0{index}:00Z', 60,
                       (('stop_bar', 'towards', 'car', index),)).to_json()


NEWER = {'scheme', 'quality', 'speeds', 'vehicles', 'speed_kmh'}  # issue 26's optional fields


def test_an_older_server_gets_the_counts_without_the_fields_it_does_not_know(
        fake: str, tmp_path: Path) -> None:
    """A server from before issue 26 refuses its fields as unknown: counts and alerts arrive."""
    def older_server(handler: FakeCloud, method: str, path: str, body: bytes) -> bool:
        if not path.endswith(('/counts', '/alerts')):
            return False
        unknown = sorted(set(json.loads(body)) & NEWER)
        if unknown:  # FastAPI's 422 of a model with extra='forbid'
            handler.reply(422, {'detail': [
                {'type': 'extra_forbidden', 'loc': ['body', name],
                 'msg': 'Extra inputs are not permitted', 'input': 1} for name in unknown]})
            return True
        return False

    FakeCloud.rule = staticmethod(older_server)
    outbox = Outbox(str(tmp_path / 'edge'))
    outbox.enqueue(CountRecord(str(uuid.uuid4()), 'edge-1', 'cam0', '2026-11-23T10:00:00Z', 60,
                               (('bar', 'away', 'car', 4),), scheme='uk6',
                               quality={'flags': ['dark'], 'observed_s': 60},
                               speeds=(('bar', 'away', 'car', ((45, 2),)),),
                               vehicles=((1.5, 'bar', 'away', 'car', 91.0),)).to_json(),
                   None, kind=COUNTS)
    outbox.enqueue(record(2), None, kind=COUNTS)  # a record without them goes as it is
    outbox.enqueue({**make_alert(3), 'speed_kmh': 88.0}, None)
    uploader = started(fake, outbox)
    try:
        wait_for(lambda: outbox.stats().depth == 0, what='the counts and the alert delivered')
    finally:
        uploader.stop()
    sent = [json.loads(body) for _, method, path, body, _ in FakeCloud.seen
            if path.endswith(('/counts', '/alerts'))]
    assert [sorted(set(body) & NEWER) for body in sent] == [
        ['quality', 'scheme', 'speeds', 'vehicles'], [], [], ['speed_kmh'], []]
    assert sent[1]['counts'] == [{'line': 'bar', 'direction': 'away', 'class_name': 'car',
                                  'count': 4}]
    assert [e['alert_state'] for e in outbox.events()] == ['sent', 'sent', 'sent']


WRONG_ANSWERS = {
    'alert, html': ('POST', '/alerts', 200, PORTAL),
    'alert, empty': ('POST', '/alerts', 201, b''),
    'alert, no event': ('POST', '/alerts', 201, {'id': 1, 'created': True}),
    'alert, no device': ('POST', '/alerts', 201, 'no device'),
    'alert, another event': ('POST', '/alerts', 201, 'another'),
    'alert, cut short': ('POST', '/alerts', 201, 'cut'),
    'image, another event': ('PUT', '/image', 201, 'another'),
    'counts, another record': ('POST', '/counts', 201, 'another'),
}


@pytest.mark.parametrize('case', list(WRONG_ANSWERS))
def test_an_answer_not_naming_the_event_leaves_it_queued(case: str, fake: str,
                                                         tmp_path: Path) -> None:
    method, route, status, wrong = WRONG_ANSWERS[case]

    def rule(handler: FakeCloud, asked: str, path: str, body: bytes) -> bool:
        if asked != method or not path.endswith(route) or len(requests_to(method, route)) > 2:
            return False
        _, right = expected_answer(asked, path, body)
        if isinstance(wrong, bytes):
            handler.reply(status, wrong, 'text/html' if wrong else 'application/json')
        elif wrong == 'another':
            key = 'record_id' if route == '/counts' else 'event_id'
            handler.reply(status, {**right, key: str(uuid.uuid4())})
        elif wrong == 'no device':
            handler.reply(status, {k: v for k, v in right.items() if k != 'device_id'})
        elif wrong == 'cut':
            handler.reply(status, json.dumps(right).encode()[:-5])
        else:
            handler.reply(status, wrong)
        return True

    FakeCloud.rule = staticmethod(rule)
    outbox = Outbox(str(tmp_path))
    if route == '/counts':
        outbox.enqueue(record(1), None, kind=COUNTS)
    else:
        outbox.enqueue(make_alert(0), jpeg_bytes() if route == '/image' else None)
    uploader = started(fake, outbox)
    try:
        wait_for(lambda: outbox.stats().depth == 0, timeout=10, what='the event sent')
    finally:
        uploader.stop()
    assert len(requests_to(method, route)) == 3  # two wrong answers, then the right one
    assert uploader.stats.permanent_failures == 0


# -- item 13: outages are not poison events -------------------------------------------------------
def test_a_short_outage_sets_no_event_aside(fake: str, tmp_path: Path) -> None:
    outage = threading.Event()
    outage.set()

    def rule(handler: FakeCloud, method: str, path: str, body: bytes) -> bool:
        if outage.is_set() and method == 'POST' and path.endswith('/alerts'):
            handler.reply(500, {'detail': 'Internal Server Error'})  # /health still passes
            return True
        return False

    FakeCloud.rule = staticmethod(rule)
    outbox = Outbox(str(tmp_path))
    for index in range(12):
        outbox.enqueue(make_alert(index), None)
    uploader = started(fake, outbox)  # holds of 60 s and more: any would show
    try:
        wait_for(lambda: len(requests_to('POST', '/alerts')) >= 20, what='20 server errors')
        outage.clear()
        wait_for(lambda: outbox.stats().depth == 0, timeout=10, what='all sent after it')
    finally:
        uploader.stop()
    assert outbox.stats().held == 0


def test_images_refused_by_a_full_server_are_not_set_aside(fake: str, tmp_path: Path) -> None:
    full = threading.Event()
    full.set()

    def rule(handler: FakeCloud, method: str, path: str, body: bytes) -> bool:
        if full.is_set() and method == 'PUT':
            handler.reply(507, {'detail': 'snapshot storage is full'})
            return True
        return False

    FakeCloud.rule = staticmethod(rule)
    outbox = Outbox(str(tmp_path))
    for index in range(6):
        outbox.enqueue(make_alert(index), jpeg_bytes(seed=index))
    uploader = started(fake, outbox)
    try:
        wait_for(lambda: len(requests_to('PUT', '/image')) >= 15, what='15 refused images')
        full.clear()
        wait_for(lambda: outbox.stats().depth == 0, timeout=10, what='all images sent')
    finally:
        uploader.stop()
    assert [e['image_state'] for e in outbox.events()] == ['sent'] * 6


def test_a_poison_event_is_held_for_growing_times(fake: str, tmp_path: Path) -> None:
    poison = make_alert(0)

    def rule(handler: FakeCloud, method: str, path: str, body: bytes) -> bool:
        if method == 'POST' and path.endswith('/alerts') and \
                event_id_of(method, path, body) == poison['event_id']:
            handler.reply(500, {'detail': 'Internal Server Error'})
            return True
        return False

    FakeCloud.rule = staticmethod(rule)
    outbox = Outbox(str(tmp_path))
    outbox.enqueue(poison, None)
    for index in range(1, 4):
        outbox.enqueue(make_alert(index), None)

    def holds() -> List[float]:
        """Pauses between tries of the poison event longer than any backoff (0.1 s)."""
        tries = [at for at, body in requests_to('POST', '/alerts')
                 if json.loads(body)['event_id'] == poison['event_id']]
        return [gap for gap in (b - a for a, b in pairwise(tries)) if gap >= 0.25]

    uploader = started(fake, outbox, hold_initial=0.5, hold_max=2.0, upload_interval=0.1,
                       retry_max_delay=0.1)
    try:
        wait_for(lambda: len(holds()) >= 4, timeout=30, what='the poison event held four times')
    finally:
        uploader.stop()
    first, second, third, fourth = holds()[:4]
    # Each bound leaves a busy machine half a hold of lateness and still tells the rule
    # apart: held 0.5 s, then doubled (not 0.5 again), then capped at 2 s (not 4 s).
    assert 0.48 <= first < 0.98 and 0.98 <= second < 1.98
    assert 1.98 <= third < 3.5 and 1.98 <= fourth < 3.5
    assert outbox.stats().depth == 1 and outbox.stats().held == 1
    assert uploader.stats.permanent_failures == 0 and 'set aside' in uploader.stats.last_error


def test_held_events_go_as_soon_as_the_link_is_back(fake: str, tmp_path: Path) -> None:
    poison, cured, down = make_alert(0), threading.Event(), threading.Event()

    def rule(handler: FakeCloud, method: str, path: str, body: bytes) -> bool:
        if down.is_set():
            handler.reply(503, {'status': 'degraded'})  # the health check too
            return True
        if method == 'POST' and path.endswith('/alerts') and not cured.is_set() and \
                event_id_of(method, path, body) == poison['event_id']:
            handler.reply(500, {'detail': 'Internal Server Error'})
            return True
        return False

    FakeCloud.rule = staticmethod(rule)
    outbox = Outbox(str(tmp_path))
    outbox.enqueue(poison, None)
    outbox.enqueue(make_alert(1), None)
    uploader = started(fake, outbox)  # a first hold of 60 s
    try:
        wait_for(lambda: outbox.stats().held == 1 and outbox.stats().depth == 1,
                 what='the poison event held')
        cured.set()
        down.set()
        wait_for(lambda: uploader.stats.link_state == 'down', what='the link down')
        down.clear()
        wait_for(lambda: outbox.stats().depth == 0, timeout=5, what='the held event sent')
    finally:
        uploader.stop()


# -- item 14: bounded answers ---------------------------------------------------------------
def test_a_huge_answer_is_not_read(fake: str, tmp_path: Path) -> None:
    size, written = 100 * 1024 * 1024, []

    def rule(handler: FakeCloud, method: str, path: str, body: bytes) -> bool:
        if method == 'POST' and path.endswith('/alerts') and nth_post(1):
            handler.send_response(201)
            handler.send_header('Content-Type', 'application/json')
            handler.send_header('Content-Length', str(size))
            handler.end_headers()
            chunk, sent = b' ' * (1024 * 1024), 0  # JSON whitespace, then never the object
            try:
                while sent < size:
                    handler.wfile.write(chunk)
                    sent += len(chunk)
            except OSError:
                pass
            written.append(sent)
            handler.close_connection = True
            return True
        return False

    FakeCloud.rule = staticmethod(rule)
    outbox = Outbox(str(tmp_path))
    budget = DataBudget(outbox, 0)
    outbox.enqueue(make_alert(0), None)
    uploader = Uploader(settings(fake, 'k'), outbox, budget)
    uploader.start()
    try:
        wait_for(lambda: outbox.stats().depth == 0 and written, timeout=20, what='alert sent')
    finally:
        uploader.stop()
    assert written[0] < size / 2  # the uploader hung up early
    assert budget.figures().used < 1024 * 1024  # what it read: 64 KB of the answer, not 100 MB
    assert len(requests_to('POST', '/alerts')) == 2


# -- item 15: snapshots of failed alerts --------------------------------------------------------
def test_the_snapshot_of_an_alert_that_failed_for_good_is_removed(fake: str,
                                                                  tmp_path: Path) -> None:
    refused = make_alert(0)

    def rule(handler: FakeCloud, method: str, path: str, body: bytes) -> bool:
        if method == 'POST' and event_id_of(method, path, body) == refused['event_id']:
            handler.reply(422, {'detail': 'detected_at lies in the future'})
            return True
        return False

    FakeCloud.rule = staticmethod(rule)
    outbox = Outbox(str(tmp_path), max_storage_bytes=10**9)
    empty = outbox.stats().stored_bytes
    outbox.enqueue(refused, jpeg_bytes(seed=1))
    outbox.enqueue(make_alert(1), jpeg_bytes(seed=2))
    uploader = started(fake, outbox)
    try:
        wait_for(lambda: outbox.stats().depth == 0, timeout=10, what='the queue done')
    finally:
        uploader.stop()
    events = outbox.events()
    assert [(e['alert_state'], e['image_state']) for e in events] == [
        ('failed', 'dropped'), ('sent', 'sent')]
    assert list(outbox.snapshots.iterdir()) == []
    assert outbox.stats().stored_bytes <= empty + 8192  # the database only
    assert '422' in events[0]['last_error']


def test_the_real_servers_answers_store_events_and_refusals_drop_snapshots(
        cloud, tmp_path: Path) -> None:  # noqa: F811
    server, key = cloud
    outbox = Outbox(str(tmp_path / 'edge'))
    refused = make_alert(0)
    refused['detected_at'] = '2999-01-01T00:00:00Z'  # the server refuses it (422)
    outbox.enqueue(refused, jpeg_bytes(seed=1))
    outbox.enqueue(make_alert(1), jpeg_bytes(seed=2))
    outbox.enqueue(record(1), None, kind=COUNTS)
    uploader = Uploader(settings(server.url, key, heartbeat_interval=0.2), outbox,
                        DataBudget(outbox, 0), lambda: {'queue_depth': 0})
    uploader.start()
    try:
        wait_for(lambda: outbox.stats().depth == 0, what='alerts, snapshot and counts done')
        wait_for(lambda: requests.get(f'{server.url}/api/v1/devices', timeout=5).json()[0][
            'health'].get('queue_depth') == 0, what='a heartbeat stored')
    finally:
        uploader.stop()
    assert [(e['alert_state'], e['image_state']) for e in outbox.events()] == [
        ('failed', 'dropped'), ('sent', 'sent'), ('sent', 'none')]
    assert list(outbox.snapshots.iterdir()) == []  # the refused alert's snapshot too
    assert uploader.stats.link_state == 'up' and uploader.stats.permanent_failures == 1
