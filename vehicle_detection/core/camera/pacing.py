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
A recording played like a live camera: real time, a rate cap that skips frames.

A camera capped at 10 fps in front of a 30 fps scene delivers every third
moment, in real time. A video file played the same way keeps its own clock:
each frame is due at its position on the file's timeline (frame number over
the declared rate) after the start, and the cap takes a frame only when its
next slot has come; the frames in between are skipped. Stamps follow the
file's timeline (start time + position), so the gaps between them are the
real time between the pictures. ``pace: every_frame`` (camera) and ``bag make
--pace every_frame`` keep the other way: every frame, one per 1/fps.
"""

from __future__ import annotations

import time
from typing import Callable, Optional, Tuple

PACES = ('realtime', 'every_frame')
#: later than this behind the file's clock (a stalled decoder, a paused machine),
#: the schedule starts afresh from now instead of bursting to catch up
HOLD_UP_S = 1.0


class RateCap:
    """
    Which frames of a timeline a camera capped at ``fps`` takes.

    Slots come every 1/fps from the first frame; a frame takes the slot when
    it is at most half a frame step early (so 29.97 fps frames fill 10 fps
    slots with every third one instead of drifting to the fourth). After a
    gap longer than a slot the slots start again from the next frame.
    ``fps`` 0 takes every frame.
    """

    def __init__(self, fps: float) -> None:
        """Cap at ``fps`` frames per second (0: no cap)."""
        self.fps = fps
        self._next: Optional[float] = None
        self._last: Optional[float] = None

    def take(self, position: float) -> bool:
        """Whether the frame at ``position`` (seconds, rising) is taken."""
        step = position - self._last if self._last is not None else 0.0
        self._last = position
        if self.fps <= 0:
            return True
        period = 1.0 / self.fps
        if self._next is not None and position < self._next - step / 2:
            return False
        if self._next is None or position - self._next >= period:
            self._next = position
        self._next += period
        return True


class RecordingTimeline:
    """Places the frames of one opened recording on the wall clock and stamps them."""

    def __init__(self, clock_ns: Callable[[], int] = time.time_ns,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        """Time with ``clock_ns`` (stamps) and ``monotonic`` (waits)."""
        self._clock_ns = clock_ns
        self._monotonic = monotonic
        self._cap = RateCap(0.0)
        self._origin = 0.0  # monotonic time of position 0
        self._origin_ns: Optional[int] = None  # stamp of position 0

    def place(self, position: float, fps: float) -> Optional[Tuple[float, int]]:
        """
        Return (seconds to wait, stamp in ns) for the frame at ``position``; None: skip it.

        The first frame placed fixes the start: its stamp is now.
        """
        if fps != self._cap.fps:
            self._cap = RateCap(fps)
        if not self._cap.take(position):
            return None
        now = self._monotonic()
        if self._origin_ns is None:
            self._origin = now - position
            self._origin_ns = self._clock_ns() - round(position * 1e9)
        delay = self._origin + position - now
        if delay < -HOLD_UP_S:
            self._origin, delay = now - position, 0.0
        return max(0.0, delay), self._origin_ns + round(position * 1e9)
