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
The 4G data budget: bytes per calendar month, projection, and what to send.

Counts both directions of every request with an estimate of what the
protocols add (TCP/IP, TLS, HTTP headers), persists the count in the outbox
database (so a restart does not forget the month), projects the month's total
from the rate so far, and turns the projection into a snapshot plan: full
size while the projection fits, then smaller images (resolution first, then
quality), and no images at all once the month's budget is spent.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import datetime, timezone
import time
from typing import Callable, Optional, Protocol

# Per request and its response: TCP/IP headers of ~6 packets, TLS records, the
# HTTP headers we do not see as bytes (server headers, status line).
PROTOCOL_OVERHEAD_BYTES = 900
SHRINK_FROM = 0.8  # start shrinking snapshots when the projection reaches 80 % of budget
MIN_SCALE, MIN_QUALITY = 0.5, 40


class Counters(Protocol):
    """Where the counts persist (the outbox implements it)."""

    def meta(self, key: str) -> int:
        """Return a counter."""

    def add_meta(self, key: str, amount: int) -> int:
        """Add to a counter."""


@dataclass(frozen=True)
class SnapshotPlan:
    """How to encode the next snapshot (or not to send one)."""

    send_images: bool
    scale: float  # of the configured maximum width
    quality: int


@dataclass(frozen=True)
class BudgetFigures:
    """Used, projected and budget bytes of the current month."""

    used: int
    projected: int
    budget: int


class DataBudget:
    """Bytes on the wire per calendar month (UTC) against ``monthly_budget_bytes``."""

    def __init__(self, counters: Counters, monthly_budget_bytes: int,
                 clock: Optional[Callable[[], float]] = None) -> None:
        self.counters = counters
        self.budget = monthly_budget_bytes
        self._clock = clock or time.time

    def _month(self, now: float) -> str:
        return datetime.fromtimestamp(now, timezone.utc).strftime('bytes:%Y-%m')

    def record(self, sent: int, received: int) -> None:
        """Count one request/response exchange (payload sizes; overhead is added)."""
        self.counters.add_meta(self._month(self._clock()),
                               sent + received + PROTOCOL_OVERHEAD_BYTES)

    def figures(self) -> BudgetFigures:
        """Return used, projected (at the current rate) and budget bytes."""
        now = self._clock()
        used = self.counters.meta(self._month(now))
        moment = datetime.fromtimestamp(now, timezone.utc)
        days = calendar.monthrange(moment.year, moment.month)[1]
        start = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        elapsed = max(now - start.timestamp(), 86400.0)  # one day at least: no wild guesses
        return BudgetFigures(used, int(used * days * 86400 / elapsed), self.budget)

    def images_allowed(self) -> bool:
        """Tell whether snapshots may still be sent this month."""
        return self.budget <= 0 or self.figures().used < self.budget

    def plan(self, quality: int) -> SnapshotPlan:
        """Return how to encode snapshots now, starting from ``quality``."""
        if self.budget <= 0:
            return SnapshotPlan(True, 1.0, quality)
        figures = self.figures()  # one outbox read for both decisions
        if figures.used >= self.budget:
            return SnapshotPlan(False, MIN_SCALE, MIN_QUALITY)
        pressure = (figures.projected / self.budget - SHRINK_FROM) / (1.0 - SHRINK_FROM)
        pressure = min(1.0, max(0.0, pressure))
        # The first half of the pressure costs resolution, the second half quality.
        scale = 1.0 - (1.0 - MIN_SCALE) * min(1.0, 2 * pressure)
        lower = min(quality, MIN_QUALITY)
        reduced = quality - (quality - lower) * max(0.0, 2 * pressure - 1)
        return SnapshotPlan(True, scale, round(reduced))
