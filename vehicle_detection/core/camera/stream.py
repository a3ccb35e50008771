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
A self-healing camera stream: pacing, resize, stall detection, reconnect.

:class:`CameraStream` owns two kinds of thread. A *reader* per open source
generation calls the (possibly blocking) ``read`` and hands frames over; the
*supervisor* paces (a video file in real time on its own timeline, see
``pacing.py``) and resizes them, calls ``on_frame``, and when the reader
fails, the source ends or no frame arrives within ``stall_timeout``, abandons
that generation and reopens the source with capped exponential backoff. A
reader stuck inside a blocking read is left to finish on its own; it never
delays the supervisor.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
from enum import Enum
import queue
import threading
import time
from typing import Callable, cast, Deque, Optional, Tuple, Union

import cv2
import numpy as np

from vehicle_detection.core.backoff import Backoff
from vehicle_detection.core.camera.config import CameraConfig
from vehicle_detection.core.camera.pacing import RecordingTimeline
from vehicle_detection.core.camera.sources import (
    FrameSource, open_source, parse_source, SourceError, SourceHistory, SourceSpec)

Opener = Callable[[SourceSpec, bool, SourceHistory], FrameSource]
Captured = Tuple[np.ndarray, int, Optional[float]]  # image, capture time, position in a file
LogSink = Callable[[str, str], None]  # (level: 'info' | 'warn' | 'error', message)


class StreamState(str, Enum):
    """What the stream is doing, as reported on /diagnostics."""

    CONNECTING = 'connecting'
    STREAMING = 'streaming'
    RECONNECTING = 'reconnecting'
    ENDED = 'ended'
    STOPPED = 'stopped'


@dataclass(frozen=True)
class Frame:
    """A captured BGR frame and the time it was captured."""

    image: np.ndarray
    stamp_ns: int
    seq: int


@dataclass(frozen=True)
class StreamStats:
    """A snapshot of the stream's health."""

    state: StreamState
    frames: int
    reconnects: int
    fps: float
    last_error: str
    retry_in: float


_END = object()
_PACING_SLACK = 0.002  # seconds a live frame may come early and still be on time
READER_JOIN_S = 1.0  # how long a stop waits for the reader to leave the source


class _Generation:
    """One opened source and the reader thread that drains it."""

    def __init__(self, source: FrameSource, clock_ns: Callable[[], int]) -> None:
        self.source = source
        self.abandoned = threading.Event()
        self.slot: 'queue.Queue[Union[Captured, object, SourceError]]' = queue.Queue(maxsize=1)
        self._clock_ns = clock_ns
        self.thread = threading.Thread(target=self._read_loop, daemon=True,
                                       name='camera-reader')
        self.thread.start()

    def _read_loop(self) -> None:
        try:
            while not self.abandoned.is_set():
                try:
                    image = self.source.read()
                except SourceError as error:
                    self._hand_over(error)
                    return
                except cv2.error as error:
                    self._hand_over(SourceError(f'OpenCV: {error}'))
                    return
                if image is None:
                    self._hand_over(_END)
                    return
                self._hand_over((image, self._clock_ns(), self.source.position))
        finally:
            self.source.close()

    def _hand_over(self, item: object) -> None:
        if self.source.live:
            # Live: keep only the newest frame, never build a backlog.
            try:
                self.slot.get_nowait()
            except queue.Empty:
                pass
            self.slot.put_nowait(item)
            return
        # Recorded: every frame is played, so wait for the supervisor to take it.
        while not self.abandoned.is_set():
            try:
                self.slot.put(item, timeout=0.1)
                return
            except queue.Full:
                continue


