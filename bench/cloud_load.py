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
Cloud server load: one instance, then two behind HAProxy, then two with one killed mid-run.

Starts PostgreSQL (as the tests' PostgresServer does: a throw-away cluster on
127.0.0.1, fsync off), then for each setup a fresh database and snapshot
store, ``vehicle-detection-cloud serve`` instances in production mode (the
default rate limit, now in the database) and, for two instances, Debian's
HAProxy with a generated configuration (health checks on /api/v1/health,
retries and redispatch). ``--devices`` simulated devices (bench/load_devices.py)
post ``--rate`` alerts a second each and a different 60 KB snapshot with
every ``--image-every``-th alert, for ``--seconds``:

* ``one``: one instance (``--workers``), the devices talk to it directly;
* ``two``: two instances (``--workers-each``) behind HAProxy;
* ``failover``: the same, and one instance is killed (SIGKILL) mid-run; the
  devices retry through the balancer like the edge (same event id), and
  the alert rows and stored pictures are counted against what was confirmed:
  none may be lost, none doubled.

Prints alerts/s, images/s, p50/p99 latency (from the first try to the
answer), errors (requests never confirmed) and the ratio two/one measured in
this run, the cost of one shared rate-limit acquisition on PostgreSQL, and
the machine's load average before each setup (the 2 cores are shared with
the load generator, PostgreSQL and HAProxy). The last line is one JSON
object.

    python bench/cloud_load.py [--devices 150] [--rate 6.67] [--seconds 20]
