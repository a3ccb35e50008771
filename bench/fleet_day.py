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
A fleet's day for bench/operators.py: generated alerts and count records, posted over HTTP.

``day_of`` gives one device's day (1000 alerts and 1440 one-minute count
records of 4 rows, times a scale), ``fill_part`` posts the days of some
devices from concurrent threads, and ``ingest`` keeps alerts and count
records arriving while the operators read.
"""

from __future__ import annotations

from datetime import datetime, timezone
import multiprocessing
import random
import statistics
import threading
import time
from typing import List, Tuple
import uuid

from bench_stats import percentile
import requests

LINES, DIRECTIONS, CLASSES = ('north', 'south'), ('towards', 'away'), ('car', 'truck', 'bus')


def iso(epoch: float) -> str:
    """Format epoch seconds as UTC ISO 8601."""
    return datetime.fromtimestamp(epoch, timezone.utc).strftime('%Y-%m-%dT%H:%M:%S.%fZ')


def count_record(device: str, camera: str, start: int) -> dict:
    """Return a one-minute count record of 4 rows (the same for the same minute)."""
    rng = random.Random(f'{device}{camera}{start}')
    return {'record_id': str(uuid.uuid4()), 'device_id': device, 'camera_id': camera,
            'period_start': iso(start), 'period_s': 60, 'counts': [
                {'line': line, 'direction': direction, 'class_name': rng.choice(CLASSES),
                 'count': rng.randint(0, 9)} for line in LINES for direction in DIRECTIONS]}


def alert(device: str, detected: float, rng: random.Random) -> dict:
    """Return an alert of ``device`` detected at epoch ``detected``."""
    return {'event_id': str(uuid.uuid4()), 'device_id': device, 'camera_id': 'cam0',
            'detected_at': iso(detected), 'track_id': rng.randint(0, 10 ** 6),
            'class_name': rng.choice(CLASSES), 'confidence': 0.8,
            'bbox': [10, 20, 200, 180], 'image_width': 1280, 'image_height': 720}


def day_of(device: str, end: float, scale: float) -> List[Tuple[str, dict]]:
    """Return one device's day: (path, body) of its alerts and its minutes of counts."""
    rng = random.Random(device)
    minute = int(end) // 60 * 60
    posts = [('alerts', alert(device, end - rng.uniform(0, 86400), rng))
             for _ in range(round(1000 * scale))]
    posts += [('counts', count_record(device, 'cam0', minute - 60 * (m + 1)))
              for m in range(round(1440 * scale))]
    rng.shuffle(posts)
    return posts


def fill_part(job: Tuple[str, List[Tuple[str, str]], float, float, int]) -> Tuple[int, int]:
    """Post the days of some devices from ``threads`` threads; return (posts, errors)."""
    url, devices, end, scale, threads = job
    posts = [(key, path, body) for name, key in devices
             for path, body in day_of(name, end, scale)]
    errors = [0] * threads

    def post(part: int) -> None:
        with requests.Session() as session:
            for key, path, body in posts[part::threads]:
                try:
                    code = session.post(f'{url}/api/v1/{path}', json=body, timeout=60,
                                        headers={'X-API-Key': key}).status_code
                except requests.RequestException:
                    code = 0
                errors[part] += code not in (200, 201)

    workers = [threading.Thread(target=post, args=(part,)) for part in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return len(posts), sum(errors)


def ingest(url: str, keys: List[Tuple[str, str]], rate: float, seconds: float,
           out: 'multiprocessing.Queue[dict]') -> None:
    """Keep alerts arriving (``rate`` a second) and a count record a minute per device."""
    rng, latencies, errors = random.Random(), [], 0
    start = time.monotonic()
    events = sorted([(i / rate, 'alerts') for i in range(int(seconds * rate))] +
                    [(i * 60 / len(keys), 'counts')
                     for i in range(int(seconds * len(keys) / 60))])
    pause = threading.Event()
    with requests.Session() as session:
        for i, (at, path) in enumerate(events):
            pause.wait(max(0.0, start + at - time.monotonic()))
            name, key = keys[i % len(keys)]
            body = alert(name, time.time(), rng) if path == 'alerts' else \
                count_record(name, 'live', int(time.time()) // 60 * 60)
            began = time.perf_counter()
            try:
                code = session.post(f'{url}/api/v1/{path}', json=body, timeout=30,
                                    headers={'X-API-Key': key}).status_code
            except requests.RequestException:
                code = 0
            latencies.append((time.perf_counter() - began) * 1e3)
            errors += code not in (200, 201)
    out.put({'posts_per_s': round(len(events) / max(seconds, time.monotonic() - start), 1),
             'p50_ms': round(statistics.median(latencies), 1) if latencies else 0.0,
             'p99_ms': round(percentile(latencies, 0.99), 1), 'errors': errors})
