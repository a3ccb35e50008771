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

"""Choose and create a backend: ``auto`` prefers TensorRT on a GPU, else ONNX Runtime."""

from __future__ import annotations

from dataclasses import dataclass
import glob
import importlib.util
from typing import Callable, List, Optional, Tuple

import numpy as np

from vehicle_detection.core.detection.backends.base import Backend, BackendUnavailable

BACKENDS = ('auto', 'tensorrt', 'onnxruntime')


def gpu_present() -> bool:
    """Tell whether an NVIDIA GPU device node exists (desktop GPU or Jetson iGPU)."""
    return bool(glob.glob('/dev/nvidia[0-9]*') or glob.glob('/dev/nvhost-ctrl-gpu'))


def tensorrt_importable() -> bool:
    """Tell whether tensorrt and pycuda can be imported (without importing them)."""
    return all(importlib.util.find_spec(name) is not None for name in ('tensorrt', 'pycuda'))


def choose_backend(requested: str, trt_available: bool, gpu: bool) -> Tuple[str, Optional[str]]:
    """Return (backend name, warning or None) for a ``backend`` parameter value."""
    if requested not in BACKENDS:
        raise ValueError(f'backend {requested!r} is not one of {", ".join(BACKENDS)}')
    if requested != 'auto':
        return requested, None
    if trt_available and gpu:
        return 'tensorrt', None
    if not trt_available:
        return 'onnxruntime', ('TensorRT is not installed (tensorrt and pycuda); '
                               'backend auto uses ONNX Runtime')
    return 'onnxruntime', 'no NVIDIA GPU found; backend auto uses ONNX Runtime'


@dataclass(frozen=True)
class BackendSettings:
    """What the backends need to know: a slice of ``DetectorSettings`` (``params.slice_of``)."""

    model_path: str
    backend: str
    precision: str
    engine_cache_dir: str
    calibration_images: str
    threads: int


def create_backend(settings: BackendSettings,
                   preprocess: Optional[Callable[[np.ndarray], np.ndarray]] = None,
                   trt_available: Optional[bool] = None, gpu: Optional[bool] = None
                   ) -> Tuple[Backend, List[str]]:
    """
    Create the backend for ``settings``; return it with any warnings to log.

    With ``auto``, a TensorRT failure to import falls back to ONNX Runtime with
    a warning; an explicit ``tensorrt`` raises :class:`BackendUnavailable`.
    """
    trt_ok = tensorrt_importable() if trt_available is None else trt_available
    has_gpu = gpu_present() if gpu is None else gpu
    name, warning = choose_backend(settings.backend, trt_ok, has_gpu)
    warnings = [warning] if warning else []
    if name == 'tensorrt':
        from vehicle_detection.core.detection.backends.tensorrt_backend import TensorRTBackend
        try:
            return TensorRTBackend(settings.model_path, settings.precision,
                                   settings.engine_cache_dir, settings.calibration_images,
                                   preprocess), warnings
        except BackendUnavailable as error:
            if settings.backend != 'auto':
                raise
            warnings.append(f'{error}; backend auto falls back to ONNX Runtime')
    from vehicle_detection.core.detection.backends.onnxruntime_backend import (
        OnnxRuntimeBackend)
    return OnnxRuntimeBackend(settings.model_path, settings.threads), warnings
