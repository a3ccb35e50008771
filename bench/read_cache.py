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
The read cache under N dashboard operators while a fleet keeps posting: hit rate, latencies.

A fleet's day is written into a SQLite database (``--devices`` devices,
``--alerts`` alerts each over 24 h, a 15-minute count record per device for
24 h: the counts panel's full answer), then ``serve --workers`` runs twice on
it, side by side in one run: with the read cache off (``--cache-ttl 0``) and
on (the defaults). Each phase, ``--operators`` operators refresh like the
dashboard every 5 s: devices, alerts (the first page, then ``after_id``),
stats, counts in 15-minute buckets over 24 h and the monitor panel, each
with the ETag of its last answer (``If-None-Match``, as the browser does);
meanwhile the fleet posts at its real rate (1000 alerts, 1440 count
records, 1440 heartbeats a device a day). Printed: per-route p50/p95, mean
and p95 refresh, errors, the cache's hit rate (server counters), a cached
read's p50/p95 among the operators and each read asked alone after them,
and the ratio cache on/off. Targets (issue 28): hit rate >= 85 %, a cached
read < 100 ms. The last line is one JSON object.

    python bench/read_cache.py [--operators 50] [--seconds 30] [--workers 3]
"""

from __future__ import annotations

import argparse
from datetime import datetime, timedelta, timezone
import json
import math
from multiprocessing import Pool
from pathlib import Path
import random
import re
import statistics
import sys
import tempfile
import threading
import time
from typing import Any, Dict, List, Tuple
import uuid

from bench_stats import percentile
import requests

TEST_HELPERS = Path(__file__).resolve().parents[1] / 'test'
PERIOD_S = 5.0
DAY_S = 86400
Record = Tuple[str, float, int, str]  # route, ms, status, X-Cache


def fill(db: str, devices: int, alerts: int) -> None:
    """Write a fleet's day straight into the database (the server is not running yet)."""
    from sqlalchemy import insert, select
    from vehicle_detection.cloud.server.db import Alert, CountRecord, Device, TrafficCount
    from vehicle_detection.cloud.server.engine import make_engine

    engine = make_engine(db)
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    quarter = int(time.time()) // 900 * 900
    with engine.begin() as connection:
        for pk in connection.execute(select(Device.id).order_by(Device.id)).scalars().all():
            connection.execute(insert(Alert), [
                {'event_id': str(uuid.uuid4()), 'device_id': pk, 'camera_id': 'cam0',
                 'detected_at': now - timedelta(seconds=DAY_S * (i + 0.5) / alerts),
                 'received_at': now, 'track_id': i, 'class_name': ('car', 'truck')[i % 2],
                 'confidence': 0.9, 'bbox': [1.0, 2.0, 30.0, 40.0], 'image_width': 640,
                 'image_height': 360} for i in range(alerts)])
            for q in range(1, 97):
                start = quarter - q * 900
                record = connection.execute(insert(CountRecord).values(
                    record_id=str(uuid.uuid4()), device_id=pk, camera_id='cam0',
                    period_start=start, period_s=900, received_at=now).returning(
                    CountRecord.id)).scalar_one()
                connection.execute(insert(TrafficCount), [
                    {'record_id': record, 'device_id': pk, 'line': 'road', 'direction': way,
                     'class_name': kind, 'period_start': start, 'count': 7}
                    for way in ('towards', 'away') for kind in ('car', 'truck')])
    engine.dispose()


