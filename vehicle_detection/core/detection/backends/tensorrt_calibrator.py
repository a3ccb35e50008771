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

"""INT8 calibration for TensorRT from a folder of images (entropy calibrator, cached)."""

from __future__ import annotations

import os
from typing import Callable, List, Tuple

import cv2
import numpy as np

from vehicle_detection.core.camera.sources import IMAGE_EXTENSIONS, natural_key
from vehicle_detection.core.detection.backends.base import ModelLoadError


def calibration_files(folder: str, limit: int = 500) -> List[str]:
    """Return the images used for calibration (natural order, at most ``limit``)."""
    if not os.path.isdir(folder):
        raise ModelLoadError(f'INT8 needs calibration images: folder {folder!r} does not exist')
    names = sorted((n for n in os.listdir(folder)
                    if os.path.splitext(n)[1].lower() in IMAGE_EXTENSIONS), key=natural_key)
    if not names:
        raise ModelLoadError(f'INT8 calibration folder {folder} holds no images')
    return [os.path.join(folder, n) for n in names[:limit]]


def make_calibrator(trt, cuda, folder: str, shape: Tuple[int, ...],
                    preprocess: Callable[[np.ndarray], np.ndarray], cache_file: str):
    """Build an ``IInt8EntropyCalibrator2`` feeding pre-processed images one by one."""
    files = calibration_files(folder) if not os.path.isfile(cache_file) else []

    class Calibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            super().__init__()
            self._files = list(files)
            self._device = cuda.mem_alloc(int(np.prod(shape)) * 4)

        def get_batch_size(self) -> int:
            return 1

        def get_batch(self, names):  # TensorRT's signature; one input, names unused
            while self._files:
                image = cv2.imread(self._files.pop(0), cv2.IMREAD_COLOR)
                if image is not None:
                    cuda.memcpy_htod(self._device, np.ascontiguousarray(preprocess(image)))
                    return [int(self._device)]
            return None

        def read_calibration_cache(self):
            if os.path.isfile(cache_file):
                with open(cache_file, 'rb') as stream:
                    return stream.read()
            return None

        def write_calibration_cache(self, cache) -> None:
            with open(cache_file, 'wb') as stream:
                stream.write(bytes(cache))

    return Calibrator()
