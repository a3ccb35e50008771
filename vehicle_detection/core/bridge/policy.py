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

"""When a detection becomes an alert: once per vehicle, with cool-downs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Sequence, Set, Tuple

Box = Tuple[float, float, float, float]
FORGET_TRACK_S = 30.0  # a track unseen this long is forgotten


@dataclass(frozen=True)
class Sighting:
    """One tracked detection in one frame."""

    track_id: int
    class_name: str
    confidence: float
    bbox: Box  # x1, y1, x2, y2 in source pixels


def iou(a: Box, b: Box) -> float:
    """Return the intersection over union of two boxes."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


class AlertPolicy:
    """
    Decide which sightings become alerts.

    A track alerts once, after ``min_track_hits`` frames. A new track where a
    vehicle already alerted within ``track_cooldown_s`` (same place, IoU >=
    ``same_place_iou``) is taken for the same vehicle re-acquired (a parked
    car the tracker lost behind a passing truck) and stays silent. At most one
    alert per class every ``class_cooldown_s`` (0: no limit).
    """

    def __init__(self, min_track_hits: int = 3, track_cooldown_s: float = 60.0,
                 class_cooldown_s: float = 0.0, same_place_iou: float = 0.5) -> None:
        self.min_track_hits = min_track_hits
        self.track_cooldown_s = track_cooldown_s
        self.class_cooldown_s = class_cooldown_s
        self.same_place_iou = same_place_iou
        self._hits: Dict[int, int] = {}  # track -> frames seen
        self._last_seen: Dict[int, float] = {}
        self._done: Set[int] = set()  # tracks that alerted (or were silenced)
        self._recent: List[Tuple[float, Box]] = []  # where alerts happened, when
        self._class_last: Dict[str, float] = {}

    def update(self, sightings: Sequence[Sighting], now: float) -> List[Sighting]:
        """Feed one frame's sightings at time ``now``; return those that alert."""
        alerts = []
        self._recent = [(t, box) for t, box in self._recent if now - t < self.track_cooldown_s]
        for sighting in sightings:
            track = sighting.track_id
            hits = self._hits[track] = self._hits.get(track, 0) + 1
            self._last_seen[track] = now
            if track in self._done:
                continue
            needed = self.min_track_hits if track >= 0 else 1
            if hits < needed:
                continue
            if any(iou(box, sighting.bbox) >= self.same_place_iou for _, box in self._recent):
                if track >= 0:
                    self._done.add(track)
                continue
            last = self._class_last.get(sighting.class_name)
            if last is not None and now - last < self.class_cooldown_s:
                continue  # may still alert when the class cool-down ends
            if track >= 0:
                self._done.add(track)
            self._recent.append((now, sighting.bbox))
            self._class_last[sighting.class_name] = now
            alerts.append(sighting)
        self._forget(now)
        return alerts

    def _forget(self, now: float) -> None:
        stale = [track for track, seen in self._last_seen.items() if now - seen > FORGET_TRACK_S]
        for track in stale:
            del self._last_seen[track], self._hits[track]
            self._done.discard(track)