"""

from __future__ import annotations

import argparse
import json
from multiprocessing import Pool
import os
from pathlib import Path
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
from typing import Any, Dict, List, Optional

from bench_stats import percentile
from load_devices import client_process, Outcome
from process_cpu import cpu_of, cpu_since, database_backends, postmaster_pid, tree_cpu
import requests
from sqlalchemy import select, text

from vehicle_detection.cloud.server.access import hash_key, new_key
from vehicle_detection.cloud.server.db import Alert, Device
from vehicle_detection.cloud.server.engine import make_engine, utcnow
from vehicle_detection.cloud.server.rate_limits import buckets_for, SharedRateLimiter

TEST_HELPERS = Path(__file__).resolve().parents[1] / 'test'
sys.path.insert(0, str(TEST_HELPERS))  # the tests' server, PostgreSQL and HAProxy helpers

PG_OPTIONS = '-c max_connections=400'  # 2 instances x workers x a pool of 30


def register(db: str, count: int) -> List[tuple]:
    """Add ``count`` devices as ``add-device`` does (one transaction); return (name, key)."""
    keys = [(f'dev{i:03d}', new_key()) for i in range(count)]
    engine = make_engine(db)
    try:
        with engine.begin() as connection:
            connection.execute(Device.__table__.insert(), [
                {'name': name, 'key_hash': hash_key(key), 'created_at': utcnow()}
                for name, key in keys])
    finally:
        engine.dispose()
    return keys


def limiter_cost(db: str, calls: int = 2000) -> Dict[str, float]:
    """
    Time one shared rate-limit acquisition against one ``SELECT 1``, in microseconds.

    Wall time (what a request waits), CPU time of this process (what a worker
    spends) and, on PostgreSQL, CPU time of the database's backends.
    """
    engine = make_engine(db)
    figures: Dict[str, float] = {}
    try:
        limiter = SharedRateLimiter(buckets_for(engine), 'bench:', rate=1e6, burst=1e6)
        for index in range(100):  # connect, prepare
            limiter.acquire(f'd{index % 150}')
        with engine.connect() as connection:
            for label, once in (('acquire', lambda index: limiter.acquire(f'd{index % 150}')),
                                ('select_1', lambda _: connection.execute(text('SELECT 1')))):
                backends = database_backends(engine)
                database_cpu = cpu_of(backends)
                wall, cpu = time.perf_counter(), time.process_time()
                for index in range(calls):
                    once(index)
                figures[f'{label}_us'] = round((time.perf_counter() - wall) / calls * 1e6, 1)
                figures[f'{label}_cpu_us'] = round((time.process_time() - cpu) / calls * 1e6, 1)
                if backends:
                    figures[f'{label}_database_cpu_us'] = round(
                        (cpu_of(backends) - database_cpu) / calls * 1e6, 1)
    finally:
        engine.dispose()
    return figures


def served_by(url: str, token: str) -> int:
    """Return the ingest requests an instance counted on its own /metrics."""
    body = requests.get(url + '/metrics', timeout=10,
                        headers={'Authorization': f'Bearer {token}'}).text
    return int(sum(float(value) for value in re.findall(
        r'^vd_http_requests_total{method="(?:POST|PUT)",route="/api/v1/alerts[^"]*",'
        r'status="20[01]"} ([0-9.e+]+)$', body, re.MULTILINE)))


def check_stored(db: str, storage: str, sent: Outcome) -> Dict[str, int]:
    """Count alert rows and stored pictures against what the devices had confirmed."""
    engine = make_engine(db)
    try:
        with engine.connect() as connection:
            rows = connection.execute(select(Alert.event_id, Alert.image_path)).all()
    finally:
        engine.dispose()
    stored = {row.event_id for row in rows}
    with_picture = {row.event_id for row in rows if row.image_path}
    paths = {row.image_path for row in rows if row.image_path}
    root = Path(storage)
    files = {str(p.relative_to(root)) for p in root.rglob('*')
             if p.is_file() and not p.name.startswith('.')}
    temporaries = list(root.rglob('.upload-*'))
    return {'alert_rows': len(rows), 'alerts_confirmed': len(sent.alerts_confirmed),
            'alerts_lost': len(set(sent.alerts_confirmed) - stored),
            'alerts_doubled': len(rows) - len(stored),
            'pictures_stored': len(files), 'pictures_confirmed': len(sent.images_confirmed),
            'pictures_lost': len(set(sent.images_confirmed) - with_picture),
            'picture_files_without_row': len(files - paths),
            'picture_rows_without_file': len(paths - files),
            'temporaries_left': len(temporaries)}


def run_setup(label: str, pg: Any, args: argparse.Namespace, folder: str,
              instances: int, workers: int, kill_at: Optional[float] = None) -> dict:
    """Run the load against one setup; return its figures."""
    from cloud_helpers import cloud_cli, CloudServer
    from load_balancer import HAProxy

    load_before = os.getloadavg()[0]
    db = pg.new_database()
    storage = args.storage or f'{folder}/{label}/images'
    cloud_cli('migrate', db=db, storage=storage)
    keys = register(db, args.devices)
    servers: List[Any] = []
    balancer = None
    try:
        for _ in range(instances):
            servers.append(CloudServer(db, storage, ['--workers', str(workers)], public=False,
                                       start_timeout=120))  # a busy shared machine
        if instances > 1:
            balancer = HAProxy([f'127.0.0.1:{server.port}' for server in servers])
        url = balancer.url if balancer else servers[0].url
        groups = {'servers': [server.process.pid for server in servers],
                  'postgresql': [postmaster_pid(pg)],
                  'haproxy': [balancer.process.pid] if balancer else []}
        cpu_before = {pid: tree_cpu(pid) for pids in groups.values() for pid in pids}
        shares = [keys[i::args.clients] for i in range(args.clients)]
        start_at = time.time() + 1.0
        with Pool(args.clients) as pool:
            waiting = pool.map_async(client_process, [
                (url, share, args.image_every, args.rate, start_at, args.seconds)
                for share in shares if share])
            if kill_at is not None:
                threading.Event().wait(max(0.0, start_at + kill_at - time.time()))
                servers[0].process.kill()  # its workers die with it
                servers[0].process.wait()
            parts = waiting.get()
        cpu_used = {group: cpu_since(pids, cpu_before) for group, pids in groups.items()}
        per_instance = [served_by(server.url, server.token) for server in servers
                        if server.process.poll() is None]
    finally:
        if balancer is not None:
            balancer.stop()
        for server in servers:
            server.stop()
            # A killed instance leaves its metrics folder to the next start on this host.
            for folder in Path(tempfile.gettempdir()).glob(
                    f'vd-cloud-metrics-{server.process.pid}-*'):
                shutil.rmtree(folder, ignore_errors=True)
    sent = Outcome()
    for part in parts:
        sent.add(part)
    elapsed = sent.finished - sent.started  # from the first device's start to the last answer
    latencies = [ms for _, ms, _, _ in sent.requests]
    result = {
        'instances': instances, 'workers_each': workers, 'seconds': round(elapsed, 1),
        'load_average_before': round(load_before, 2),
        'alerts_per_s': round(len(sent.alerts_confirmed) / elapsed, 1),
        'images_per_s': round(len(sent.images_confirmed) / elapsed, 1),
        'p50_ms': round(statistics.median(latencies), 1) if latencies else 0.0,
        'p99_ms': round(percentile(latencies, 0.99), 1),
        'errors': sum(status not in (200, 201) for _, _, status, _ in sent.requests),
        'retried': sum(tries > 1 for _, _, _, tries in sent.requests),
        'retry_causes': {str(status): count for status, count in sent.retry_causes.items()},
        'requests': len(sent.requests), 'served_per_instance': per_instance}
    # CPU per request of each part: what the load costs whatever else runs on the machine.
    cpu_used['clients'] = sent.cpu_s
    result['cpu_ms_per_request'] = {group: round(seconds / len(sent.requests) * 1e3, 3)
                                    for group, seconds in cpu_used.items()}
    result['cores_for_offered_load'] = round(
        sum(cpu_used.values()) / len(sent.requests) * args.devices * args.rate
        * (1 + 1 / args.image_every), 2)
    result.update(check_stored(db, storage, sent))
    print(f'{label}: {instances} instance(s) x {workers} workers'
          f'{" behind HAProxy" if balancer else ""}, load average before '
          f'{result["load_average_before"]}: {result["alerts_per_s"]} alerts/s, '
          f'{result["images_per_s"]} images/s, p50 {result["p50_ms"]} ms, p99 '
          f'{result["p99_ms"]} ms, {result["errors"]} errors, {result["retried"]} retried '
          f'(tries again after status: {result["retry_causes"]}); '
          f'lost {result["alerts_lost"]} alerts / {result["pictures_lost"]} pictures, '
          f'doubled {result["alerts_doubled"]}, per instance {per_instance}; CPU ms a request '
          f'{result["cpu_ms_per_request"]}: the offered load needs '
          f'{result["cores_for_offered_load"]} cores', flush=True)
    return result


def main() -> None:
    """Run the three setups and print the figures, then one JSON line."""
    parser = argparse.ArgumentParser(description='cloud server load benchmark')
    parser.add_argument('--devices', type=int, default=150)
    parser.add_argument('--rate', type=float, default=6.67,
                        help='alerts a second per device (150 x 6.67 = 1000/s offered)')
    parser.add_argument('--image-every', type=int, default=3,
                        help='upload a snapshot with every n-th alert (333/s offered)')
    parser.add_argument('--seconds', type=float, default=20.0, help='load per setup')
    parser.add_argument('--workers', type=int, default=(os.cpu_count() or 2) + 1,
                        help='workers of the single instance (cores + 1)')
    parser.add_argument('--workers-each', type=int, default=2,
                        help='workers of each of the two instances')
    parser.add_argument('--clients', type=int, default=2, help='load generator processes')
    parser.add_argument('--failover-seconds', type=float, default=12.0)
    parser.add_argument('--storage', default='',
                        help='snapshot store shared by the instances (default: a new '
                             'folder per setup)')
    parser.add_argument('--only', choices=['one', 'two', 'failover'], action='append',
                        help='run only these setups (repeatable; default: all three)')
    args = parser.parse_args()
    setups = args.only or ['one', 'two', 'failover']
    results: Dict[str, dict] = {}
    from cloud_helpers import PostgresServer
    pg = PostgresServer(PG_OPTIONS)
    try:
        with tempfile.TemporaryDirectory(prefix='vd-cloud-load-') as folder:
            cost = {'postgresql': limiter_cost(_migrated(pg.new_database(), folder)),
                    'sqlite': limiter_cost(_migrated(f'sqlite:///{folder}/limits.db', folder))}
            for backend, figures in cost.items():
                print(f'shared rate limit on {backend}, one acquisition against one SELECT 1 '
                      f'through SQLAlchemy: {figures["acquire_us"]} / {figures["select_1_us"]} '
                      f'us wall, {figures["acquire_cpu_us"]} / {figures["select_1_cpu_us"]} us '
                      f'CPU here' + (f', {figures["acquire_database_cpu_us"]} / '
                                     f'{figures["select_1_database_cpu_us"]} us CPU in the '
                                     f'database' if 'acquire_database_cpu_us' in figures
                                     else ''), flush=True)
            if 'one' in setups:
                results['one'] = run_setup('one', pg, args, folder, 1, args.workers)
            if 'two' in setups:
                results['two'] = run_setup('two', pg, args, folder, 2, args.workers_each)
            if 'failover' in setups:
                saved, args.seconds = args.seconds, args.failover_seconds
                results['failover'] = run_setup('failover', pg, args, folder, 2,
                                                args.workers_each,
                                                kill_at=args.failover_seconds * 0.4)
                args.seconds = saved
    finally:
        pg.stop()
    summary: dict = {'devices': args.devices, 'offered_alerts_per_s':
                     round(args.devices * args.rate, 1), 'rate_limit': cost, **results}
    if 'one' in results and 'two' in results:
        one, two = results['one'], results['two']
        summary['two_over_one'] = {
            key: round(two[key] / one[key], 3) if one[key] else None
            for key in ('alerts_per_s', 'images_per_s', 'p50_ms', 'p99_ms')}
        print(f'two / one: alerts/s x{summary["two_over_one"]["alerts_per_s"]}, p99 '
              f'x{summary["two_over_one"]["p99_ms"]}')
    if 'two' in results:
        two = results['two']
        # Rates are per wall second from the start to the last answer (the devices'
        # spread start and the last round trip take a few percent of 20 s).
        summary['meets_targets'] = (two['alerts_per_s'] >= 0.97 * 1000
                                    and two['images_per_s'] >= 0.97 * 330
                                    and two['p99_ms'] <= 200 and two['errors'] == 0)
    if 'failover' in results:
        after = results['failover']
        summary['failover_intact'] = (after['errors'] == 0 and not after['alerts_lost']
                                      and not after['pictures_lost']
                                      and not after['alerts_doubled']
                                      and not after['picture_files_without_row']
                                      and not after['picture_rows_without_file'])
    print(json.dumps(summary))


def _migrated(db: str, folder: str) -> str:
    """Migrate ``db``; return it."""
    from cloud_helpers import cloud_cli

    cloud_cli('migrate', db=db, storage=f'{folder}/limiter')
    return db


if __name__ == '__main__':
    main()
