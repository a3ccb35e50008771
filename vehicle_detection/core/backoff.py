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

"""Capped exponential backoff with optional jitter."""

from __future__ import annotations

import random
from typing import Callable, Optional


class Backoff:
    """
    Delays that double after each failure up to a cap, reset on success.

    ``jitter`` is the fraction of the delay that is randomised ("equal
    jitter"): 0 gives exact doubling (reconnect logs stay predictable), 0.5
    spreads a fleet's retries so that they do not arrive in lock-step.
    """

    def __init__(self, initial: float, maximum: float, factor: float = 2.0,
                 jitter: float = 0.0,
                 rand: Optional[Callable[[], float]] = None) -> None:
        if initial <= 0 or maximum < initial:
            raise ValueError(
                f'backoff needs 0 < initial <= maximum, got {initial}, {maximum}')
        if factor < 1.0:
            raise ValueError(f'backoff factor must be >= 1, got {factor}')
        if not 0.0 <= jitter <= 1.0:
            raise ValueError(f'backoff jitter must be in [0, 1], got {jitter}')
        self.initial = initial
        self.maximum = maximum
        self.factor = factor
        self.jitter = jitter
        self._rand = rand or random.random
        self.failures = 0

    def next_delay(self) -> float:
        """Record a failure and return how long to wait before the next try."""
        base = min(self.maximum, self.initial * self.factor ** self.failures)
        self.failures += 1
        if self.jitter == 0.0:
            return base
        fixed = base * (1.0 - self.jitter)
        return fixed + base * self.jitter * self._rand()

    def reset(self) -> None:
        """Forget past failures (call after a success)."""
        self.failures = 0
