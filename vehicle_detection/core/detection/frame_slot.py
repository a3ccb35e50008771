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

"""A one-frame hand-over between a fast producer and a slower consumer thread."""

from __future__ import annotations

import collections
import statistics
import threading
import time
from typing import Callable, Deque, Generic, Optional, TypeVar

Frame = TypeVar('Frame')
INTERVAL_SAMPLES = 15  # arrival gaps whose median estimates the producer's interval


class NewestFrameSlot(Generic[Frame]):
    """
    Holds only the newest frame: a frame not taken before the next one is dropped and counted.

    A slower consumer therefore always works on a recent frame and nothing
    queues up behind it. With ``wait_fraction`` > 0, :meth:`take` trades a
    little throughput for fresher frames: when the next frame is due within
    that fraction of the producer's interval, it waits for that frame (idle at
    most that long) rather than starting on one that is almost an interval old.
    A consumer that keeps up finds the slot empty and is not affected.
    """

    def __init__(self, wait_fraction: float = 0.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.wait_fraction = wait_fraction
        self.frames = self.dropped = 0
        self._clock = clock
        self._cond = threading.Condition()
        self._frame: Optional[Frame] = None
        self._arrived = float('-inf')
        self._gaps: Deque[float] = collections.deque(maxlen=INTERVAL_SAMPLES)

    def put(self, frame: Frame) -> None:
        """Offer a new frame; an untaken older one is dropped."""
        now = self._clock()
        with self._cond:
            if self._frame is not None:
                self.dropped += 1
            if self._arrived < now:
                self._gaps.append(now - self._arrived)
            self._frame, self._arrived = frame, now
            self.frames += 1
            self._cond.notify_all()

    def notify(self) -> None:
        """Wake a waiting :meth:`take` so that it re-checks ``interrupted``."""
        with self._cond:
            self._cond.notify_all()

    def take(self, timeout: float,
             interrupted: Callable[[], bool] = lambda: False) -> Optional[Frame]:
        """Return the newest frame, or None after ``timeout`` s or once ``interrupted()``."""
        with self._cond:
            self._cond.wait_for(lambda: self._frame is not None or interrupted(), timeout)
            current = self._frame
            if current is not None and self.wait_fraction > 0 and len(self._gaps) >= 4:
                longest_wait = self.wait_fraction * statistics.median(self._gaps)
                due = self._arrived + longest_wait / self.wait_fraction - self._clock()
                if 0 < due <= longest_wait:
                    self._cond.wait_for(lambda: self._frame is not current or interrupted(),
                                        longest_wait)
            frame, self._frame = self._frame, None
            return frame
