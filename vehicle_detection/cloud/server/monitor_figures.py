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
The figures of the monitor panel that this server instance counts itself.

Requests, latencies, errors and cache hits are the Prometheus counters of
every worker of the instance (added up from the multiprocess files when
there are several, as ``/metrics`` does); CPU time and memory are those of
the instance's processes (its master and workers). These grow from zero at
the start; the panel's "last minute" is the difference between now and a
sample about a minute old, kept in the instance's local store.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
import json
import math
import os
import time
from typing import Dict, List, Optional, Sequence, Tuple

from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
import psutil

from vehicle_detection.cloud.server import metrics
from vehicle_detection.cloud.server.cache_store import CacheUnavailable, LocalStore

MASTER_PID_ENV = 'VD_CLOUD_MASTER_PID'  # set by serve: the process whose children are workers
WINDOW_S = 60.0
SAMPLE_EVERY_S = 5.0


@dataclass
class Sample:
    """Counters of the instance since its start, at one moment."""

    at: float
    requests: float = 0.0
    errors: float = 0.0  # answered 5xx
    buckets: List[Tuple[float, float]] = field(default_factory=list)  # (le, cumulative)
    hits: float = 0.0
    misses: float = 0.0
    cpu_s: float = 0.0

    def to_json(self) -> str:
        """Return the sample as JSON (+Inf as a string)."""
        data = asdict(self)
        data['buckets'] = [[str(le), count] for le, count in self.buckets]
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> 'Sample':
        """Read what :meth:`to_json` wrote."""
        data = json.loads(text)
        data['buckets'] = [(float(le), float(count)) for le, count in data['buckets']]
        return cls(**data)


@dataclass
class Window:
    """What happened between two samples."""

    seconds: float
    requests: float
    errors: float
    p95_s: Optional[float]
    hits: float
    misses: float
    cpu_percent: float


def server_processes() -> List[psutil.Process]:
    """Return the instance's processes: its master, then the master's descendants."""
    pid = int(os.environ.get(MASTER_PID_ENV) or os.getpid())
    try:
        master = psutil.Process(pid)
        return [master, *master.children(recursive=True)]
    except psutil.Error:
        return [psutil.Process()]


def count_workers(processes: Sequence[psutil.Process]) -> int:
    """Count the uvicorn worker processes (spawned by multiprocessing) among ``processes``."""
    workers = 0
    for process in processes[1:]:
        try:
            workers += any('spawn_main' in part for part in process.cmdline())
        except psutil.Error:
            continue
    return workers or 1  # one worker: the master serves itself


def take_sample(processes: Sequence[psutil.Process]) -> Sample:
    """Read the instance's counters and CPU time now."""
    registry = CollectorRegistry()
    if os.environ.get('PROMETHEUS_MULTIPROC_DIR'):
        MultiProcessCollector(registry)
    else:
        for collector in (metrics.REQUESTS, metrics.LATENCY, metrics.CACHE_HITS,
                          metrics.CACHE_MISSES):
            registry.register(collector)
    sample = Sample(at=time.time())
    buckets: Dict[float, float] = {}
    for family in registry.collect():
        for item in family.samples:
            if item.name == 'vd_http_requests_total':
                sample.requests += item.value
                sample.errors += item.value if item.labels.get('status', '').startswith('5') \
                    else 0.0
            elif item.name == 'vd_http_request_duration_seconds_bucket':
                le = float(item.labels['le'])
                buckets[le] = buckets.get(le, 0.0) + item.value
            elif item.name == 'vd_cache_hits_total':
                sample.hits += item.value
            elif item.name == 'vd_cache_misses_total':
                sample.misses += item.value
    sample.buckets = sorted(buckets.items())
    for process in processes:
        try:
            times = process.cpu_times()
            sample.cpu_s += times.user + times.system
        except psutil.Error:
            continue
    return sample


def p95(buckets: Sequence[Tuple[float, float]], before: Sequence[Tuple[float, float]]
        ) -> Optional[float]:
    """
    Estimate the 95th percentile from the growth of cumulative histogram buckets.

    Linear within the bucket it falls in, as Prometheus's
    ``histogram_quantile``; in the last (+Inf) bucket, the largest bound.
    """
    old = dict(before)
    grown = [(le, count - old.get(le, 0.0)) for le, count in buckets]
    if not grown or grown[-1][1] <= 0:
        return None
    rank = 0.95 * grown[-1][1]
    lower, below = 0.0, 0.0
    for le, count in grown:
        if count >= rank:
            if math.isinf(le):
                return lower
            return lower + (le - lower) * (rank - below) / max(count - below, 1e-9)
        lower, below = le, count
    return lower


def window(store: LocalStore, now: Sample, started_at: float) -> Window:
    """
    Return the last minute (or the time since the start, if shorter) ending at ``now``.

    Keeps ``now`` as a sample when the newest kept is older than
    :data:`SAMPLE_EVERY_S`: the panel of every operator feeds one series.
    """
    try:
        kept = [Sample.from_json(data) for _, data in store.samples()]
    except CacheUnavailable:
        kept = []
    if not kept or now.at - kept[-1].at >= SAMPLE_EVERY_S:
        try:
            store.add_sample(now.at, now.to_json())
        except CacheUnavailable:
            pass
    older = [sample for sample in kept if sample.at <= now.at - WINDOW_S]
    base = older[-1] if older else (kept[0] if kept and now.at - kept[0].at >= 1.0
                                    else Sample(at=started_at))
    seconds = max(now.at - base.at, 1e-3)
    cpu = max(now.cpu_s - base.cpu_s, 0.0) / seconds * 100  # of one core, as top shows it
    return Window(seconds=seconds, requests=max(now.requests - base.requests, 0.0),
                  errors=max(now.errors - base.errors, 0.0),
                  p95_s=p95(now.buckets, base.buckets),
                  hits=max(now.hits - base.hits, 0.0),
                  misses=max(now.misses - base.misses, 0.0), cpu_percent=cpu)
