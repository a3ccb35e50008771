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
The bridge's writer: events and count periods go to the outbox on their own thread.

Encoding a snapshot and the fsynced outbox write take milliseconds, so they
never run on the ROS executor: the node hands each event over here and goes
on. An event's snapshot is its frame from the frame ring (waiting a moment
for an image that lags its detections; for a vehicle that stands, a frame
near its time shows it as well); an event the server would refuse is
logged and never queued.
"""

from __future__ import annotations

import queue
import threading
from typing import Callable, Optional, Protocol

import numpy as np

from vehicle_detection.core.bridge.config import BridgeSettings
from vehicle_detection.core.bridge.recorder import AlertRecorder
from vehicle_detection.core.bridge.snapshot import FrameRing
from vehicle_detection.core.counting.session import PeriodCounts
from vehicle_detection.core.events.event import VehicleEvent

FRAME_WAIT_S = 1.0  # longest wait for an image that lags its detections
STILL_FRAME_NS = 2 * 10**9  # a standing vehicle's snapshot may come from this near its time
QUEUE_SIZE = 1000


class Log(Protocol):
    """What the writer needs of a logger (a ROS node's logger or a ``logging`` one)."""

    def warning(self, message: str) -> object:
        """Log a warning."""

    def error(self, message: str) -> object:
        """Log an error."""


class EventWriter:
    """Writes events and count periods to the outbox, in order, on one thread."""

    def __init__(self, recorder: AlertRecorder, frames: FrameRing,
                 settings: Callable[[], BridgeSettings], written: Callable[[], None],
                 log: Log) -> None:
        self.recorder = recorder
        self.frames = frames
        self._settings = settings
        self._written = written  # called after each record (wakes the uploader)
        self._log = log
        self._jobs: 'queue.Queue[Optional[Callable[[], None]]]' = queue.Queue(QUEUE_SIZE)
        self._thread = threading.Thread(target=self._run, daemon=True, name='outbox-writer')
        self._thread.start()

    def event(self, event: VehicleEvent) -> None:
        """Queue an event; its snapshot is taken now if its frame is here."""
        frame = self.frames.get(event.frame)
        self._queue(lambda: self._write_event(event, frame))

    def counts(self, period: PeriodCounts) -> None:
        """Queue one period's traffic counts."""
        self._queue(lambda: self._write('traffic counts', lambda: self.recorder.record_counts(
            self._settings(), period)))

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, then stop the thread."""
        self._jobs.put(None)
        self._thread.join(timeout)

    def _queue(self, job: Callable[[], None]) -> None:
        try:
            self._jobs.put_nowait(job)
        except queue.Full:
            self._log.error('outbox writer is behind: event dropped')

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            job()

    def _write_event(self, event: VehicleEvent, frame: Optional[np.ndarray]) -> None:
        if frame is None:  # its image may still be on the way (another topic)
            frame = self.frames.wait_for(event.frame, FRAME_WAIT_S)
        if frame is None and event.still:  # standing: a frame near it shows it too
            frame = self.frames.nearest(event.frame, STILL_FRAME_NS)
        track = event.sighting.track_id
        if frame is None:
            self._log.warning(f'no frame with stamp {event.frame} for the snapshot of track '
                              f'{track}; {event.kind} alert goes without one')
        self._write(f'{event.kind} alert of track {track}', lambda: self.recorder.record(
            self._settings(), event, frame))

    def _write(self, what: str, record: Callable[[], None]) -> None:
        try:
            record()
        except ValueError as error:  # the server would refuse it: never queue it
            self._log.error(f'{what} not recorded: {error}')
            return
        except OSError as error:
            self._log.error(f'cannot record {what}: {error}')
            return
        self._written()
