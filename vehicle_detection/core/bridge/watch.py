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
What the bridge makes of each frame's tracked vehicles: events and traffic counts.

The event rules (:mod:`vehicle_detection.core.events.rules`) turn sightings
into events; the counting session sums line crossings into periods. Both
take their settings from :class:`BridgeSettings` (the rules by their
slices); lines and zones in fractions of the image wait for its size, and
:class:`CountingChecks` says why counting cannot work as configured.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Sequence, Tuple

from vehicle_detection.core.bridge.config import BridgeSettings
from vehicle_detection.core.counting.checks import CountingChecks
from vehicle_detection.core.counting.session import CountingSession, PeriodCounts
from vehicle_detection.core.events.event import FrameInfo, ImageSize, VehicleEvent
from vehicle_detection.core.events.geometry import Crossing
from vehicle_detection.core.events.rules import (
    build_rules, configure_rules, flush_rules, run_rules)
from vehicle_detection.core.events.vehicles import Sighting


@dataclass
class Watched:
    """What one frame brought: events to record, crossings, count periods closed."""

    events: List[VehicleEvent] = field(default_factory=list)
    crossings: List[Crossing] = field(default_factory=list)
    closed: List[PeriodCounts] = field(default_factory=list)

    @property
    def counted(self) -> bool:
        """Tell whether the counts changed (vehicles crossed a line, or a period closed)."""
        return bool(self.crossings or self.closed)


class TrafficWatch:
    """The event rules and the line counts of one camera."""

    def __init__(self, settings: BridgeSettings) -> None:
        self.rules = build_rules(settings)
        self.geometry = settings.geometry  # lines and zones
        self.counting = CountingSession(self.geometry, settings.count_period)
        self.checks = CountingChecks(settings.image_topic)  # image size, counting problems

    @property
    def problem(self) -> str:
        """Return why counting cannot work as configured ('' when it can)."""
        return self.checks.problem

    def configure(self, settings: BridgeSettings) -> List[PeriodCounts]:
        """Take new settings; new lines close the open period (returned) and count afresh."""
        configure_rules(self.rules, settings)
        self.geometry = settings.geometry
        if settings.geometry.lines == self.counting.geometry.lines:
            self.counting.geometry = settings.geometry  # new zones: its status shows them
            return []
        closed = self.counting.flush()
        self.counting = CountingSession(settings.geometry, self.counting.period_s)
        return closed

    def on_image(self, size: ImageSize) -> str:
        """Note an image's size (fractions need it); return a new warning to log once, or ''."""
        return self.checks.on_image(self.geometry, size)

    def recheck(self) -> str:
        """Check the lines and zones against the last image; return a new warning, or ''."""
        return self.checks.recheck(self.geometry)

    def update(self, sightings: Sequence[Sighting], stamp_ns: int) -> Watched:
        """Feed one frame: its sightings and stamp (ns, the frame's key)."""
        stamp, size = stamp_ns / 1e9, self.checks.size
        watched = Watched(run_rules(self.rules, sightings, FrameInfo(stamp, stamp_ns, size)))
        if self.geometry and self.checks.on_detections(
                self.geometry, [s.track_id for s in sightings]) and self.geometry.lines:
            counted = self.counting.update(sightings, stamp, size or (0, 0))  # pixels: no size
            watched.crossings, watched.closed = counted.crossings, counted.closed
        return watched

    def flush(self) -> Tuple[List[VehicleEvent], List[PeriodCounts]]:
        """Return the events still held and the period in progress (at a stop)."""
        return flush_rules(self.rules), self.counting.flush()

    def status(self) -> Dict[str, Any]:
        """Return the running counts and the geometry in pixels, as plain JSON data."""
        return self.counting.status()

    def direction_totals(self) -> Dict[Tuple[str, str], int]:
        """Return the vehicles counted since the start per (line, direction)."""
        return self.counting.direction_totals()
