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
What the cloud server answers when it has stored something.

A 2xx alone proves nothing: a captive portal, a proxy's error page or a
cache answers 200 too. An event counts as stored only when the answer is
the server's JSON naming it (``cloud/server/models.py``: ``AlertCreated``,
``ImageStored``, ``CountsCreated``; the heartbeat and ``/health`` answers
in ``routes_ingest.py`` and ``app.py``).
"""

from __future__ import annotations

import uuid

from vehicle_detection.core.bridge.transport import Answer
from vehicle_detection.wire import is_valid_name


def alert_stored(answer: Answer, event_id: str) -> bool:
    """Tell whether ``answer`` stores alert ``event_id`` under a device."""
    body = answer.json_object()
    return body is not None and _same_id(body.get('event_id'), event_id) and \
        isinstance(body.get('device_id'), str) and is_valid_name(body['device_id'])


def image_stored(answer: Answer, event_id: str) -> bool:
    """Tell whether ``answer`` stores the snapshot of ``event_id``."""
    body = answer.json_object()
    return body is not None and _same_id(body.get('event_id'), event_id)


def counts_stored(answer: Answer, record_id: str) -> bool:
    """Tell whether ``answer`` stores count record ``record_id``."""
    body = answer.json_object()
    return body is not None and _same_id(body.get('record_id'), record_id)


def server_ok(answer: Answer) -> bool:
    """Tell whether ``answer`` is the server's ``{"status": "ok", ...}`` (health, heartbeat)."""
    body = answer.json_object()
    return body is not None and body.get('status') == 'ok'


def _same_id(value: object, expected: str) -> bool:
    if not isinstance(value, str):
        return False
    return _canonical(value) == _canonical(expected)


def _canonical(identifier: str) -> str:
    try:  # the server writes UUIDs in their canonical form
        return str(uuid.UUID(identifier))
    except ValueError:
        return identifier
