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
slices); lines and zones in fractions of the image wait for its size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

from vehicle_detection.core.bridge.config import BridgeSettings
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
        self.counting = CountingSession(settings.geometry, settings.count_period)
        self.problem = ''  # why the last frame could not be counted ('' when it could)

    def configure(self, settings: BridgeSettings) -> List[PeriodCounts]:
        """Take new settings; new lines close the open period (returned) and count afresh."""
        configure_rules(self.rules, settings)
        if settings.geometry.lines == self.counting.geometry.lines:
            return []
        closed = self.counting.flush()
        self.counting = CountingSession(settings.geometry, self.counting.period_s)
        return closed

    def update(self, sightings: Sequence[Sighting], stamp_ns: int,
               size: Optional[ImageSize], image_topic: str = 'the image topic') -> Watched:
        """Feed one frame: its sightings, stamp (ns, the frame's key) and image size."""
        stamp = stamp_ns / 1e9
        watched = Watched(run_rules(self.rules, sightings, FrameInfo(stamp, stamp_ns, size)))
        geometry = self.counting.geometry
        if not geometry.lines:
            return watched
        self.problem = self._why_not_counting(sightings, size, image_topic)
        if not (geometry.needs_size and size is None):
            counted = self.counting.update(sightings, stamp, size or (0, 0))
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

    def _why_not_counting(self, sightings: Sequence[Sighting], size: Optional[ImageSize],
                          image_topic: str) -> str:
        if self.counting.geometry.needs_size and size is None:
            return (f'counting waits for an image on {image_topic}: lines in fractions of '
                    'the image need its size')
        if sightings and all(s.track_id < 0 for s in sightings):
            return 'counting needs track ids: set tracking on the detector node'
        return ''