class CameraStream:
    """Delivers paced, resized frames from a source that heals itself."""

    def __init__(self, config: CameraConfig, on_frame: Callable[[Frame], None],
                 log: Optional[LogSink] = None,
                 clock_ns: Callable[[], int] = time.time_ns,
                 opener: Opener = open_source) -> None:
        self._config = config
        self._spec = parse_source(config.source)
        self._on_frame = on_frame
        self._log = log or (lambda level, message: None)
        self._clock_ns = clock_ns
        self._opener = opener
        self._history = SourceHistory()
        self._lock = threading.Lock()
        self._restart = threading.Event()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._state = StreamState.STOPPED
        self._frames = 0
        self._reconnects = 0
        self._last_error = ''
        self._retry_at = 0.0
        self._emitted: Deque[float] = collections.deque(maxlen=120)

    # -- control -------------------------------------------------------------
    def start(self) -> None:
        """Start the supervisor thread."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._supervise, daemon=True,
                                        name='camera-supervisor')
        self._thread.start()

    def stop(self, timeout: float = 3.0) -> None:
        """Stop delivering frames; returns once the supervisor has exited."""
        self._stop.set()
        self._restart.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._set_state(StreamState.STOPPED)

    def update(self, config: CameraConfig) -> None:
        """Apply new settings; a new source or loop setting reopens the source."""
        with self._lock:
            reopen = (config.source, config.loop) != (self._config.source, self._config.loop)
            self._config = config
            if reopen:
                self._spec = parse_source(config.source)
                self._history = SourceHistory()
        if reopen:
            self._restart.set()

    def stats(self) -> StreamStats:
        """Return the current state, counters and measured frame rate."""
        with self._lock:
            times = list(self._emitted)
            fps = 0.0
            if len(times) >= 2 and time.monotonic() - times[-1] < 2.0:
                fps = (len(times) - 1) / max(times[-1] - times[0], 1e-9)
            retry_in = max(0.0, self._retry_at - time.monotonic())
            return StreamStats(self._state, self._frames, self._reconnects, fps,
                               self._last_error, retry_in)

    # -- supervisor ----------------------------------------------------------
    def _set_state(self, state: StreamState, error: Optional[str] = None) -> None:
        with self._lock:
            self._state = state
            if error is not None:
                self._last_error = error

    def _wait(self, seconds: float) -> bool:
        """Sleep unless stopped or restarted; True when the wait ran out."""
        with self._lock:
            self._retry_at = time.monotonic() + seconds
        return not self._restart.wait(seconds)

    def _supervise(self) -> None:
        reopening = False
        while not self._stop.is_set():
            self._restart.clear()
            with self._lock:
                config, spec, history = self._config, self._spec, self._history
            backoff = Backoff(config.reconnect_initial, config.reconnect_max)
            ended = False
            while not self._stop.is_set() and not self._restart.is_set():
                if reopening:
                    with self._lock:
                        self._reconnects += 1
                if not ended:
                    self._set_state(StreamState.CONNECTING)
                try:
                    source = self._opener(spec, config.loop, history)
                except SourceError as error:
                    delay = backoff.next_delay()
                    self._set_state(StreamState.RECONNECTING, str(error))
                    self._log('error', f'camera source failed: {error}; '
                                       f'retrying in {delay:.1f} s')
                    reopening, ended = True, False
                    self._wait(delay)
                    continue
                outcome, reason = self._pump(_Generation(source, self._clock_ns), backoff)
                if outcome is StreamState.STOPPED:
                    break
                delay = backoff.next_delay()
                self._set_state(outcome, reason)
                if outcome is StreamState.ENDED:
                    # A finished recording is looked at again for new material,
                    # quietly: it is not a failure.
                    if not ended:
                        self._log('info', f'camera source {config.source} ended; '
                                          'watching it for new frames')
                    reopening, ended = False, True
                else:
                    self._log('warn', f'camera source failed: {reason}; '
                                      f'reconnecting in {delay:.1f} s')
                    reopening, ended = True, False
                self._wait(delay)

    def _pump(self, generation: _Generation, backoff: Backoff
              ) -> Tuple[StreamState, str]:
        """Deliver frames of one generation until it ends, fails or stalls."""
        next_due = 0.0
        timeline = RecordingTimeline(self._clock_ns)
        try:
            while not self._stop.is_set() and not self._restart.is_set():
                with self._lock:
                    config = self._config
                try:
                    item = generation.slot.get(timeout=config.stall_timeout)
                except queue.Empty:
                    return (StreamState.RECONNECTING,
                            f'stalled: no frame for {config.stall_timeout:.1f} s')
                if item is _END:
                    return StreamState.ENDED, 'end of source'
                if isinstance(item, SourceError):
                    return StreamState.RECONNECTING, str(item)
                image, stamp_ns, position = cast(Captured, item)
                backoff.reset()
                self._set_state(StreamState.STREAMING)
                if position is not None and config.pace == 'realtime':
                    # A video file: real time on its own timeline, the cap skips frames.
                    placed = timeline.place(position, config.fps)
                    if placed is None:
                        continue
                    if placed[0] > 0 and self._restart.wait(placed[0]):
                        break
                    self._deliver(resize(image, config.width, config.height), placed[1])
                    continue
                period = 1.0 / config.fps if config.fps > 0 else 0.0
                now = time.monotonic()
                if period and now < next_due - _PACING_SLACK:
                    if generation.source.live:
                        continue  # over the cap: skip this frame, keep the newest
                    if self._restart.wait(next_due - now):
                        break
                    stamp_ns = self._clock_ns()
                elif not generation.source.live:
                    stamp_ns = self._clock_ns()
                # Keep the schedule while on time; after a hold-up start afresh
                # rather than bursting to catch up.
                now = time.monotonic()
                next_due = (next_due if now - next_due < period else now) + period
                self._deliver(resize(image, config.width, config.height), stamp_ns)
            return StreamState.STOPPED, ''
        finally:
            generation.abandoned.set()
            if self._stop.is_set():
                # At a stop the reader closes its source before the process may exit:
                # a reader left inside the decoder at exit can abort the process.
                generation.thread.join(READER_JOIN_S)

    def _deliver(self, image: np.ndarray, stamp_ns: int) -> None:
        with self._lock:
            seq = self._frames
            self._frames += 1
            self._emitted.append(time.monotonic())
        self._on_frame(Frame(image, stamp_ns, seq))


def resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize to ``width`` x ``height``; one of them 0 keeps the aspect ratio."""
    if width <= 0 and height <= 0:
        return image
    src_h, src_w = image.shape[:2]
    if width <= 0:
        width = max(1, round(src_w * height / src_h))
    elif height <= 0:
        height = max(1, round(src_h * width / src_w))
    if (width, height) == (src_w, src_h):
        return image
    shrinking = width * height < src_w * src_h
    return cv2.resize(image, (width, height),
                      interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
