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
Simulated edge devices for bench/cloud_load.py: paced alerts and snapshots, with retries.

Each device posts its alerts at a fixed rate (open loop, as a real camera:
a slow server shows as latency and a shortfall, not as a slower client) and
uploads a snapshot with every n-th alert. Every snapshot is a different
file (its event id in a JPEG comment), as every frame of a real camera is,
so each upload is stored, not linked to an earlier one. Like the edge's
uploader, a device sends a request again on a network error, 408, 429 or
5xx (the same event id: the server stores it once), until a deadline.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import http.client
import json
import os
import threading
import time
from typing import Dict, List, Optional, Tuple
from urllib.parse import urlsplit
import uuid

import cv2
import numpy as np

RETRY_DEADLINE_S = 30.0
FIRST_PAUSE_S = 0.05


def snapshot(seed: int, target: int = 60 * 1024) -> bytes:
    """Return a JPEG of about ``target`` bytes, like a 640x360 road snapshot."""
    rng = np.random.default_rng(seed)
    base = cv2.resize(rng.integers(0, 255, (36, 64, 3), np.uint8), (640, 360))
    image = cv2.add(base, rng.integers(0, 40, (360, 640, 3), np.uint8))
    for quality in range(95, 10, -5):
        data = cv2.imencode('.jpg', image, [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes()
        if len(data) <= target:
            return data
    return data


def tagged(picture: bytes, tag: str) -> bytes:
    """Return ``picture`` with ``tag`` in a comment segment (COM) after SOI: another file."""
    text = tag.encode()
    return picture[:2] + b'\xff\xfe' + (2 + len(text)).to_bytes(2, 'big') + text + picture[2:]


@dataclass
class Outcome:
    """What one device sent and what the server confirmed."""

    # (kind, ms from the first try to the answer, final status, tries)
    requests: List[Tuple[str, float, int, int]] = field(default_factory=list)
    alerts_confirmed: List[str] = field(default_factory=list)  # event ids
    images_confirmed: List[str] = field(default_factory=list)
    unconfirmed: List[str] = field(default_factory=list)  # gave up (an error)
    retry_causes: Dict[int, int] = field(default_factory=dict)  # status (0: none) -> tries
    started: float = float('inf')  # epoch seconds: the first device's start
    finished: float = 0.0  # the last device's end
    cpu_s: float = 0.0  # CPU time of the load generator

    def add(self, other: 'Outcome') -> None:
        """Add ``other``'s requests and events to these."""
        self.requests += other.requests
        self.alerts_confirmed += other.alerts_confirmed
        self.images_confirmed += other.images_confirmed
        self.unconfirmed += other.unconfirmed
        for status, count in other.retry_causes.items():
            self.retry_causes[status] = self.retry_causes.get(status, 0) + count
        self.started = min(self.started, other.started)
        self.finished = max(self.finished, other.finished)
        self.cpu_s += other.cpu_s


class Client:
    """One keep-alive HTTP connection (http.client: the load generator must be cheap)."""

    def __init__(self, url: str, key: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or '127.0.0.1', parts.port or 80
        self.key = key
        self.connection: Optional[http.client.HTTPConnection] = None

    def send(self, method: str, path: str, body: bytes, content_type: str) -> int:
        """Send one request; return its status (0: no answer)."""
        try:
            if self.connection is None:
                self.connection = http.client.HTTPConnection(self.host, self.port, timeout=10)
            self.connection.request(method, path, body, {
                'X-API-Key': self.key, 'Content-Type': content_type})
            answer = self.connection.getresponse()
            answer.read()
            if answer.getheader('connection', '').lower() == 'close':
                self.close()
            return answer.status
        except (OSError, http.client.HTTPException):
            self.close()
            return 0

    def close(self) -> None:
        """Drop the connection (the next request opens a new one)."""
        if self.connection is not None:
            self.connection.close()
            self.connection = None


def retried(client: Client, kind: str, method: str, path: str, body: bytes,
            content_type: str, outcome: Outcome) -> bool:
    """Send until confirmed (200/201) or refused for good; True when confirmed."""
    start = time.perf_counter()
    pause, tries, wait = FIRST_PAUSE_S, 0, threading.Event()
    while True:
        status = client.send(method, path, body, content_type)
        tries += 1
        retry = status == 0 or status in (408, 429) or status >= 500
        if not retry or time.perf_counter() - start > RETRY_DEADLINE_S:
            break
        outcome.retry_causes[status] = outcome.retry_causes.get(status, 0) + 1
        wait.wait(pause)
        pause = min(1.0, pause * 2)
    outcome.requests.append((kind, (time.perf_counter() - start) * 1e3, status, tries))
    return status in (200, 201)


def run_device(url: str, name: str, key: str, picture: bytes, image_every: int, rate: float,
               stop_at: float, outcome: Outcome) -> None:
    """Be one device until ``stop_at`` (monotonic): alerts at ``rate``, every n-th a picture."""
    client = Client(url, key)
    index, pause = 0, threading.Event()
    next_at = time.monotonic() + (hash(name) % 1000) / 1000 / rate  # devices spread out
    while next_at < stop_at:
        pause.wait(max(0.0, next_at - time.monotonic()))
        next_at += 1.0 / rate
        event = str(uuid.uuid4())
        body = json.dumps({
            'event_id': event, 'device_id': name, 'camera_id': 'cam0',
            'detected_at': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()),
            'track_id': index, 'class_name': 'car', 'confidence': 0.9,
            'bbox': [10, 20, 200, 180], 'image_width': 1280, 'image_height': 720}).encode()
        if not retried(client, 'alert', 'POST', '/api/v1/alerts', body, 'application/json',
                       outcome):
            outcome.unconfirmed.append(event)
        else:
            outcome.alerts_confirmed.append(event)
            if index % image_every == 0:
                if retried(client, 'image', 'PUT', f'/api/v1/alerts/{event}/image',
                           tagged(picture, event), 'image/jpeg', outcome):
                    outcome.images_confirmed.append(event)
                else:
                    outcome.unconfirmed.append(event)
        index += 1
    client.close()


def client_process(args: Tuple[str, List[Tuple[str, str]], int, float, float, float]
                   ) -> Outcome:
    """Run one process's share of the devices as threads; return what they sent."""
    url, devices, image_every, rate, start_at, seconds = args
    picture = snapshot(os.getpid())
    outcomes = [Outcome() for _ in devices]
    time.sleep(max(0.0, start_at - time.time()))  # every process starts together
    stop_at = time.monotonic() + seconds
    threads = [threading.Thread(target=run_device, args=(url, name, key, picture, image_every,
                                                         rate, stop_at, outcome))
               for (name, key), outcome in zip(devices, outcomes)]
    merged = Outcome(started=time.time())
    cpu = time.process_time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    finished = time.time()
    for outcome in outcomes:
        merged.add(outcome)
    merged.finished = finished
    merged.cpu_s = time.process_time() - cpu
    return merged
