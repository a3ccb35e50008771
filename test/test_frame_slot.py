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

"""The newest-frame hand-over between the detector node's threads (no ROS)."""

from __future__ import annotations

import threading
import time
from typing import List, Optional

from vehicle_detection.core.detection.frame_slot import NewestFrameSlot


class FakeClock:
    """Monotonic time set by the test; signals when the slot reads it during take()."""

    def __init__(self) -> None:
        self.now = 0.0
        self.read = threading.Event()

    def __call__(self) -> float:
        self.read.set()
        return self.now


def filled(clock: FakeClock, wait_fraction: float) -> NewestFrameSlot[str]:
    """Return a slot that has seen frames 0..5 at a steady 1 s interval, 5 untaken."""
    slot: NewestFrameSlot[str] = NewestFrameSlot(wait_fraction, clock=clock)
    for index in range(6):
        clock.now = float(index)
        slot.put(f'frame{index}')
    return slot


def test_only_the_newest_frame_is_kept_and_the_rest_counted() -> None:
    slot: NewestFrameSlot[int] = NewestFrameSlot()
    for index in range(5):
        slot.put(index)
    assert slot.take(1.0) == 4
    assert (slot.frames, slot.dropped) == (5, 4)
    slot.put(5)
    assert slot.take(1.0) == 5
    assert slot.dropped == 4  # taken in time: not dropped


def test_take_times_out_or_is_interrupted() -> None:
    slot: NewestFrameSlot[int] = NewestFrameSlot()
    assert slot.take(0.05) is None
    stop = threading.Event()
    result: List[Optional[int]] = []
    taker = threading.Thread(target=lambda: result.append(slot.take(30.0, stop.is_set)))
    taker.start()
    stop.set()
    slot.notify()
    taker.join(10.0)
    assert not taker.is_alive() and result == [None]


def test_a_frame_due_soon_is_waited_for() -> None:
    clock = FakeClock()
    slot = filled(clock, wait_fraction=0.5)
    clock.now = 5.8  # the newest frame is 0.8 intervals old: the next is due in 0.2
    clock.read.clear()
    result: List[Optional[str]] = []
    taker = threading.Thread(target=lambda: result.append(slot.take(1.0)))
    taker.start()
    assert clock.read.wait(10.0)  # take() is deciding; put() must wait for its lock
    clock.now = 6.0
    slot.put('frame6')
    taker.join(10.0)
    assert result == ['frame6'] and slot.dropped == 6  # frame5 was waited past


def test_the_wait_is_bounded_and_only_when_the_next_frame_is_near() -> None:
    clock = FakeClock()
    slot = filled(clock, wait_fraction=0.5)
    clock.now = 5.8  # due in 0.2 but never comes: waits at most 0.5 x interval
    start = time.monotonic()
    assert slot.take(1.0) == 'frame5'
    assert 0.45 <= time.monotonic() - start < 5.0

    slot = filled(clock, wait_fraction=0.5)
    clock.now = 5.3  # due in 0.7: more than half an interval away, taken at once
    start = time.monotonic()
    assert slot.take(1.0) == 'frame5'
    assert time.monotonic() - start < 0.4

    slot = filled(clock, wait_fraction=0.0)
    clock.now = 5.8  # waiting switched off
    start = time.monotonic()
    assert slot.take(1.0) == 'frame5'
    assert time.monotonic() - start < 0.4
