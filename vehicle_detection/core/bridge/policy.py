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
alerts. The alert then waits ``snapshot_window_s`` and goes out with the
track's best view in that time (largest box times score: the frame where
the vehicle is nearest and clearest), with the class the track's sightings
voted for.

Re-acquired vehicles: a tracker loses a parked car behind a passing truck
and later starts a new track for it. A new track that stands still at its
confirmation, where an alerted vehicle was last seen standing within
``track_cooldown_s`` (IoU >= ``same_place_iou``), is that vehicle and stays
silent. The rule is only for vehicles that stand still: on a road, following
vehicles reach the same place one after the other and each one alerts. A
place is forgotten as soon as its vehicle is seen driving away from it.

``class_cooldown_s`` (0: off) allows at most one alert per class in that
time; an alert held back by it goes out when the cool-down ends.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field, replace
import math
from typing import Deque, Dict, Hashable, List, Optional, Sequence, Tuple

Box = Tuple[float, float, float, float]
FORGET_TRACK_S = 30.0  # a track unseen this long is forgotten
STILL_WINDOW_S = 2.0  # motion is judged over this much of a track's recent path
STILL_FRACTION = 0.15  # standing still: the centre moved less than this many box diagonals
LEFT_IOU = 0.1  # a standing vehicle has left its place once its box overlaps it less


@dataclass(frozen=True)
class Sighting:
    """One tracked detection in one frame."""

    track_id: int
    class_name: str
    confidence: float
    bbox: Box  # x1, y1, x2, y2 in source pixels


@dataclass(frozen=True)
class AlertDecision:
    """An alert to send: the best view of the vehicle and when it was seen."""

    sighting: Sighting  # the chosen frame's box and score, with the voted class
    seen_at: float  # time of the chosen frame
    frame: Hashable = None  # the caller's key of that frame (e.g. its exact stamp)


