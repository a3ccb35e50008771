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
TensorRT backend (TensorRT 10 Python API, pycuda for device memory and the stream).

Builds an engine from the ONNX file (FP16 by default, FP32, or INT8 with a
calibration cache made from a folder of images), caches it under a key of
model hash, TensorRT version, GPU name and precision, and reloads it when the
key matches. Imports are guarded: without TensorRT or pycuda,
:class:`BackendUnavailable` says what to install.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Callable, List, Optional

import numpy as np

from vehicle_detection.core.atomic_files import write_atomically
from vehicle_detection.core.detection.backends.base import (
    Backend, BackendUnavailable, ModelLoadError, widen_half)
from vehicle_detection.core.detection.backends.engine_cache import (
    engine_key, engine_path, file_digest)

LOG = logging.getLogger(__name__)
INSTALL_HINT = ('TensorRT backend needs the tensorrt and pycuda Python packages: on Jetson '
                'they come with JetPack (apt install python3-libnvinfer; pip install pycuda); '
                'on x86 with an NVIDIA GPU: pip install "vehicle_detection[gpu]" '
                '(tensorrt-cu12 and pycuda, which builds against the CUDA toolkit)')


def import_tensorrt():
    """Import tensorrt and pycuda, or raise BackendUnavailable with the install hint."""
    try:
        import pycuda.driver as cuda
        import tensorrt as trt
    except ImportError as error:
        raise BackendUnavailable(f'{INSTALL_HINT} ({error})') from error
    return trt, cuda


class TensorRTBackend(Backend):
    """A TensorRT engine with pinned host buffers, device buffers and one CUDA stream."""

    name = 'tensorrt'

    def __init__(self, model_path: str, precision: str = 'fp16', cache_dir: str = '~/.cache/'
                 'vehicle_detection/engines', calibration_images: str = '',
                 preprocess: Optional[Callable[[np.ndarray], np.ndarray]] = None) -> None:
        trt, cuda = import_tensorrt()
        if not os.path.isfile(model_path):
            raise ModelLoadError(f'model file {model_path} does not exist')
        cuda.init()
        self._cuda = cuda
        self._context_gpu = cuda.Device(0).make_context()
        try:
            gpu_name = cuda.Device(0).name()
            key = engine_key(file_digest(model_path), trt.__version__, gpu_name, precision)
            path = engine_path(cache_dir, model_path, key, precision)
            self._logger = trt.Logger(trt.Logger.WARNING)
            engine_bytes = path.read_bytes() if path.is_file() else None
            if engine_bytes is None:
                LOG.warning('building a %s TensorRT engine for %s on %s (minutes on a Jetson)',
                            precision, model_path, gpu_name)
                engine_bytes = self._build(trt, model_path, precision, calibration_images,
                                           preprocess, path)
                write_atomically(path, engine_bytes)
            runtime = trt.Runtime(self._logger)
            self._engine = runtime.deserialize_cuda_engine(engine_bytes)
            if self._engine is None:
                raise ModelLoadError(f'cached engine {path} does not load; delete it to rebuild')
            self._allocate(trt)
            self.detail = f'{precision} on {gpu_name}, engine {path.name}'
        finally:
            self._context_gpu.pop()

    def _build(self, trt, model_path: str, precision: str, calibration_images: str,
               preprocess, path: Path) -> bytes:
        builder = trt.Builder(self._logger)
        network = builder.create_network(0)  # explicit batch is the only mode in TRT 10
        parser = trt.OnnxParser(network, self._logger)
        with open(model_path, 'rb') as stream:
            if not parser.parse(stream.read()):
                errors = '; '.join(str(parser.get_error(i)) for i in range(parser.num_errors))
                raise ModelLoadError(f'TensorRT cannot parse {model_path}: {errors}')
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, 1 << 30)
        if precision in ('fp16', 'int8'):
            config.set_flag(trt.BuilderFlag.FP16)
        if precision == 'int8':
            from vehicle_detection.core.detection.backends.tensorrt_calibrator import (
                make_calibrator)
            config.set_flag(trt.BuilderFlag.INT8)
            shape = tuple(network.get_input(0).shape)
            config.int8_calibrator = make_calibrator(
                trt, self._cuda, calibration_images, shape, preprocess,
                str(path.with_suffix('.calib')))
        serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            raise ModelLoadError(f'TensorRT failed to build an engine for {model_path}')
        return bytes(serialized)

    def _allocate(self, trt) -> None:
        cuda = self._cuda
        self._stream = cuda.Stream()
        self._context = self._engine.create_execution_context()
        self._inputs: List[tuple] = []
        self._outputs: List[tuple] = []
        for index in range(self._engine.num_io_tensors):
            name = self._engine.get_tensor_name(index)
            shape = tuple(self._engine.get_tensor_shape(name))
            dtype = trt.nptype(self._engine.get_tensor_dtype(name))
            host = cuda.pagelocked_empty(shape, dtype)
            device = cuda.mem_alloc(host.nbytes)
            self._context.set_tensor_address(name, int(device))
            if self._engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
                self._inputs.append((name, host, device))
                self.input_hw = (int(shape[2]), int(shape[3]))
                self.input_dtype = np.dtype(dtype)
            else:
                self._outputs.append((name, host, device))

    def infer(self, tensor: np.ndarray) -> List[np.ndarray]:
        """Copy in, run asynchronously on the stream, copy out, synchronise."""
        cuda = self._cuda
        self._context_gpu.push()
        try:
            _, host, device = self._inputs[0]
            # 'unsafe' only allows float -> uint8: the detector prepares raw 0..255
            # pixels for a uint8 input, so nothing is cut.
            np.copyto(host, tensor.reshape(host.shape), casting='unsafe')
            cuda.memcpy_htod_async(device, host, self._stream)
            self._context.execute_async_v3(stream_handle=self._stream.handle)
            for _, out_host, out_device in self._outputs:
                cuda.memcpy_dtoh_async(out_host, out_device, self._stream)
            self._stream.synchronize()
            return widen_half([out_host.copy() for _, out_host, _ in self._outputs])
        finally:
            self._context_gpu.pop()

    def close(self) -> None:
        """Release the CUDA context."""
        self._context_gpu.detach()
