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

"""ONNX Runtime backend: CPU by default, CUDA or TensorRT execution providers when present."""

from __future__ import annotations

import os
from typing import List, Sequence

import numpy as np

from vehicle_detection.core.detection.backends.base import (
    Backend, BackendUnavailable, INPUT_DTYPES, ModelLoadError, widen_half)

try:
    import onnxruntime as ort
except ImportError:  # pragma: no cover - onnxruntime is a runtime dependency
    ort = None

GPU_PROVIDERS = ('TensorrtExecutionProvider', 'CUDAExecutionProvider')
DEFAULT_SIZE = 640


def choose_providers(available: Sequence[str], use_gpu: bool) -> List[str]:
    """Return the providers to ask for, best first, always ending with the CPU."""
    chosen = [p for p in GPU_PROVIDERS if use_gpu and p in available]
    return [*chosen, 'CPUExecutionProvider']


def _dimension(value: object) -> int:
    return value if isinstance(value, int) and value > 0 else DEFAULT_SIZE


def auto_threads() -> int:
    """
    Return the intra-op thread count used when none is set: half the cores.

    The other half stays with the camera, DDS and the pre/post-processing that
    run beside inference; on a 2-core box one inference thread gives twice the
    pipeline throughput of two (bench/detector.py).
    """
    return max(1, (os.cpu_count() or 2) // 2)


class OnnxRuntimeBackend(Backend):
    """An ``onnxruntime.InferenceSession`` over the model file."""

    name = 'onnxruntime'

    def __init__(self, model_path: str, threads: int = 0, use_gpu: bool = True) -> None:
        """Load ``model_path``; ``threads`` 0 picks :func:`auto_threads`."""
        if ort is None:
            raise BackendUnavailable('onnxruntime is not installed: pip install onnxruntime '
                                     '(or onnxruntime-gpu on a CUDA machine)')
        if not os.path.isfile(model_path):
            raise ModelLoadError(f'model file {model_path} does not exist')
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads if threads > 0 else auto_threads()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle intra-op threads would spin for work, stealing the cores the camera
        # and DDS need on a small edge box (bench/detector.py: +35% fps without).
        options.add_session_config_entry('session.intra_op.allow_spinning', '0')
        providers = choose_providers(ort.get_available_providers(), use_gpu)
        try:
            self._session = ort.InferenceSession(model_path, options, providers=providers)
        except Exception as error:  # onnxruntime raises its own untyped errors
            reason = str(error).splitlines()[0][:300]
            raise ModelLoadError(f'cannot load {model_path} as an ONNX model: {reason}') from error
        inputs = self._session.get_inputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4:
            shapes = [i.shape for i in inputs]
            raise ModelLoadError(f'{model_path}: expected one image input of rank 4 (NCHW), '
                                 f'got inputs with shapes {shapes}')
        if inputs[0].type not in INPUT_DTYPES:
            raise ModelLoadError(f'{model_path}: input {inputs[0].name!r} is {inputs[0].type}; '
                                 'supported: ' + ', '.join(INPUT_DTYPES))
        self.input_dtype = INPUT_DTYPES[inputs[0].type]
        self._input_name = inputs[0].name
        shape = inputs[0].shape
        self.input_hw = (_dimension(shape[2]), _dimension(shape[3]))
        self.metadata = dict(self._session.get_modelmeta().custom_metadata_map)
        self.detail = ','.join(self._session.get_providers())

    def infer(self, tensor: np.ndarray) -> List[np.ndarray]:
        """Run one batch."""
        feed = {self._input_name: tensor.astype(self.input_dtype, copy=False)}
        return widen_half(self._session.run(None, feed))
