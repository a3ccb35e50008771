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
When a tracked vehicle becomes an alert: once per vehicle, with a good snapshot.

A track is *confirmed* once it has been seen ``min_track_hits`` times with a
score of at least ``min_alert_score``: a box that never looked like a
vehicle for that long (a shadow, a sign seen for a frame or two) never
alerts. The alert then waits ``snapshot_window`` seconds and goes out with
the track's best view in that time (largest box times score: the frame
where the vehicle is nearest and clearest), with the class its views voted
for, each view weighing as much as it is good (a lorry whose cab was
tracked before its whole box is a lorry; a truck scored "bus" while far
away stays a truck).

A new track that is a vehicle alerted before (:mod:`reid`: lost a moment
ago where it appears, or standing where that one stood within
``track_cooldown`` seconds, e.g. a parked car hidden by a passing lorry) is
that vehicle and stays silent. Moving vehicles that merely pass the same
place (followers in a lane) are new and alert.

``class_cooldown`` (0: off) allows at most one alert per class in that
time; an alert held back by it goes out when the cool-down ends.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import ClassVar, Dict, List, Optional, Sequence, Tuple

from vehicle_detection.core.events.event import FrameInfo, FrameKey, VehicleEvent
from vehicle_detection.core.events.reid import (
    motion, standing_still, STILL_WINDOW_S, Whereabouts)
from vehicle_detection.core.events.vehicles import Box, Sighting, view_quality

FORGET_TRACK_S = 30.0  # a track unseen this long is forgotten


@dataclass(frozen=True)
class PolicySettings:
    """The alert policy's slice of the bridge's settings (same names)."""

    min_track_hits: int
    min_alert_score: float
    snapshot_window: float  # seconds
    track_cooldown: float  # seconds a standing vehicle's place is remembered
    class_cooldown: float  # seconds between two alerts of one class; 0: none


@dataclass
class _Track:
    """What the policy remembers of one track."""

    first: Tuple[float, Box]  # when and where it was first seen
    last_seen: float
    strong_hits: int = 0
    votes: Dict[str, float] = field(default_factory=dict)
    path: List[Tuple[float, Box]] = field(default_factory=list)  # the last STILL_WINDOW_S
    confirmed_at: Optional[float] = None
    best: Optional[Tuple[float, Sighting, float, FrameKey]] = None  # quality, sighting, when
    done: bool = False  # alerted, or silenced as a vehicle alerted before

    def observe(self, sighting: Sighting, frame: FrameInfo, settings: PolicySettings) -> None:
        now = frame.stamp
        self.last_seen = now
        quality = view_quality(sighting)
        self.votes[sighting.class_name] = self.votes.get(sighting.class_name, 0.0) + quality
        self.path.append((now, sighting.bbox))
        self.path = [(t, box) for t, box in self.path if now - t <= STILL_WINDOW_S]
        if sighting.confidence >= settings.min_alert_score:
            self.strong_hits += 1
        if self.confirmed_at is not None and not self.done \
                and now - self.confirmed_at <= settings.snapshot_window \
                and (self.best is None or quality > self.best[0]):
            self.best = (quality, sighting, now, frame.key)

    def standing_still(self) -> bool:
        return standing_still(box for _, box in self.path)

    def event(self) -> VehicleEvent:
        assert self.best is not None
        _, sighting, seen_at, frame = self.best
        voted = max(self.votes.items(), key=lambda item: item[1])[0]
        return VehicleEvent('vehicle', replace(sighting, class_name=voted), seen_at, frame)


class AlertPolicy:
    """Decide which tracked vehicles become alerts, and with which view."""

    settings_type: ClassVar[type] = PolicySettings

    def __init__(self, settings: PolicySettings) -> None:
        self.settings = settings
        self._tracks: Dict[int, _Track] = {}
        self._alerted = Whereabouts(settings.track_cooldown)  # of tracks alerted or silenced
        self._class_last: Dict[str, float] = {}
        self._untracked = 0  # keys of untracked sightings' places (negative)

    def configure(self, settings: PolicySettings) -> None:
        """Take new settings; tracks and remembered places are kept."""
        self.settings = settings
        self._alerted.place_memory_s = settings.track_cooldown

    def update(self, sightings: Sequence[Sighting], frame: FrameInfo) -> List[VehicleEvent]:
        """Feed one frame's sightings; return the alerts due now."""
        now = frame.stamp
        alerts = []
        for sighting in sightings:
            if sighting.track_id < 0:  # no tracker: each sighting stands alone
                alerts.extend(self._untracked_alert(sighting, frame))
                continue
            track = self._tracks.setdefault(
                sighting.track_id, _Track((now, sighting.bbox), now))
            track.observe(sighting, frame, self.settings)
            if track.done:
                self._alerted.see(sighting.track_id, sighting.bbox, now)
            elif track.confirmed_at is None \
                    and track.strong_hits >= self.settings.min_track_hits:
                self._confirm(sighting.track_id, track, sighting, frame)
        alerts.extend(self._due(now))
        self._forget(now)
        return alerts

    def flush(self) -> List[VehicleEvent]:
        """Return every confirmed alert still waiting for its snapshot window (at the end)."""
        due = [track for track in self._tracks.values()
               if track.confirmed_at is not None and not track.done]
        for track in due:
            track.done = True
        return [track.event() for track in due]

    # -- internals ----------------------------------------------------------------------
    def _confirm(self, track_id: int, track: _Track, sighting: Sighting,
                 frame: FrameInfo) -> None:
        track.confirmed_at = frame.stamp
        track.best = (view_quality(sighting), sighting, frame.stamp, frame.key)
        first_seen, first_box = track.first
        heading = motion(box for _, box in track.path)
        if self._alerted.find(first_box, first_seen, track.standing_still(), exclude=track_id,
                              heading=heading) is not None:
            track.done = True  # a vehicle alerted before, under a new track
            self._alerted.see(track_id, sighting.bbox, frame.stamp)

    def _due(self, now: float) -> List[VehicleEvent]:
        alerts = []
        for track_id, track in self._tracks.items():
            if track.done or track.confirmed_at is None \
                    or now - track.confirmed_at < self.settings.snapshot_window:
                continue
            event = track.event()
            last = self._class_last.get(event.sighting.class_name)
            if last is not None and now - last < self.settings.class_cooldown:
                continue  # may still alert when the class cool-down ends
            track.done = True
            self._class_last[event.sighting.class_name] = now
            for seen_at, box in track.path:
                self._alerted.see(track_id, box, seen_at)
            alerts.append(event)
        return alerts

    def _untracked_alert(self, sighting: Sighting, frame: FrameInfo) -> List[VehicleEvent]:
        if self._alerted.find(sighting.bbox, frame.stamp) is not None:
            return []
        self._untracked -= 1
        self._alerted.see(self._untracked, sighting.bbox, frame.stamp)
        return [VehicleEvent('vehicle', sighting, frame.stamp, frame.key)]

    def _forget(self, now: float) -> None:
        self._tracks = {key: track for key, track in self._tracks.items()
                        if now - track.last_seen <= FORGET_TRACK_S}
        self._alerted.prune(now)
