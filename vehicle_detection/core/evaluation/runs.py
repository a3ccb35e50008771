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
Running the real detector, tracker and alert policy over a scene or a clip.

Shared by ``bench/tracking.py`` and the tests: frames go through
:class:`Detector` exactly as in the detector node (decode, track, filter),
then the tracked detections through the bridge's :class:`AlertPolicy` with
the configuration's defaults.
"""

from __future__ import annotations

from dataclasses import dataclass
import json
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Sequence

import cv2
import numpy as np

from vehicle_detection.core.bridge.config import BridgeSettings
from vehicle_detection.core.detection.detections import Detections
from vehicle_detection.core.detection.detector import Detector
from vehicle_detection.core.evaluation.alerts import AlertScore, run_policy, score_alerts
from vehicle_detection.core.evaluation.scene import Truth
from vehicle_detection.core.events.event import VehicleEvent
from vehicle_detection.core.events.policy import AlertPolicy, PolicySettings
from vehicle_detection.core.params import slice_of


@dataclass
class ClipTruth:
    """Ground truth of a recorded clip (see ``test/fixtures/*.truth.json``)."""

    clip: str
    fps: float
    frames: List[List[Truth]]
    expected: Dict[int, str]


def load_clip_truth(path: Path) -> ClipTruth:
    """Read a clip's ground-truth fixture."""
    document = json.loads(path.read_text())
    frames: List[List[Truth]] = [[] for _ in range(document['frames'])]
    expected = {}
    for vehicle in document['vehicles']:
        vehicle_id = int(vehicle['vehicle'])
        if vehicle['expected']:
            expected[vehicle_id] = 'vehicle'
        for index, *box in vehicle['boxes']:
            frames[int(index)].append(Truth(vehicle_id, 'vehicle', tuple(box), 1.0, 0.0))
    return ClipTruth(document['clip'], float(document['fps']), frames, expected)


def read_video(path: Path) -> Iterator[np.ndarray]:
    """Yield every frame of a video file."""
    capture = cv2.VideoCapture(str(path))
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                return
            yield frame
    finally:
        capture.release()


def every(frames: Iterable[np.ndarray], step: int) -> Iterator[np.ndarray]:
    """Yield every ``step``-th frame (a camera capped at a lower rate)."""
    for index, frame in enumerate(frames):
        if index % step == 0:
            yield frame


def default_policy(**changes: object) -> AlertPolicy:
    """Return the alert policy with the bridge's default parameters (``changes``: some other)."""
    return AlertPolicy(slice_of(PolicySettings, BridgeSettings(), **changes))


@dataclass
class Run:
    """One pass over a scene at one frame rate."""

    tracked: List[Detections]
    alerts: List[VehicleEvent]
    score: AlertScore
    frame_indices: List[int]  # source frame index of each processed frame


def evaluate(detector: Detector, frames: Iterable[np.ndarray], truth: Sequence[List[Truth]],
             expected: Dict[int, str], fps: float, step: int = 1) -> Run:
    """Detect and track every ``step``-th frame, run the policy, score the alerts."""
    if detector.tracker is not None:
        detector.tracker.reset()
    tracked = [detector.detect(frame, index * step / fps)[0]
               for index, frame in enumerate(every(frames, step))]
    indices = list(range(0, len(truth), step))[:len(tracked)]
    alerts = run_policy(tracked, fps / step, default_policy())
    # Alerts name processed frames; score them against the source frames' truth.
    sub_truth = [truth[i] for i in indices]
    return Run(tracked, alerts, score_alerts(alerts, sub_truth, expected), indices)
