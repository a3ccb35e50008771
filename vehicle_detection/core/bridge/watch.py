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

from dataclasses import dataclass, field, replace
from typing import Any, Dict, FrozenSet, List, Optional, Sequence, Tuple

from vehicle_detection.core.bridge.config import BridgeSettings
from vehicle_detection.core.counting.checks import CountingChecks
from vehicle_detection.core.counting.quality import QualityLimits
from vehicle_detection.core.counting.session import CountingSession, PeriodCounts
from vehicle_detection.core.events.event import FrameInfo, ImageSize, VehicleEvent
from vehicle_detection.core.events.geometry import Crossing
from vehicle_detection.core.events.rules import (
    build_rules, configure_rules, flush_rules, held_frames, run_rules)
from vehicle_detection.core.events.vehicles import Sighting


@dataclass
class Watched:
    """What one frame brought: events to record, crossings, count periods closed."""

    events: List[VehicleEvent] = field(default_factory=list)
    crossings: List[Crossing] = field(default_factory=list)
    closed: List[PeriodCounts] = field(default_factory=list)
    #: frames of alerts still waiting for their snapshot window: keep them
    held: FrozenSet[int] = frozenset()

    @property
    def counted(self) -> bool:
        """Tell whether the counts changed (vehicles crossed a line, or a period closed)."""
        return bool(self.crossings or self.closed)


class TrafficWatch:
    """The event rules and the line counts of one camera."""

    def __init__(self, settings: BridgeSettings) -> None:
        self.rules = build_rules(settings)
        self.geometry = settings.geometry  # lines and zones
        self.counting = counting_session(settings)
        self.checks = CountingChecks(settings.image_topic)  # image size, counting problems

    @property
    def problem(self) -> str:
        """Return why counting cannot work as configured ('' when it can)."""
        return self.checks.problem

    def configure(self, settings: BridgeSettings) -> List[PeriodCounts]:
        """Take new settings; new lines close the open period (returned) and count afresh."""
        configure_rules(self.rules, settings)
        self.geometry = settings.geometry
        counting = self.counting
        if settings.geometry.lines == counting.geometry.lines and (
                settings.calibration, settings.count_vehicles, settings.class_scheme,
                settings.stall_seconds) == (
                counting.calibration, counting.per_vehicle, counting.scheme.name,
                counting.quality.limits.stall_s):
            self.counting.geometry = settings.geometry  # new zones: its status shows them
            return []
        closed = self.counting.flush()
        self.counting = counting_session(settings, self.counting.period_s)
        return closed

    def on_image(self, size: ImageSize, stamp_ns: Optional[int] = None,
                 light: Optional[Tuple[float, float]] = None) -> str:
        """
        Note an image's size (fractions need it); return a new warning to log once, or ''.

        ``light``: its dark and bloom shares (:func:`frame_light`), for the
        period's quality flags, with its stamp (ns).
        """
        if light is not None and stamp_ns is not None:
            self.counting.quality.light(stamp_ns / 1e9, *light)
        return self.checks.on_image(self.geometry, size)

    def recheck(self) -> str:
        """Check the lines and zones against the last image; return a new warning, or ''."""
        return self.checks.recheck(self.geometry)

    def update(self, sightings: Sequence[Sighting], stamp_ns: int) -> Watched:
        """Feed one frame: its sightings and stamp (ns, the frame's key)."""
        stamp, size = stamp_ns / 1e9, self.checks.size
        watched = Watched(run_rules(self.rules, sightings, FrameInfo(stamp, stamp_ns, size)),
                          held=held_frames(self.rules))
        if self.geometry and self.checks.on_detections(
                self.geometry, [s.track_id for s in sightings]) and self.geometry.lines:
            counted = self.counting.update(sightings, stamp, size or (0, 0))  # pixels: no size
            watched.crossings, watched.closed = counted.crossings, counted.closed
        meter = self.counting.meter
        if meter is not None:  # the speed of each alerted vehicle, where it can be measured
            watched.events = [replace(event, speed_kmh=meter.current_speed(
                event.sighting.track_id, stamp)) for event in watched.events]
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


def counting_session(settings: BridgeSettings, period_s: Optional[int] = None
                     ) -> CountingSession:
    """Return a counting session of the settings' lines, calibration, scheme, stall limit."""
    return CountingSession(settings.geometry, period_s or settings.count_period,
                           settings.calibration, settings.count_vehicles, settings.class_scheme,
                           QualityLimits(stall_s=settings.stall_seconds))
