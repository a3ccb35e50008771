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
The real uploader and outbox against a fake cloud that is down, full or refuses one event.

Server-wide outages and a full snapshot store set no event aside; a poison
event is held for growing times, and held events go as soon as the link is
back. Times are scaled down through the settings, never slept.
"""

from __future__ import annotations

from itertools import pairwise
import json
from pathlib import Path
import threading
from typing import List

from cloud_helpers import jpeg_bytes
from fake_cloud import event_id_of, FakeCloud, requests_to
from test_bridge_faults import make_alert, wait_for
from uploader_runs import started

from vehicle_detection.core.bridge.outbox import Outbox


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
