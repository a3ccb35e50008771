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

"""The newest-frame hand-over between the detector node's threads, and its figures (no ROS)."""

from __future__ import annotations

import threading
from typing import List, Optional

from vehicle_detection.core.detection.frame_slot import NewestFrameSlot
from vehicle_detection.core.detection.pipeline_figures import PipelineFigures, WINDOW


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


def test_a_waiting_consumer_gets_the_next_frame() -> None:
    slot: NewestFrameSlot[str] = NewestFrameSlot()
    result: List[Optional[str]] = []
    taker = threading.Thread(target=lambda: result.append(slot.take(30.0)))
    taker.start()
    slot.put('frame')
    taker.join(10.0)
    assert result == ['frame'] and slot.dropped == 0


def test_pipeline_figures_are_means_over_the_same_recent_frames() -> None:
    figures = PipelineFigures()
    assert figures.figures() == {'fps': 0.0, 'inference_ms': 0.0, 'latency_ms': 0.0,
                                 'frame_age_ms': 0.0}
    for index in range(WINDOW + 10):  # the first ten fall out of the window
        figures.record(100.0 if index < 10 else 20.0, 5.0, 30.0)
    values = figures.figures()
    assert (values['inference_ms'], values['frame_age_ms'], values['latency_ms']) == (
        20.0, 5.0, 30.0)
    assert values['fps'] > 0  # frames just published
