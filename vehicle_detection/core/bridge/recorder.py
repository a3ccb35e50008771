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
From a vehicle event to an alert on disk: the alert body and its snapshot.

Also a period's traffic counts, which go through the same outbox.

The snapshot is encoded once per frame (alerts of one frame share the bytes
and, through their SHA-256, one upload), within the data budget's plan; the
alert is checked against the wire contract before it is queued, so nothing
the server would refuse ever waits in the outbox.
"""

from __future__ import annotations

from datetime import datetime, timezone
import hashlib
from typing import Optional, Tuple
import uuid

import numpy as np

from vehicle_detection.core.bridge.budget import DataBudget
from vehicle_detection.core.bridge.config import BridgeSettings
from vehicle_detection.core.bridge.outbox import COUNTS, Outbox
from vehicle_detection.core.bridge.snapshot import encode_snapshot
from vehicle_detection.core.counting.session import PeriodCounts
from vehicle_detection.core.events.event import VehicleEvent
from vehicle_detection.wire import Alert, CountRecord, utc_iso

MB = 1024 * 1024


class AlertRecorder:
    """Writes alerts to the outbox; used from one thread (the bridge's writer)."""

    def __init__(self, outbox: Outbox, budget: DataBudget) -> None:
        self.outbox = outbox
        self.budget = budget
        self.recorded = 0  # alerts written by this recorder (this run)
        self.count_records = 0  # periods of traffic counts written (this run)
        self._last_snapshot: Tuple[int, Optional[bytes]] = (-1, None)

    def record(self, settings: BridgeSettings, event: VehicleEvent,
               frame: Optional[np.ndarray]) -> None:
        """
        Queue one event as an alert with its frame's snapshot (``frame`` None: without one).

        The event's kind and places (zone, line, direction) go as they are;
        ``event.frame`` is the frame's stamp in nanoseconds (alerts of one
        frame share its snapshot).

        Raises ValueError when the alert breaks the wire contract and OSError
        when the outbox cannot be written; nothing is queued then.
        """
        height, width = frame.shape[:2] if frame is not None else (0, 0)
        jpeg = self._encode(settings, event.frame, frame) if frame is not None else None
        moment = datetime.fromtimestamp(event.stamp, timezone.utc)
        sighting = event.sighting
        # The digest lets the server link this alert to the same picture sent with an
        # earlier alert of this frame: the bytes go over the link once.
        alert = Alert(str(uuid.uuid4()), settings.device_id, settings.camera_id,
                      utc_iso(moment), sighting.track_id, sighting.class_name,
                      sighting.confidence, sighting.bbox, max(width, 1), max(height, 1),
                      hashlib.sha256(jpeg).hexdigest() if jpeg is not None else None,
                      event.kind, **event.places, replay=settings.replay)
        self.outbox.enqueue(alert.to_json(), jpeg)
        self.recorded += 1

    def record_counts(self, settings: BridgeSettings, period: PeriodCounts) -> None:
        """Queue one period's traffic counts (ValueError, OSError: nothing is queued)."""
        start = datetime.fromtimestamp(period.start, timezone.utc)
        record = CountRecord(str(uuid.uuid4()), settings.device_id, settings.camera_id,
                             utc_iso(start), period.period_s, period.rows(), settings.replay)
        self.outbox.enqueue(record.to_json(), None, COUNTS)
        self.count_records += 1

    def _encode(self, settings: BridgeSettings, stamp_ns: int,
                frame: np.ndarray) -> Optional[bytes]:
        """Encode a frame's snapshot once: alerts of one frame share the same bytes."""
        if self._last_snapshot[0] == stamp_ns:
            return self._last_snapshot[1]
        plan = self.budget.plan(settings.snapshot_quality)
        jpeg = encode_snapshot(frame, settings.snapshot_max_width, settings.snapshot_quality,
                               int(settings.max_image_size_mb * MB), plan) \
            if plan.send_images else None
        self._last_snapshot = (stamp_ns, jpeg)
        return jpeg
