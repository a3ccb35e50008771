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
What the rules hand on: one event type, and the interface every event rule implements.

An event is one alert to send: its kind (one of ``wire.ALERT_KINDS``), the
vehicle's sighting in the frame chosen for its snapshot (the class it was
voted), that frame's key, and where it happened (the zone, the line and
the direction its kind names). A rule is fed every frame's sightings and
returns the events due; the bridge loops over its rules and records every
event the same way, whatever its kind.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Dict, List, Optional, Protocol, Sequence, Tuple

from vehicle_detection.core.events.vehicles import Sighting
from vehicle_detection.wire import alert_kind_problem

FrameKey = int  # the caller's key of a frame: its stamp in nanoseconds, or its index
ImageSize = Tuple[int, int]  # width, height


@dataclass(frozen=True)
class FrameInfo:
    """One frame as the rules see it: when it was taken, its key and its image size."""

    stamp: float  # seconds
    key: FrameKey
    size: Optional[ImageSize] = None  # None until an image was seen


@dataclass(frozen=True)
class VehicleEvent:
    """One event to report: a vehicle, with the frame its snapshot comes from."""

    kind: str  # one of wire.ALERT_KINDS
    sighting: Sighting  # the box and score of that frame, with the voted class
    stamp: float  # seconds: when that frame was taken
    frame: FrameKey
    places: Dict[str, str] = field(default_factory=dict)  # e.g. zone, or line and direction
    still: bool = False  # the vehicle stands: a frame near ``stamp`` shows it as well

    def __post_init__(self) -> None:
        """Refuse a kind the wire does not know, or places its kind does not name."""
        problem = alert_kind_problem(self.kind, self.places)
        if problem:
            raise ValueError(problem)


class Rule(Protocol):
    """Turns tracked vehicles into events; configured with its slice of the settings."""

    settings_type: ClassVar[type]  # its typed slice of the node's settings

    def configure(self, settings: Any) -> None:
        """Take new settings (an instance of ``settings_type``) between frames."""

    def update(self, sightings: Sequence[Sighting], frame: FrameInfo) -> List[VehicleEvent]:
        """Feed one frame's sightings; return the events due now."""

    def flush(self) -> List[VehicleEvent]:
        """Return the events still pending, at the end of a run."""
