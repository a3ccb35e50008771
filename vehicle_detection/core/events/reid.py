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
One rule for "the same vehicle under a new track", shared by tracker, policy and counter.

A tracker loses vehicles: behind a passing lorry, in a detector's bad
frames. It keeps a lost track for :data:`LOST_WAIT_S` and re-finds the
vehicle within its motion gate; what it cannot re-find comes back under a
new track id. Whatever looks at tracks (the alert policy, the line
counter, the zone dwell rule) then asks the same question, answered here
once: a new track is a vehicle seen before when

- it appears within :data:`LOST_WAIT_S` of that vehicle's loss, overlapping
  its last box (IoU >= :data:`REFOUND_IOU`), not heading the other way: a
  moving vehicle lost a moment (where one vehicle leaves the picture another
  may come in, the other way);
- or both stand still, the new one where the other was last seen standing
  (IoU >= :data:`SAME_PLACE_IOU`), within the caller's place memory (the
  bridge's ``track_cooldown``): a parked car hidden by passing traffic for
  longer than any tracker waits.

A vehicle seen driving off is no longer standing, so its place is free for
the next one: followers in a lane that pass the same place are each new.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
import math
from typing import Deque, Dict, Iterable, Optional, Tuple

from vehicle_detection.core.events.vehicles import Box, centre, diagonal, iou, Point

LOST_WAIT_S = 2.0  # a lost vehicle is looked for this long (the tracker's max_lost)
REFOUND_IOU = 0.3  # a new box overlapping a just-lost vehicle's last box this much is it
SAME_PLACE_IOU = 0.5  # a standing vehicle re-found where it stood
STILL_WINDOW_S = 2.0  # standing still is judged over this much of a vehicle's recent path
STILL_FRACTION = 0.15  # standing: the centre moved less than this many box diagonals
PLACE_MEMORY_S = 60.0  # default memory of standing vehicles' places


def standing_still(path: Iterable[Box]) -> bool:
    """Tell whether every box's centre lies within a fraction of the last box's size."""
    boxes = list(path)
    if not boxes:
        return False
    cx, cy = centre(boxes[-1])
    reach = STILL_FRACTION * diagonal(boxes[-1])
    return all(math.hypot(c[0] - cx, c[1] - cy) < reach for c in map(centre, boxes))


@dataclass
class LastSeen:
    """Where and when a vehicle was last seen, with its recent path."""

    box: Box
    stamp: float
    path: Deque[Tuple[float, Box]] = field(default_factory=deque)

    def standing(self) -> bool:
        """Tell whether the vehicle stood still over its recent path."""
        return standing_still(box for _, box in self.path)

    def motion(self) -> Point:
        """Return how far its centre moved over its recent path (x, y pixels)."""
        return motion(box for _, box in self.path)


def motion(path: Iterable[Box]) -> Point:
    """Return how far the centre moved from the first box of ``path`` to the last."""
    boxes = list(path)
    if len(boxes) < 2:
        return (0.0, 0.0)
    (x1, y1), (x2, y2) = centre(boxes[0]), centre(boxes[-1])
    return (x2 - x1, y2 - y1)


def same_vehicle(seen: LastSeen, box: Box, stamp: float, standing: bool = True,
                 place_memory_s: float = PLACE_MEMORY_S,
                 heading: Point = (0.0, 0.0)) -> bool:
    """
    Tell whether a new track first seen at ``box`` at ``stamp`` is the vehicle ``seen``.

    ``standing``: whether the new track stands still, ``heading``: how it
    moved so far (a caller that cannot tell yet, at a track's first box,
    passes the defaults).
    """
    gone = stamp - seen.stamp
    if gone <= 0.0:  # seen in this very frame: another vehicle
        return False
    overlap = iou(seen.box, box)
    was = seen.motion()
    if gone <= LOST_WAIT_S and overlap >= REFOUND_IOU \
            and was[0] * heading[0] + was[1] * heading[1] >= 0.0:
        return True
    return standing and gone <= place_memory_s and overlap >= SAME_PLACE_IOU \
        and seen.standing()


class Whereabouts:
    """Where each vehicle (by key) was last seen, to tell a new track that is one of them."""

    def __init__(self, place_memory_s: float = PLACE_MEMORY_S) -> None:
        self.place_memory_s = place_memory_s
        self._seen: Dict[int, LastSeen] = {}

    def __contains__(self, key: int) -> bool:
        return key in self._seen

    def see(self, key: int, box: Box, stamp: float) -> None:
        """Note that vehicle ``key`` is at ``box`` at ``stamp``."""
        seen = self._seen.get(key)
        if seen is None:
            seen = self._seen[key] = LastSeen(box, stamp)
        seen.box, seen.stamp = box, stamp
        seen.path.append((stamp, box))
        while seen.path and stamp - seen.path[0][0] > STILL_WINDOW_S:
            seen.path.popleft()

    def standing(self, key: int) -> bool:
        """Tell whether vehicle ``key`` stands still (False when unknown)."""
        seen = self._seen.get(key)
        return seen is not None and seen.standing()

    def find(self, box: Box, stamp: float, standing: bool = True,
             exclude: Optional[int] = None, heading: Point = (0.0, 0.0)) -> Optional[int]:
        """Return the key of the vehicle a new track first seen at ``box`` is, if any."""
        found = [(seen.stamp, key) for key, seen in self._seen.items() if key != exclude
                 and same_vehicle(seen, box, stamp, standing, self.place_memory_s, heading)]
        return max(found)[1] if found else None  # the one lost most recently

    def forget(self, key: int) -> None:
        """Forget vehicle ``key``."""
        self._seen.pop(key, None)

    def prune(self, stamp: float) -> None:
        """Forget vehicles no new track can be any more."""
        self._seen = {key: seen for key, seen in self._seen.items()
                      if stamp - seen.stamp <= LOST_WAIT_S or (
                          stamp - seen.stamp <= self.place_memory_s and seen.standing())}
