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

import threading
from typing import Callable, Generic, Optional, TypeVar

Frame = TypeVar('Frame')


class NewestFrameSlot(Generic[Frame]):
    """
    Holds only the newest frame: a frame not taken before the next one is dropped and counted.

    A slower consumer therefore always works on the most recent frame and
    nothing queues up behind it (bounded latency, one frame of memory).
    """

    def __init__(self) -> None:
        self.frames = self.dropped = 0
        self._cond = threading.Condition()
        self._frame: Optional[Frame] = None

    def put(self, frame: Frame) -> None:
        """Offer a new frame; an untaken older one is dropped."""
        with self._cond:
            if self._frame is not None:
                self.dropped += 1
            self._frame = frame
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
            frame, self._frame = self._frame, None
            return frame
