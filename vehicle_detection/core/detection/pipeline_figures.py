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

"""The detector's recent throughput and delays, for its /diagnostics (no ROS)."""

from __future__ import annotations

import collections
import threading
import time
from typing import Deque, Dict, Sequence, Tuple

WINDOW = 50  # frames the figures are taken over
IDLE_S = 2.0  # no frame published for this long: the rate is 0


class PipelineFigures:
    """Inference time, frame age, latency and rate over the last ``WINDOW`` published frames."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # written by the publish thread, read by the executor
        # (inference ms, frame age ms, latency ms) of one frame, kept together: every mean
        # is over the same frames.
        self._frames: Deque[Tuple[float, float, float]] = collections.deque(maxlen=WINDOW)
        self._done: Deque[float] = collections.deque(maxlen=WINDOW)

    def record(self, inference_ms: float, frame_age_ms: float, latency_ms: float) -> None:
        """Add one published frame."""
        with self._lock:
            self._frames.append((inference_ms, frame_age_ms, latency_ms))
            self._done.append(time.monotonic())

    def figures(self) -> Dict[str, float]:
        """Return fps (0 when idle), and mean inference_ms, latency_ms and frame_age_ms."""
        with self._lock:
            frames, done = list(self._frames), list(self._done)
        fps = (len(done) - 1) / (done[-1] - done[0]) if len(done) > 1 and (
            time.monotonic() - done[-1] < IDLE_S) and done[-1] > done[0] else 0.0
        return {'fps': fps, 'inference_ms': _mean([f[0] for f in frames]),
                'latency_ms': _mean([f[2] for f in frames]),
                'frame_age_ms': _mean([f[1] for f in frames])}


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0