def ingest(url: str, keys: List[Tuple[str, str]], until: float, stop: threading.Event) -> int:
    """Post like the fleet: alerts, one-minute count records and heartbeats; return errors."""
    per_s = len(keys) * 1440 / DAY_S  # a device a day: 1440 heartbeats and count records
    session, errors, sent = requests.Session(), 0, 0
    minute = int(time.time()) // 60 * 60
    begun = time.monotonic()
    while time.monotonic() < until and not stop.is_set():
        name, key = keys[sent % len(keys)]
        bodies = fleet_posts(name, minute + 60 * (sent // len(keys)), sent)
        for path, body in bodies:
            try:
                answer = session.post(f'{url}/api/v1/{path}', json=body, timeout=30,
                                      headers={'X-API-Key': key})
                errors += answer.status_code not in (200, 201)
            except requests.RequestException:
                errors += 1
        sent += 1
        stop.wait(max(0.0, begun + sent / per_s - time.monotonic()))
    return errors


def fleet_posts(name: str, minute: int, sent: int) -> List[Tuple[str, Any]]:
    """Return one device's posts of a turn: heartbeat, counts, and an alert 1000 times in 1440."""
    from vehicle_detection.wire import CountRecord as WireCounts, utc_iso

    posts: List[Tuple[str, Any]] = [
        (f'devices/{name}/heartbeat', {'cpu_percent': 20.0}),
        ('counts', WireCounts(str(uuid.uuid4()), name, 'cam0', utc_iso(
            datetime.fromtimestamp(minute, timezone.utc)), 60,
            (('road', 'towards', 'car', 2),)).to_json())]
    if random.random() < 1000 / 1440:
        posts.append(('alerts', {
            'event_id': str(uuid.uuid4()), 'device_id': name, 'camera_id': 'cam0',
            'detected_at': utc_iso(datetime.now(timezone.utc)), 'track_id': sent,
            'class_name': 'car', 'confidence': 0.9, 'bbox': [1.0, 2.0, 30.0, 40.0],
            'image_width': 640, 'image_height': 360}))
    return posts


def browser_session() -> requests.Session:
    """
    Return a session that asks a GET again on a kept-alive connection closed meanwhile.

    The server closes a connection idle for 5 s, the refresh period: a GET
    sent as it closes fails, and a browser sends it again on a new one.
    """
    from requests.adapters import HTTPAdapter
    from urllib3.util.retry import Retry

    session = requests.Session()
    session.mount('http://', HTTPAdapter(max_retries=Retry(
        total=1, connect=0, read=1, status=0, other=0, allowed_methods=['GET'])))
    return session


def operator(url: str, start_at: float, until: float) -> List[Record]:
    """Refresh like the dashboard every 5 s until ``until``; return what each read took."""
    session = browser_session()
    etags: Dict[str, str] = {}
    newest = 0
    records: List[Record] = []
    time.sleep(max(0.0, start_at - time.time()))
    while time.time() < until:
        began = time.time()
        step = 900 * 1000
        end = math.ceil(began * 1000 / step) * step
        counts = (f'/api/v1/counts?from={_iso(end - DAY_S * 1000)}&to={_iso(end)}'
                  '&bucket=15min&by=direction')
        alerts = f'/api/v1/alerts?limit=60&after_id={newest}'
        for route, path in (('devices', '/api/v1/devices'), ('alerts', alerts),
                            ('stats', '/api/v1/stats'), ('counts', counts),
                            ('server', '/api/v1/server')):
            headers = {'If-None-Match': etags[path]} if path in etags else {}
            sent = time.perf_counter()
            try:
                answer = session.get(url + path, headers=headers, timeout=60)
                status = answer.status_code
            except requests.RequestException:
                records.append((route, (time.perf_counter() - sent) * 1000, 0, ''))
                continue
            records.append((route, (time.perf_counter() - sent) * 1000, status,
                            answer.headers.get('X-Cache', '')))
            if status == 200 and 'ETag' in answer.headers:
                etags[path] = answer.headers['ETag']
            if route == 'alerts' and status == 200 and answer.json()['items']:
                newest = max(newest, answer.json()['items'][0]['id'])
            if route == 'counts':  # the dashboard's four reads (the monitor polls apart)
                records.append(('refresh', (time.time() - began) * 1000, 200, ''))
        time.sleep(max(0.0, began + PERIOD_S - time.time()))
    return records


def _iso(epoch_ms: float) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


def client(args: Tuple[str, int, float, float]) -> List[Record]:
    """Run ``count`` operators as threads, spread over the refresh period."""
    url, count, start_at, until = args
    results: List[List[Record]] = [[] for _ in range(count)]
    threads = [threading.Thread(target=lambda i=i: results[i].extend(operator(
        url, start_at + PERIOD_S * random.random(), until))) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [record for part in results for record in part]


def counter(url: str, name: str) -> float:
    text = requests.get(f'{url}/metrics', timeout=30).text
    pattern = rf'^{name}{{[^}}]*}} ([0-9.e+]+)$'
    return sum(float(value) for value in re.findall(pattern, text, re.M))


def phase(db: str, storage: str, keys: List[Tuple[str, str]], args: argparse.Namespace,
          options: List[str]) -> Dict[str, Any]:
    """Run the operators and the fleet against a server started with ``options``."""
    import subprocess
    from cloud_helpers import CLOUD, free_port, wait_http

    port = free_port()
    process = subprocess.Popen([CLOUD, 'serve', '--db', db, '--storage', storage, '--port',
                                str(port), '--public-dashboard', '--workers',
                                str(args.workers), '--rate-limit', '0', *options])
    url = f'http://127.0.0.1:{port}'
    try:
        wait_http(f'{url}/api/v1/health', timeout=180, process=process)  # a loaded machine
        start_at = time.time() + 2.0
        until = start_at + args.seconds
        stop = threading.Event()
        fleet: List[int] = []
        feeder = threading.Thread(target=lambda: fleet.append(ingest(
            url, keys, time.monotonic() + 2.0 + args.seconds, stop)))
        feeder.start()
        shares = [args.operators // args.clients + (i < args.operators % args.clients)
                  for i in range(args.clients)]
        with Pool(args.clients) as pool:
            parts = pool.map(client, [(url, n, start_at, until) for n in shares if n])
        stop.set()
        feeder.join()
        hits = counter(url, 'vd_cache_hits_total')
        misses = counter(url, 'vd_cache_misses_total')
        alone = one_client(url)
    finally:
        process.send_signal(2)
        process.wait(timeout=60)
    records = [record for part in parts for record in part]
    failed = [(route, status) for route, _, status, _ in records if status not in (200, 304)]
    result: Dict[str, Any] = {'errors': len(failed) + fleet[0], 'failed': failed[:10],
                              'ingest_errors': fleet[0]}
    for route in ('devices', 'alerts', 'stats', 'counts', 'server', 'refresh'):
        times = [ms for name, ms, _, _ in records if name == route]
        result[route] = {'p50_ms': round(statistics.median(times), 1),
                         'p95_ms': round(percentile(times, 0.95), 1),
                         'mean_ms': round(statistics.fmean(times), 1), 'n': len(times)}
    cached = [ms for _, ms, _, cache in records if cache == 'hit']
    result['hit_rate'] = round(hits / (hits + misses), 3) if hits + misses else None
    result['cached_read'] = ({'p50_ms': round(statistics.median(cached), 1),
                              'p95_ms': round(percentile(cached, 0.95), 1), 'n': len(cached)}
                             if cached else None)
    result['answered_304'] = sum(status == 304 for _, _, status, _ in records)
    result['one_client'] = alone
    return result


def one_client(url: str, reads: int = 20) -> Dict[str, float]:
    """Return the median time of each dashboard read asked alone, one after the other."""
    session = requests.Session()
    end = math.ceil(time.time() / 900) * 900 * 1000
    paths = {'devices': '/api/v1/devices', 'alerts': '/api/v1/alerts?limit=60',
             'stats': '/api/v1/stats', 'counts': f'/api/v1/counts?from='
             f'{_iso(end - DAY_S * 1000)}&to={_iso(end)}&bucket=15min&by=direction'}
    medians = {}
    for route, path in paths.items():
        times = []
        for _ in range(reads):
            sent = time.perf_counter()
            session.get(url + path, timeout=60).raise_for_status()
            times.append((time.perf_counter() - sent) * 1000)
        medians[route] = round(statistics.median(times), 1)
    return medians


def main() -> None:
    """Run both phases and print the figures, then one JSON line."""
    parser = argparse.ArgumentParser(description='read cache under dashboard operators')
    parser.add_argument('--operators', type=int, default=50)
    parser.add_argument('--devices', type=int, default=50)
    parser.add_argument('--alerts', type=int, default=200, help='alerts a device in the fill')
    parser.add_argument('--seconds', type=float, default=30.0, help='each phase')
    parser.add_argument('--workers', type=int, default=3)
    parser.add_argument('--clients', type=int, default=2, help='client processes')
    args = parser.parse_args()
    sys.path.insert(0, str(TEST_HELPERS))  # the tests' server helpers, shared
    from cloud_helpers import add_device, cloud_cli

    with tempfile.TemporaryDirectory() as folder:
        db, storage = f'sqlite:///{folder}/cloud.db', f'{folder}/images'
        cloud_cli('migrate', db=db, storage=storage)
        keys = [(f'dev{i:03d}', add_device(f'dev{i:03d}', db, storage))
                for i in range(args.devices)]
        fill(db, args.devices, args.alerts)
        off = phase(db, storage, keys, args, ['--cache-ttl', '0'])
        on = phase(db, storage, keys, args, [])
    result = {'operators': args.operators, 'devices': args.devices, 'workers': args.workers,
              'seconds': args.seconds, 'cache_off': off, 'cache_on': on,
              'hit_rate': on['hit_rate'], 'cached_read_p95_ms': (on['cached_read'] or {}).get(
                  'p95_ms'),
              'refresh_mean_ratio_on_off': round(on['refresh']['mean_ms']
                                                 / off['refresh']['mean_ms'], 3)}
    result['meets_targets'] = bool(on['hit_rate'] and on['hit_rate'] >= 0.85 and
                                   result['cached_read_p95_ms'] is not None and
                                   result['cached_read_p95_ms'] < 100 and on['errors'] == 0)
    for name, figures in (('cache off', off), ('cache on', on)):
        routes = ', '.join(f'{route} p50 {figures[route]["p50_ms"]} / p95 '
                           f'{figures[route]["p95_ms"]} ms' for route in
                           ('devices', 'alerts', 'stats', 'counts', 'server'))
        print(f'{name}: refresh mean {figures["refresh"]["mean_ms"]} ms, p95 '
              f'{figures["refresh"]["p95_ms"]} ms; {routes}; errors {figures["errors"]}; '
              f'hit rate {figures["hit_rate"]}; cached read {figures["cached_read"]}; '
              f'304s {figures["answered_304"]}; one client alone (median ms) '
              f'{figures["one_client"]}; failed {figures["failed"]}, ingest errors '
              f'{figures["ingest_errors"]}')
    print(f'{args.operators} operators, {args.workers} workers: hit rate {on["hit_rate"]} '
          f'(target 0.85), cached read p95 {result["cached_read_p95_ms"]} ms (target 100), '
          f'mean refresh on/off {result["refresh_mean_ratio_on_off"]}')
    print(json.dumps(result))


if __name__ == '__main__':
    main()
