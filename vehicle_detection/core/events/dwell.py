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
Stopped vehicles: a vehicle staying in a zone longer than the zone's dwell limit.

A tracked vehicle is in a zone while its ground point (the bottom centre of
its box) lies inside the zone's polygon. Once it has stayed there longer
than the zone's ``dwell=`` limit it raises one ``stopped_vehicle`` event,
with the snapshot of that frame. A parked car re-found under a new track
(:mod:`reid`: hidden by passing lorries for longer than the tracker waits)
is that vehicle: it keeps the time it stopped, and raises no second event.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Dict, List, Optional, Sequence, Set

from vehicle_detection.core.events.event import FrameInfo, ImageSize, VehicleEvent
from vehicle_detection.core.events.geometry import Geometry, inside, Zone
from vehicle_detection.core.events.reid import Whereabouts
from vehicle_detection.core.events.vehicles import ground_point, Sighting

FORGET_TRACK_S = 10.0  # a track unseen this long is forgotten, unless parked (reid)


@dataclass(frozen=True)
class DwellSettings:
    """The zone dwell rule's slice of the bridge's settings (same names)."""

    geometry: Geometry  # the zones (their dwell limits), parsed from counting_zones
    track_cooldown: float  # seconds a parked vehicle's place is remembered


@dataclass
class _InZones:
    entered: Dict[str, float] = field(default_factory=dict)  # zone -> when it went in
    raised: Set[str] = field(default_factory=set)  # zones whose event was raised
    last_seen: float = 0.0


class ZoneDwellRule:
    """Raises one ``stopped_vehicle`` event per vehicle and zone past its dwell limit."""

    settings_type: ClassVar[type] = DwellSettings

    def __init__(self, settings: DwellSettings) -> None:
        self.settings = settings
        self._zones: Optional[List[Zone]] = None  # in pixels, once the image size is known
        self._size: Optional[ImageSize] = None
        self._tracks: Dict[int, _InZones] = {}
        self._parked = Whereabouts(settings.track_cooldown)  # of vehicles in a zone

    def configure(self, settings: DwellSettings) -> None:
        """Take new settings; new zones start afresh."""
        if settings.geometry.zones != self.settings.geometry.zones:
            self._zones, self._tracks = None, {}
        self.settings = settings
        self._parked.place_memory_s = settings.track_cooldown

    def update(self, sightings: Sequence[Sighting], frame: FrameInfo) -> List[VehicleEvent]:
        """Feed one frame's sightings; return the stopped vehicles past their limit now."""
        zones = self._zones_in_pixels(frame.size)
        if not zones:
            return []
        events = []
        for sighting in sightings:
            if sighting.track_id < 0:
                continue  # untracked boxes cannot stay anywhere
            state = self._track(sighting, frame.stamp)
            point = ground_point(sighting.bbox)
            for zone in zones:
                if self._stayed(zone, state, inside(zone.polygon, point), frame.stamp):
                    events.append(VehicleEvent('stopped_vehicle', sighting, frame.stamp,
                                               frame.key, {'zone': zone.name}, still=True))
            if state.entered:
                self._parked.see(sighting.track_id, sighting.bbox, frame.stamp)
        self._parked.prune(frame.stamp)
        self._tracks = {k: v for k, v in self._tracks.items()
                        if frame.stamp - v.last_seen <= FORGET_TRACK_S or k in self._parked}
        return events

    def flush(self) -> List[VehicleEvent]:
        """Return nothing: an event is raised at its frame, never held."""
        return []

    def _zones_in_pixels(self, size: Optional[ImageSize]) -> List[Zone]:
        geometry = self.settings.geometry
        if not geometry.zones or (size is None and geometry.needs_size):
            return []
        if self._zones is None or (size != self._size and geometry.needs_size):
            self._zones = geometry.in_pixels(*(size or (0, 0)))[1]
            self._size = size
        return self._zones

    def _track(self, sighting: Sighting, stamp: float) -> _InZones:
        state = self._tracks.get(sighting.track_id)
        if state is None:
            state = self._tracks[sighting.track_id] = _InZones()
            before = self._parked.find(sighting.bbox, stamp)
            if before is not None and before in self._tracks:  # a parked vehicle re-found
                other = self._tracks[before]
                state.entered = dict(other.entered)
                state.raised = set(other.raised)
        state.last_seen = stamp
        return state

    @staticmethod
    def _stayed(zone: Zone, state: _InZones, is_inside: bool, stamp: float) -> bool:
        """Tell whether the vehicle just passed the zone's dwell limit (once)."""
        if not is_inside:
            state.entered.pop(zone.name, None)
            return False
        since = state.entered.setdefault(zone.name, stamp)
        if zone.dwell_limit_s <= 0 or zone.name in state.raised \
                or stamp - since < zone.dwell_limit_s:
            return False
        state.raised.add(zone.name)
        return True
