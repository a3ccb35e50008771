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

"""Snapshots: the exact frame of an alert (a ring of recent frames) as a bounded JPEG."""

from __future__ import annotations

import collections
import threading
from typing import Deque, Dict, FrozenSet, Optional, Tuple

import cv2
import numpy as np

from vehicle_detection.core.bridge.budget import SnapshotPlan


class FrameRing:
    """
    The last ``capacity`` frames by capture stamp, to find an alert's own frame.

    An alert goes out ``snapshot_window`` seconds after its best view: on a
    fast camera (60 fps, 30 frames kept) that frame has left the ring by then.
    So the frames the rules still hold (:meth:`hold`) stay beyond the ring, at
    most ``MAX_HELD``, one per pending alert at worst, whatever the frame rate.
    """

    MAX_HELD = 64

    def __init__(self, capacity: int) -> None:
        self._frames: Deque[Tuple[int, np.ndarray]] = collections.deque(maxlen=capacity)
        self._wanted: FrozenSet[int] = frozenset()
        self._held: Dict[int, np.ndarray] = {}  # wanted frames pushed out of the ring
        self._cond = threading.Condition()

    def add(self, stamp_ns: int, image: np.ndarray) -> None:
        """Remember a frame."""
        with self._cond:
            if len(self._frames) == self._frames.maxlen and self._frames[0][0] in self._wanted:
                oldest, frame = self._frames[0]
                self._held[oldest] = frame
                while len(self._held) > self.MAX_HELD:
                    del self._held[min(self._held)]
            self._frames.append((stamp_ns, image))
            self._cond.notify_all()

    def hold(self, stamps_ns: FrozenSet[int]) -> None:
        """Keep exactly these frames beyond the ring (the rules' pending alerts' views)."""
        with self._cond:
            self._wanted = stamps_ns
            self._held = {stamp: frame for stamp, frame in self._held.items()
                          if stamp in stamps_ns}

    def get(self, stamp_ns: int) -> Optional[np.ndarray]:
        """Return the frame with exactly this stamp, or None when it is gone or never came."""
        with self._cond:
            return self._find(stamp_ns)

    def wait_for(self, stamp_ns: int, timeout: float) -> Optional[np.ndarray]:
        """
        Return the frame with this stamp, waiting up to ``timeout`` s for it to arrive.

        Images and detections come on separate topics, so a frame may arrive just
        after the detections made from it. Frames come in stamp order: once a later
        one is here, this one is lost and the wait ends early.
        """
        with self._cond:
            self._cond.wait_for(lambda: self._find(stamp_ns) is not None or (
                bool(self._frames) and self._frames[-1][0] > stamp_ns), timeout)
            return self._find(stamp_ns)

    def nearest(self, stamp_ns: int, within_ns: int) -> Optional[np.ndarray]:
        """Return the frame closest in time to ``stamp_ns`` (at most ``within_ns`` off)."""
        with self._cond:
            stamp, image = min(self._frames, key=lambda f: abs(f[0] - stamp_ns),
                               default=(None, None))
        return image if stamp is not None and abs(stamp - stamp_ns) <= within_ns else None

    def _find(self, stamp_ns: int) -> Optional[np.ndarray]:
        if stamp_ns in self._held:
            return self._held[stamp_ns]
        for stamp, image in reversed(self._frames):
            if stamp == stamp_ns:
                return image
        return None


def encode_snapshot(image: np.ndarray, max_width: int, quality: int, max_bytes: int,
                    plan: SnapshotPlan) -> bytes:
    """
    Encode ``image`` as a JPEG no larger than ``max_bytes``.

    The plan scales the configured ``max_width`` and quality; if the result is
    still too large, quality and then size come down until it fits.
    """
    width = max(64, int(max_width * plan.scale))
    quality = min(quality, plan.quality)
    height, source_width = image.shape[:2]
    while True:
        if source_width > width:
            frame = cv2.resize(image, (width, max(1, height * width // source_width)),
                               interpolation=cv2.INTER_AREA)
        else:
            frame = image
        ok, data = cv2.imencode('.jpg', frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise ValueError('the frame cannot be encoded as JPEG')
        if len(data) <= max_bytes or (width <= 64 and quality <= 10):
            if len(data) > max_bytes:
                raise ValueError(f'cannot fit a snapshot into {max_bytes} bytes')
            return data.tobytes()
        if quality > 30:
            quality -= 15
        else:
            width = max(64, width * 3 // 4)
