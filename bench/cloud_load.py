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
Cloud server load: N simulated devices posting alerts and 60 KB JPEGs at once.

Starts ``vehicle-detection-cloud serve`` in production mode (``--workers``,
SQLite default, default rate limit) on 127.0.0.1, registers the devices, then
each device posts ``--rate`` alerts a second (paced, like a real device: open
loop, so a slow server shows as latency and a shortfall, not as a slower
client) and uploads a snapshot with every ``--image-every``-th alert, for
``--seconds``. Client devices run as threads
in ``--clients`` processes (one Python process cannot load a server alone).

Targets on a 2-core machine: >= 300 alerts/s, >= 100 images/s, p99 <= 200 ms,
zero errors. The last line is one JSON object.

    python bench/cloud_load.py [--devices 50] [--seconds 20] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
from multiprocessing import Pool
import os
from pathlib import Path
import statistics
import sys
import tempfile
import threading
import time
from typing import Dict, List, Tuple
import uuid

from bench_stats import percentile
import cv2
import numpy as np
import requests

TEST_HELPERS = Path(__file__).resolve().parents[1] / 'test'


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


def device_loop(url: str, name: str, key: str, image: bytes, image_every: int,
                rate: float, stop_at: float, out: List[Tuple[str, float, int]]) -> None:
    """Post ``rate`` alerts a second (and every n-th image) as one device until ``stop_at``."""
    session = requests.Session()
    session.headers['X-API-Key'] = key
    index = 0
    pause = threading.Event()
    # Devices start spread over one period, as real ones would.
    next_at = time.monotonic() + (hash(name) % 1000) / 1000 / rate
    while next_at < stop_at:
        pause.wait(max(0.0, next_at - time.monotonic()))
        next_at += 1.0 / rate
        event = str(uuid.uuid4())
        body = {'event_id': event, 'device_id': name, 'camera_id': 'cam0',
                'detected_at': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()),
                'track_id': index, 'class_name': 'car', 'confidence': 0.9,
                'bbox': [10, 20, 200, 180], 'image_width': 1280, 'image_height': 720}
        out.append(_timed('alert', session.post, f'{url}/api/v1/alerts', json=body,
                          headers={'Idempotency-Key': event}, timeout=10))
        if index % image_every == 0:
            out.append(_timed('image', session.put, f'{url}/api/v1/alerts/{event}/image',
                              data=image, timeout=10, headers={'Content-Type': 'image/jpeg'}))
        index += 1


def _timed(kind: str, call, url: str, **options) -> Tuple[str, float, int]:
    start = time.perf_counter()
    try:
        status = call(url, **options).status_code
    except requests.RequestException:
        status = 0
    return kind, (time.perf_counter() - start) * 1e3, status


def client_process(args: Tuple[str, List[Tuple[str, str]], int, float, float, float]
                   ) -> list:
    """Run one client process's devices as threads; return (kind, ms, status) records."""
    url, devices, image_every, rate, start_at, seconds = args
    image = snapshot(os.getpid())
    records: List[Tuple[str, float, int]] = []
    time.sleep(max(0.0, start_at - time.time()))  # every process starts together
    stop_at = time.monotonic() + seconds
    threads = [threading.Thread(target=device_loop, args=(url, name, key, image, image_every,
                                                          rate, stop_at, records))
               for name, key in devices]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return records


def main() -> None:
    """Run the load and print the figures, then one JSON line."""
    parser = argparse.ArgumentParser(description='cloud server load benchmark')
    parser.add_argument('--devices', type=int, default=50)
    parser.add_argument('--seconds', type=float, default=20.0)
    # Blocking work (SQLite, fsync) queues up inside a worker: one more worker than
    # cores keeps a core busy while another worker waits (measured: p99 202 ms with
    # 2 workers, 118 ms with 3 on 2 cores).
    parser.add_argument('--workers', type=int, default=(os.cpu_count() or 2) + 1)
    parser.add_argument('--clients', type=int, default=2, help='client processes')
    parser.add_argument('--image-every', type=int, default=3,
                        help='upload a snapshot with every n-th alert')
    parser.add_argument('--rate', type=float, default=6.5,
                        help='alerts a second per device (50 x 6.5 = 325/s offered)')
    args = parser.parse_args()
    sys.path.insert(0, str(TEST_HELPERS))  # the tests' server fixture, shared
    from cloud_helpers import add_device, CloudServer

    with tempfile.TemporaryDirectory() as folder:
        db, storage = f'sqlite:///{folder}/cloud.db', f'{folder}/images'
        keys = [(f'dev{i:03d}', add_device(f'dev{i:03d}', db, storage))
                for i in range(args.devices)]
        server = CloudServer(db, storage, ['--workers', str(args.workers)])
        try:
            shares = [keys[i::args.clients] for i in range(args.clients)]
            start_at = time.time() + 1.0
            with Pool(args.clients) as pool:
                parts = pool.map(client_process, [(server.url, share, args.image_every,
                                                   args.rate, start_at, args.seconds)
                                                  for share in shares if share])
        finally:
            server.stop()
    records = [record for part in parts for record in part]
    by_kind: Dict[str, List[float]] = {'alert': [], 'image': []}
    errors = 0
    for kind, ms, status in records:
        by_kind[kind].append(ms)
        errors += status not in (200, 201)
    latencies = [ms for _, ms, _ in records]
    result = {
        'devices': args.devices, 'workers': args.workers, 'seconds': args.seconds,
        'offered_alerts_per_s': round(args.devices * args.rate, 1),
        'alerts_per_s': round(len(by_kind['alert']) / args.seconds, 1),
        'images_per_s': round(len(by_kind['image']) / args.seconds, 1),
        'p50_ms': round(statistics.median(latencies), 1),
        'p99_ms': round(percentile(latencies, 0.99), 1),
        'errors': errors, 'requests': len(records)}
    result['alerts_ratio'] = round(result['alerts_per_s'] / 300, 3)
    result['images_ratio'] = round(result['images_per_s'] / 100, 3)
    result['p99_ratio'] = round(result['p99_ms'] / 200, 3)
    result['meets_targets'] = (result['alerts_ratio'] >= 1 and result['images_ratio'] >= 1
                               and result['p99_ratio'] <= 1 and errors == 0)
    print(f'{args.devices} devices, {args.workers} workers, {args.seconds:.0f} s: '
          f'{result["alerts_per_s"]} alerts/s (target 300), {result["images_per_s"]} images/s '
          f'(target 100), p50 {result["p50_ms"]} ms, p99 {result["p99_ms"]} ms (target 200), '
          f'{errors} errors')
    print(json.dumps(result))


if __name__ == '__main__':
    main()
