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

"""The real YOLOX-Nano COCO model on the real photos, and tracking through it."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from vehicle_detection.core.detection.detector import Detector, DetectorSettings
from vehicle_detection.core.detection.tracker import iou_matrix

MOTORCYCLE_BOX = [110, 65, 710, 445]  # README-data.md


@pytest.fixture(scope='module')
def untracked(request) -> Detector:
    from conftest import MODEL, require_asset
    return Detector(DetectorSettings(str(require_asset(MODEL)), tracking=False))


def test_motorcycle(untracked: Detector, samples_dir: Path) -> None:
    found, timing = untracked.detect(cv2.imread(str(samples_dir / 'motorcycle.png')))
    assert untracked.layout == 'yolox' and untracked.backend.name == 'onnxruntime'
    assert found.class_names == ['motorcycle']
    assert found.scores[0] > 0.8
    iou = iou_matrix(found.boxes, np.array([MOTORCYCLE_BOX], np.float32))[0, 0]
    assert iou >= 0.85, f'IoU {iou:.3f} with {MOTORCYCLE_BOX}: box {found.boxes[0]}'
    assert timing.inference_ms > 0


def test_bicycle_and_truck_dog_filtered(untracked: Detector, samples_dir: Path) -> None:
    image = cv2.imread(str(samples_dir / 'street_dog_bicycle_truck.jpg'))
    found, _ = untracked.detect(image)
    assert sorted(found.class_names) == ['bicycle', 'car']  # YOLOX-Nano calls the truck a car
    assert (found.scores > 0.7).all()
    truck = found.boxes[found.class_names.index('car')]
    assert truck[0] > 400 and truck[3] < 250  # upper right of the photo
    everything = Detector(DetectorSettings(untracked.settings.model_path, tracking=False,
                                           classes=()))
    assert 'dog' in everything.detect(image)[0].class_names  # the model sees it; we filter


def test_tracking_shifted_crops_keeps_one_id_per_vehicle(untracked: Detector,
                                                         samples_dir: Path) -> None:
    image = cv2.imread(str(samples_dir / 'street_dog_bicycle_truck.jpg'))
    truth, _ = untracked.detect(image)  # the bicycle and the truck in the whole photo
    detector = Detector(DetectorSettings(untracked.settings.model_path, tracking=True))
    ids: list = [set() for _ in range(len(truth))]
    seen = [0] * len(truth)
    for step in range(12):  # the camera pans 8 px per frame: the vehicles move left
        dx, dy = step * 8, 40
        found, _ = detector.detect(np.ascontiguousarray(image[dy:560, dx:dx + 640]))
        expected = truth.boxes - np.array([dx, dy, dx, dy], np.float32)
        overlap = iou_matrix(expected, found.boxes)
        for vehicle, row in enumerate(overlap):
            if row.size and row.max() >= 0.5:
                seen[vehicle] += 1
                ids[vehicle].add(int(found.track_ids[row.argmax()]))
    assert seen == [12, 12], f'vehicles found in {seen} of 12 frames'
    assert all(len(vehicle_ids) == 1 for vehicle_ids in ids), ids
    assert ids[0] != ids[1]
