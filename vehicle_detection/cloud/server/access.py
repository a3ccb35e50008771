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

"""Device API keys (stored only as hashes) and the per-process rate limiter."""

from __future__ import annotations

import hashlib
import math
import secrets
import threading
import time
from typing import Dict, Optional, Tuple

KEY_PREFIX = 'vdk_'
# Buckets are kept per name (a device, or a client address for failed logins): once
# this many are held, those refilled to full are dropped (a full bucket is the same as
# none), so clients that come and go (an address scan) never pile up.
PRUNE_AT = 1024


def new_key() -> str:
    """Return a fresh API key: 256 random bits, URL-safe."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    """
    Return the stored form of ``key``.

    Keys are 256-bit random tokens, not passwords: a plain SHA-256 cannot be
    brute-forced and lets the server find the device with one indexed lookup.
    """
    return hashlib.sha256(key.encode('utf-8')).hexdigest()


class RateLimiter:
    """A token bucket per device: ``rate`` requests a second, bursts up to ``burst``."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, max(burst, 1.0)
        self._buckets: Dict[str, Tuple[float, float]] = {}
        self._lock = threading.Lock()
        self._prune_at = PRUNE_AT

    def __len__(self) -> int:
        """Return how many buckets are held (not full)."""
        return len(self._buckets)

    def acquire(self, device: str, now: Optional[float] = None) -> Optional[int]:
        """Take one token; return None, or the whole seconds to wait when refused."""
        if self.rate <= 0:
            return None
        now = time.monotonic() if now is None else now
        with self._lock:
            if len(self._buckets) >= self._prune_at:
                self._buckets = {name: (tokens, last) for name, (tokens, last)
                                 in self._buckets.items()
                                 if tokens + (now - last) * self.rate < self.burst}
                # Many clients limited at once: prune again only after as many more.
                self._prune_at = max(PRUNE_AT, 2 * len(self._buckets))
            tokens, last = self._buckets.get(device, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[device] = (tokens - 1.0, now)
                return None
            self._buckets[device] = (tokens, now)
            return max(1, math.ceil((1.0 - tokens) / self.rate))