def iou(a: Box, b: Box) -> float:
    """Return the intersection over union of two boxes."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def view_quality(sighting: Sighting) -> float:
    """Score a view for the snapshot: larger and more confident is better."""
    x1, y1, x2, y2 = sighting.bbox
    return max(0.0, x2 - x1) * max(0.0, y2 - y1) * sighting.confidence


@dataclass
class _Track:
    """What the policy remembers of one track."""

    last_seen: float
    strong_hits: int = 0
    votes: Dict[str, float] = field(default_factory=dict)
    path: Deque[Tuple[float, Box]] = field(default_factory=deque)
    confirmed_at: Optional[float] = None
    best: Optional[Tuple[float, Sighting, float, Hashable]] = None  # quality, sighting, time, key
    done: bool = False  # alerted, or silenced as a re-acquired vehicle

    def observe(self, sighting: Sighting, now: float, frame: Hashable,
                min_score: float, window: float) -> None:
        self.last_seen = now
        self.votes[sighting.class_name] = self.votes.get(sighting.class_name, 0.0) \
            + sighting.confidence
        self.path.append((now, sighting.bbox))
        while self.path and now - self.path[0][0] > STILL_WINDOW_S:
            self.path.popleft()
        if sighting.confidence >= min_score:
            self.strong_hits += 1
        quality = view_quality(sighting)
        if self.confirmed_at is not None and not self.done \
                and now - self.confirmed_at <= window \
                and (self.best is None or quality > self.best[0]):
            self.best = (quality, sighting, now, frame)

    def standing_still(self) -> bool:
        """Tell whether the centre stayed within a fraction of the box size lately."""
        _, last = self.path[-1]
        diagonal = max(1.0, math.hypot(last[2] - last[0], last[3] - last[1]))
        cx, cy = (last[0] + last[2]) / 2, (last[1] + last[3]) / 2
        return all(math.hypot((b[0] + b[2]) / 2 - cx, (b[1] + b[3]) / 2 - cy)
                   < STILL_FRACTION * diagonal for _, b in self.path)

    def decision(self) -> AlertDecision:
        assert self.best is not None
        _, sighting, seen_at, frame = self.best
        voted = max(self.votes.items(), key=lambda item: item[1])[0]
        return AlertDecision(replace(sighting, class_name=voted), seen_at, frame)


class AlertPolicy:
    """Decide which tracked vehicles become alerts, and with which view."""

    def __init__(self, min_track_hits: int = 3, track_cooldown_s: float = 60.0,
                 class_cooldown_s: float = 0.0, same_place_iou: float = 0.5,
                 min_alert_score: float = 0.5, snapshot_window_s: float = 1.0) -> None:
        self.min_track_hits = min_track_hits
        self.track_cooldown_s = track_cooldown_s
        self.class_cooldown_s = class_cooldown_s
        self.same_place_iou = same_place_iou
        self.min_alert_score = min_alert_score
        self.snapshot_window_s = snapshot_window_s
        self._tracks: Dict[int, _Track] = {}
        self._places: Dict[int, Tuple[float, Box]] = {}  # track -> (when, where) it stood
        self._class_last: Dict[str, float] = {}
        self._untracked = 0  # keys of places of untracked sightings (negative)

    def update(self, sightings: Sequence[Sighting], now: float,
               frame: Hashable = None) -> List[AlertDecision]:
        """
        Feed one frame's sightings at time ``now`` (seconds); return the alerts due now.

        ``frame`` is the caller's key of this frame, handed back in the decision
        whose snapshot is this frame.
        """
        self._places = {k: v for k, v in self._places.items()
                        if now - v[0] < self.track_cooldown_s}
        alerts = []
        for sighting in sightings:
            if sighting.track_id < 0:  # no tracker: each sighting stands alone
                alerts.extend(self._untracked_alert(sighting, now, frame))
                continue
            track = self._tracks.setdefault(sighting.track_id, _Track(now))
            track.observe(sighting, now, frame, self.min_alert_score,
                          self.snapshot_window_s)
            if track.done:
                self._remember_place(sighting.track_id, track, now)
            elif track.confirmed_at is None and track.strong_hits >= self.min_track_hits:
                self._confirm(sighting.track_id, track, sighting, now, frame)
        alerts.extend(self._due(now))
        self._forget(now)
        return alerts

    def flush(self) -> List[AlertDecision]:
        """Return every confirmed alert still waiting for its snapshot window (at the end)."""
        due = [track for track in self._tracks.values()
               if track.confirmed_at is not None and not track.done]
        for track in due:
            track.done = True
        return [track.decision() for track in due]

    # -- internals ----------------------------------------------------------------------
    def _confirm(self, track_id: int, track: _Track, sighting: Sighting, now: float,
                 frame: Hashable) -> None:
        track.confirmed_at = now
        track.best = (view_quality(sighting), sighting, now, frame)
        if track.standing_still() and any(
                iou(place, sighting.bbox) >= self.same_place_iou
                for key, (_, place) in self._places.items() if key != track_id):
            track.done = True  # a standing vehicle seen here before: re-acquired
            self._remember_place(track_id, track, now)

    def _due(self, now: float) -> List[AlertDecision]:
        alerts = []
        for track_id, track in self._tracks.items():
            if track.done or track.confirmed_at is None \
                    or now - track.confirmed_at < self.snapshot_window_s:
                continue
            decision = track.decision()
            last = self._class_last.get(decision.sighting.class_name)
            if last is not None and now - last < self.class_cooldown_s:
                continue  # may still alert when the class cool-down ends
            track.done = True
            self._class_last[decision.sighting.class_name] = now
            self._remember_place(track_id, track, now)
            alerts.append(decision)
        return alerts

    def _remember_place(self, track_id: int, track: _Track, now: float) -> None:
        """Keep where an alerted vehicle stands; forget it once the vehicle drives away."""
        _, box = track.path[-1]
        if track.standing_still():
            self._places[track_id] = (now, box)
        elif track_id in self._places and iou(self._places[track_id][1], box) < LEFT_IOU:
            del self._places[track_id]

    def _untracked_alert(self, sighting: Sighting, now: float,
                         frame: Hashable) -> List[AlertDecision]:
        if any(iou(place, sighting.bbox) >= self.same_place_iou
               for _, place in self._places.values()):
            return []
        self._untracked -= 1
        self._places[self._untracked] = (now, sighting.bbox)
        return [AlertDecision(sighting, now, frame)]

    def _forget(self, now: float) -> None:
        stale = [key for key, track in self._tracks.items()
                 if now - track.last_seen > FORGET_TRACK_S]
        for key in stale:
            del self._tracks[key]
