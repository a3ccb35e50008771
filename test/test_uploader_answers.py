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
The real uploader and outbox against a fake cloud whose answers are not the server's.

Captive portals, older servers, answers that do not name the event: only the
expected answer stores an event. An alert the server refuses for good has
its snapshot removed (against the fake cloud and the real server).
"""

from __future__ import annotations

import json
from pathlib import Path
import threading
import uuid

from cloud_helpers import jpeg_bytes
from fake_cloud import event_id_of, expected_answer, FakeCloud, requests_to
import pytest
import requests
from test_bridge_faults import cloud, make_alert, settings, wait_for  # noqa: F401
from uploader_runs import started

from vehicle_detection.core.bridge.budget import DataBudget
from vehicle_detection.core.bridge.outbox import COUNTS, Outbox
from vehicle_detection.core.bridge.uploader import Uploader
from vehicle_detection.wire import CountRecord

PORTAL = b'<html><body>Sign in to the hotel Wi-Fi to continue</body></html>'


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
