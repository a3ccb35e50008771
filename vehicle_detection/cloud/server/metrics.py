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
Prometheus metrics: requests and latencies per route, stored alerts and bytes.

With several workers the CLI sets ``PROMETHEUS_MULTIPROC_DIR`` before they
start (a folder of this server instance under the host's temporary folder,
see ``cli.new_metrics_folder``), and a scrape adds up every worker's
counters: each instance counts its own requests, whichever of its workers
answers, and never another instance's. Stored totals come from the database
at scrape time, so they are the same on every instance.
"""

from __future__ import annotations

import os
import time
from typing import Any, Iterator

from fastapi import Request, Response
from prometheus_client import (
    CollectorRegistry, CONTENT_TYPE_LATEST, Counter, generate_latest, Histogram)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from vehicle_detection.cloud.server.db import Alert

# A client may send any method token: others are labelled OTHER, so that made-up methods
# cannot add label sets (memory) without bound.
METHODS = frozenset(('GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'))
REQUESTS = Counter('vd_http_requests_total', 'HTTP requests answered',
                   ['method', 'route', 'status'], registry=None)
LATENCY = Histogram('vd_http_request_duration_seconds', 'Time to answer a request',
                    ['method', 'route'], registry=None,
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0))

# Logins: every password hash computed, and the logins refused before any hash (locked:
# the login lock; busy: no hash slot came free in time).
PASSWORD_HASHES = Counter('vd_password_hashes_total', 'Password hashes computed to check '
                          'a login', registry=None)
LOGIN_REFUSALS = Counter('vd_login_refusals_total', 'Logins refused before any password '
                         'hash', ['reason'], registry=None)
# The dashboard's reads answered from the shared read cache, and computed (read_cache.py).
CACHE_HITS = Counter('vd_cache_hits_total', 'Reads answered from the read cache (200 or 304)',
                     ['route'], registry=None)
CACHE_MISSES = Counter('vd_cache_misses_total', 'Cacheable reads computed by the route',
                       ['route'], registry=None)

# Retention (retention_schedule.py): what this instance's passes deleted and freed.
RETENTION_PASSES = Counter('vd_retention_passes_total', 'Retention passes run, by result',
                           ['result'], registry=None)
RETENTION_ROWS = Counter('vd_retention_rows_deleted_total', 'Rows deleted by retention',
                         ['table'], registry=None)
RETENTION_EXPIRED = Counter('vd_retention_pictures_expired_total', 'Alerts whose picture '
                            'retention took away (the alert stays)', registry=None)
RETENTION_OBJECTS = Counter('vd_retention_objects_deleted_total', 'Stored files or objects '
                            'deleted by retention', ['kind'], registry=None)
RETENTION_BYTES = Counter('vd_retention_bytes_freed_total', 'Bytes of storage freed by '
                          'retention', ['kind'], registry=None)
_OWN = (REQUESTS, LATENCY, PASSWORD_HASHES, LOGIN_REFUSALS, RETENTION_PASSES, RETENTION_ROWS,
        RETENTION_EXPIRED, RETENTION_OBJECTS, RETENTION_BYTES, CACHE_HITS, CACHE_MISSES)


def count_retention(freed: Any) -> None:
    """Add a retention pass's figures (a :class:`retention.Freed`) to the counters."""
    RETENTION_ROWS.labels('alerts').inc(freed.alerts)
    RETENTION_ROWS.labels('count_records').inc(freed.count_records)
    RETENTION_EXPIRED.inc(freed.pictures_expired)
    RETENTION_OBJECTS.labels('picture').inc(freed.pictures)
    RETENTION_OBJECTS.labels('thumbnail').inc(freed.thumbnails)
    RETENTION_BYTES.labels('picture').inc(freed.picture_bytes)
    RETENTION_BYTES.labels('thumbnail').inc(freed.thumbnail_bytes)


class StoredCollector:
    """Alerts and snapshot bytes stored, read from the database at scrape time."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """Yield the stored-alert and stored-byte gauges."""
        with self.engine.connect() as connection:
            alerts, images, size = connection.execute(select(
                func.count(), func.count(Alert.image_path),
                func.coalesce(func.sum(Alert.image_bytes), 0))).one()
        yield GaugeMetricFamily('vd_alerts_stored', 'Alerts in the database', value=alerts)
        yield GaugeMetricFamily('vd_snapshots_stored', 'Alerts with a snapshot', value=images)
        yield GaugeMetricFamily('vd_snapshot_bytes_stored', 'Bytes of stored snapshots',
                                value=size)


class RequestMetrics:
    """ASGI middleware: count and time each request, labelled by its route template."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Run the app, noting the status it answers with."""
        if scope['type'] != 'http':
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def noting_send(message: Any) -> None:
            nonlocal status
            if message['type'] == 'http.response.start':
                status = message['status']
            await send(message)

        try:
            await self.app(scope, receive, noting_send)
        finally:
            route = getattr(scope.get('route'), 'path', 'unmatched')
            method = scope['method'] if scope['method'] in METHODS else 'OTHER'
            REQUESTS.labels(method, route, str(status)).inc()
            LATENCY.labels(method, route).observe(time.perf_counter() - start)


def endpoint(request: Request) -> Response:
    """Serve the metrics in the Prometheus text format."""
    registry = CollectorRegistry()
    if os.environ.get('PROMETHEUS_MULTIPROC_DIR'):
        MultiProcessCollector(registry)
    else:
        for collector in _OWN:
            registry.register(collector)
    registry.register(StoredCollector(request.app.state.server.engine))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
