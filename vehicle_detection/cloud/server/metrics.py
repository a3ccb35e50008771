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
start, and a scrape adds up every worker's counters. Stored totals come from
the database at scrape time, so they are right whichever worker answers.
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
        registry.register(REQUESTS)
        registry.register(LATENCY)
    registry.register(StoredCollector(request.app.state.server.engine))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
