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
The real uploader and outbox against a fake cloud whose answers would make it wait or read forever.

Long Retry-After (in seconds or as a date), trickling answers, endless
answers: each wait and each read is bounded. Times are scaled down through
the settings (a 1 s cap for a 300 s one), never slept.
"""

from __future__ import annotations

from email.utils import formatdate
import json
from pathlib import Path
import time

from fake_cloud import FakeCloud, requests_to
import pytest
from test_bridge_faults import make_alert, settings, wait_for
from uploader_runs import started

from vehicle_detection.core.bridge.budget import DataBudget
from vehicle_detection.core.bridge.outbox import Outbox
from vehicle_detection.core.bridge.uploader import Uploader


def nth_post(n: int) -> bool:
    """Tell whether the alert post being answered is the ``n``-th one (from 1)."""
    return len(requests_to('POST', '/alerts')) == n


def trickle(handler: FakeCloud, head: bytes, byte: bytes) -> None:
    """Send ``head``, then one byte every 0.2 s until the client hangs up."""
    try:
        handler.wfile.write(head)
        while not FakeCloud.closing.wait(0.2):
            handler.wfile.write(byte)
    except OSError:
        pass
    handler.close_connection = True


def first_post_waits_a_day(handler: FakeCloud, method: str, path: str, body: bytes) -> bool:
    """Answer the first alert post with 429 and a Retry-After of a day (a fake cloud rule)."""
    if method == 'POST' and path.endswith('/alerts') and nth_post(1):
        handler.reply(429, {'detail': 'slow down'}, headers={'Retry-After': '86400'})
        return True
    return False


# -- item 10: Retry-After ---------------------------------------------------------------------
@pytest.mark.parametrize('attempts', [3, 1])  # 1: the next round waits as long
def test_a_retry_after_of_a_day_is_cut_to_max_retry_after(attempts: int, fake: str,
                                                          tmp_path: Path) -> None:
    FakeCloud.rule = staticmethod(first_post_waits_a_day)
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
    FakeCloud.rule = staticmethod(first_post_waits_a_day)
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
        third = make_alert(2)
        outbox.enqueue(third, None)
        uploader.wake()
        # The round under way may take the new alert before the wake is read: the wake
        # then ends the wait after its 429 once more (one more try, then the 300 s).
        wait_for(lambda: any(json.loads(body)['event_id'] == third['event_id']
                             for _, body in requests_to('POST', '/alerts')),
                 what='the next 429')
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
