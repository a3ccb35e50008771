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
Operators on the dashboard: a fleet's day over HTTP, then N operators refreshing every 5 s.

For each backend (SQLite with ``serve --workers 3``, and PostgreSQL started
here as the tests start it), registers ``--devices`` devices, sends each one's
day over HTTP from concurrent posters (1000 alerts and 1440 one-minute count
records of 4 rows per device, times ``--scale``), logs in, then for each
count of ``--operators`` runs that many operators for ``--seconds``. An
operator does what ``static/dashboard.js`` does every 5 s (``setInterval``:
a slow refresh does not delay the next): ``/devices``, then ``/alerts``
(``limit=60``, after the first page only those newer than the newest shown)
and ``/stats`` at once, then ``/counts`` in 15-minute buckets over the 24 h
to the end of the current bucket split by direction (``traffic.js``), each
with the ETag it holds (a 304 when unchanged); meanwhile alerts keep arriving
(``--ingest-rate`` a second) and each device posts a count record a minute.

Prints per level the refresh time (mean, p95), each route's p50/p95/p99,
errors, the cache hit rate (from ``vd_cache_*`` on ``/metrics``, else n/a)
and the ratio of the mean refresh to the single-operator one of the same
run; the last line is one JSON object. Targets (issue 28, 2 cores): with 50
operators a mean refresh under 500 ms, p95 under 1 s, no errors.

    python bench/operators.py [--devices 50] [--scale 1] [--operators 1,10,50]
        [--seconds 30] [--backends sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
from pathlib import Path
import re
import statistics
import sys
import tempfile
import threading
import time
from typing import Any, Dict, List, Optional, Tuple
import uuid

from bench_stats import percentile
from fleet_day import fill_part, ingest, iso
import requests

TEST_HELPERS = Path(__file__).resolve().parents[1] / 'test'
ROUTES = ('devices', 'alerts', 'stats', 'counts')
PASSWORD = 'operators-bench-password'
QUARTER_S = 900


class Operators:
    """``count`` dashboards refreshing every ``every`` s, recording what each read took."""

    def __init__(self, url: str, cookie: Dict[str, str], count: int, every: float) -> None:
        self.url, self.cookie, self.count, self.every = url, cookie, count, every
        self.times: Dict[str, List[float]] = {route: [] for route in ROUTES}
        self.refreshes: List[float] = []
        self.errors = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._running: List[threading.Thread] = []
        self._sessions = threading.local()

    def _get(self, route: str, path: str, seen: Dict[str, str]) -> Optional[dict]:
        """GET ``path`` as the browser does (If-None-Match: its ETag); its JSON on a 200."""
        session = getattr(self._sessions, 'session', None)
        if session is None:
            session = self._sessions.session = requests.Session()
            session.cookies.update(self.cookie)
        began = time.perf_counter()
        answer: Optional[dict] = None
        try:
            headers = {'If-None-Match': seen[path]} if path in seen else {}
            response = session.get(self.url + path, timeout=120, headers=headers)
            ok = response.status_code in (200, 304)
            if response.status_code == 200:
                if 'ETag' in response.headers:
                    seen[path] = response.headers['ETag']
                answer = response.json() if route == 'alerts' else None
        except requests.RequestException:
            ok = False
        with self._lock:
            self.times[route].append((time.perf_counter() - began) * 1e3)
            self.errors += not ok
        return answer

    def refresh(self, shown: Dict[str, Any]) -> None:
        """
        One refresh of dashboard.js, with what one operator's page holds in ``shown``.

        The devices, then the alerts newer than the newest shown and the stats
        at once, then the traffic panel's counts: 15-minute buckets over the 24 h
        to the end of the current bucket (every operator asks the same query).
        """
        began = time.perf_counter()
        seen = shown.setdefault('etags', {})
        self._get('devices', '/api/v1/devices', seen)
        after = f"&after_id={shown['newest']}" if 'newest' in shown else ''
        page: List[Optional[dict]] = []
        reads = [threading.Thread(target=lambda: page.append(self._get(
                     'alerts', f'/api/v1/alerts?replay=exclude&limit=60{after}', seen))),
                 threading.Thread(target=self._get, args=(
                     'stats', '/api/v1/stats?replay=exclude', seen))]
        for read in reads:
            read.start()
        for read in reads:
            read.join()
        if page and page[0] is not None:
            shown['newest'] = max([shown.get('newest', 0)] +
                                  [item['id'] for item in page[0]['items']])
        until = math.ceil(time.time() / QUARTER_S) * QUARTER_S
        self._get('counts', f'/api/v1/counts?since={iso(until - 86400)}&until={iso(until)}'
                            '&replay=exclude&bucket=15min&by=direction', seen)
        with self._lock:
            self.refreshes.append((time.perf_counter() - began) * 1e3)

    def _operator(self, offset: float) -> None:
        next_at = time.monotonic() + offset
        shown: Dict[str, Any] = {}  # this operator's page: the newest alert, the ETags
        while not self._stop.wait(max(0.0, next_at - time.monotonic())):
            thread = threading.Thread(target=self.refresh, args=(shown,))
            thread.start()
            with self._lock:
                self._running.append(thread)
            next_at += self.every

    def run(self, seconds: float) -> None:
        """Run the operators for ``seconds``, then wait for the refreshes under way."""
        spread = [threading.Thread(target=self._operator, args=(i * self.every / self.count,))
                  for i in range(self.count)]
        for thread in spread:
            thread.start()
        self._stop.wait(seconds)
        self._stop.set()
        for thread in spread + self._running:
            thread.join()


def cache_counts(url: str, cookie: Dict[str, str]) -> Tuple[float, float]:
    """
    Return (hits, misses) summed from ``vd_cache_*`` on /metrics.

    A counter shows only once a route used it: none yet (the first level, or
    a server without the cache) counts 0.
    """
    text = requests.get(url + '/metrics', cookies=cookie, timeout=60).text
    hits = misses = 0.0
    for name, value in re.findall(r'^(vd_cache_\w*)(?:\{[^}]*\})? ([0-9.e+]+)$', text, re.M):
        hits += float(value) if 'hit' in name and name.endswith('_total') else 0.0
        misses += float(value) if 'miss' in name and name.endswith('_total') else 0.0
    return hits, misses


def level(url: str, cookie: Dict[str, str], keys: List[Tuple[str, str]], count: int,
          args: argparse.Namespace) -> dict:
    """Run ``count`` operators with ingest going on; return the figures."""
    before = cache_counts(url, cookie)
    queue: 'multiprocessing.Queue[dict]' = multiprocessing.Queue()
    feeder = multiprocessing.Process(target=ingest, args=(url, keys, args.ingest_rate,
                                                          args.seconds, queue))
    feeder.start()
    operators = Operators(url, cookie, count, args.refresh)
    operators.run(args.seconds)
    ingested = queue.get(timeout=600)
    feeder.join()
    after = cache_counts(url, cookie)
    hits, misses = after[0] - before[0], after[1] - before[1]
    rate = f'{hits / (hits + misses):.3f}' if hits + misses else 'n/a'
    routes = {route: {f'p{q}': round(percentile(times, q / 100), 1) for q in (50, 95, 99)}
              for route, times in operators.times.items()}
    refreshes = operators.refreshes
    return {'operators': count, 'refreshes': len(refreshes),
            'refresh_mean_ms': round(statistics.fmean(refreshes), 1) if refreshes else 0.0,
            'refresh_p95_ms': round(percentile(refreshes, 0.95), 1), 'routes': routes,
            'errors': operators.errors, 'cache_hit_rate': rate, 'ingest': ingested}


def run_backend(backend: str, args: argparse.Namespace) -> dict:
    """Start a server on ``backend``, fill the fleet's day, run every level of operators."""
    from cloud_helpers import cloud_cli, CloudServer, PostgresServer
    from sqlalchemy import insert

    from vehicle_detection.cloud.server.access import hash_key
    from vehicle_detection.cloud.server.db import Device
    from vehicle_detection.cloud.server.engine import make_engine, utcnow
    from vehicle_detection.cloud.server.schema import upgrade

    postgres = PostgresServer() if backend == 'postgresql' else None
    with tempfile.TemporaryDirectory() as folder:
        db = postgres.new_database() if postgres else f'sqlite:///{folder}/cloud.db'
        storage = f'{folder}/images'
        server = None
        try:
            upgrade(db)
            keys = [(f'dev{i:03d}', uuid.uuid4().hex) for i in range(args.devices)]
            engine = make_engine(db)
            with engine.begin() as connection:  # as add-device does, 50 at once
                connection.execute(insert(Device), [
                    {'name': name, 'key_hash': hash_key(key), 'created_at': utcnow()}
                    for name, key in keys])
            engine.dispose()
            cloud_cli('add-user', 'bench', '--password-stdin', db=db, storage=storage,
                      stdin=PASSWORD + '\n')
            for attempt in range(3):  # 30 s each to start: a busy machine may need more
                try:
                    server = CloudServer(db, storage, ['--workers', str(args.workers),
                                                       '--rate-limit', '0'], public=False)
                    break
                except AssertionError:
                    if attempt == 2:
                        raise
            began = time.monotonic()
            with multiprocessing.Pool(args.fill_clients) as pool:
                done = pool.map(fill_part, [(server.url, keys[i::args.fill_clients], time.time(),
                                             args.scale, args.fill_threads)
                                            for i in range(args.fill_clients)])
            took = time.monotonic() - began
            posts, errors = sum(d[0] for d in done), sum(d[1] for d in done)
            fill = {'posts': posts, 'seconds': round(took, 1),
                    'posts_per_s': round(posts / took, 1), 'errors': errors}
            print(f'{backend}: filled {args.devices} devices x ({round(1000 * args.scale)} '
                  f'alerts + {round(1440 * args.scale)} count records) in {took:.0f} s '
                  f'({fill["posts_per_s"]} posts/s), {errors} errors', flush=True)
            login = requests.post(server.url + '/api/v1/session', timeout=60,
                                  json={'name': 'bench', 'password': PASSWORD})
            login.raise_for_status()
            cookie = dict(login.cookies)
            levels = []
            for count in args.operators:
                levels.append(level(server.url, cookie, keys, count, args))
                report(backend, levels)
        finally:
            if server is not None:
                server.stop()
            if postgres is not None:
                postgres.stop()
    last = levels[-1]
    return {'fill': fill, 'levels': levels,
            'meets_targets': last['operators'] >= 50 and last['refresh_mean_ms'] < 500
            and last['refresh_p95_ms'] < 1000 and all(x['errors'] == 0 for x in levels)}


def report(backend: str, levels: List[dict]) -> None:
    """Print the last level's line, with its ratio to the first (single-operator) level."""
    row, first = levels[-1], levels[0]
    row['mean_ratio'] = round(row['refresh_mean_ms'] / max(first['refresh_mean_ms'], 1e-9), 2)
    routes = '  '.join(f'{route} ' + '/'.join(f'{row["routes"][route][p]:.0f}'
                                              for p in ('p50', 'p95', 'p99'))
                       for route in ROUTES)
    print(f'{backend}: {row["operators"]:>3} operators: refresh mean '
          f'{row["refresh_mean_ms"]:.0f} ms, p95 {row["refresh_p95_ms"]:.0f} ms '
          f'(x{row["mean_ratio"]} of 1 operator; {row["refreshes"]} refreshes); p50/p95/p99 ms '
          f'{routes}; errors {row["errors"]}; cache hit rate {row["cache_hit_rate"]}; '
          f'ingest {row["ingest"]["posts_per_s"]}/s p99 {row["ingest"]["p99_ms"]} ms, '
          f'{row["ingest"]["errors"]} errors', flush=True)


def main() -> None:
    """Run the measurement on each backend and print the figures, then one JSON line."""
    parser = argparse.ArgumentParser(description='dashboard operators benchmark')
    parser.add_argument('--devices', type=int, default=50)
    parser.add_argument('--scale', type=float, default=1.0,
                        help="fraction of a device's day to fill (0.1 for a quick run)")
    parser.add_argument('--operators', default='1,10,50',
                        help='operator counts, one level each (the first is the baseline)')
    parser.add_argument('--seconds', type=float, default=30.0, help='length of each level')
    parser.add_argument('--refresh', type=float, default=5.0, help="the dashboard's period")
    parser.add_argument('--ingest-rate', type=float, default=5.0,
                        help='alerts a second arriving while the operators read')
    parser.add_argument('--backends', default='sqlite,postgresql')
    parser.add_argument('--workers', type=int, default=3)
    parser.add_argument('--fill-clients', type=int, default=2, help='poster processes')
    parser.add_argument('--fill-threads', type=int, default=12, help='threads per poster')
    args = parser.parse_args()
    args.operators = [int(n) for n in args.operators.split(',')]
    sys.path.insert(0, str(TEST_HELPERS))  # the tests' server and PostgreSQL helpers
    results = {backend: run_backend(backend, args) for backend in args.backends.split(',')}
    print(json.dumps({'devices': args.devices, 'scale': args.scale, 'seconds': args.seconds,
                      'workers': args.workers, 'ingest_rate': args.ingest_rate,
                      'backends': results,
                      'meets_targets': all(r['meets_targets'] for r in results.values())}))


if __name__ == '__main__':
    main()
