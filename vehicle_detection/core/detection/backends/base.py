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

"""The one small interface every inference backend implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Dict, List, Sequence, Tuple

import numpy as np

#: input element types a backend can feed, by the name ONNX Runtime reports
INPUT_DTYPES: Dict[str, np.dtype] = {
    'tensor(float)': np.dtype(np.float32), 'tensor(float16)': np.dtype(np.float16),
    'tensor(uint8)': np.dtype(np.uint8)}


class ModelLoadError(RuntimeError):
    """
    The detector cannot be made ready; the message names the file and the reason.

    The one error type of loading a model: its subclasses tell a missing
    backend (:class:`BackendUnavailable`), outputs of no known layout
    (``LayoutError``) and class names that cannot be found (``LabelsError``).
    """


class BackendUnavailable(ModelLoadError):
    """The backend's libraries are not installed here; the message says what to install."""


def widen_half(outputs: Sequence[np.ndarray]) -> List[np.ndarray]:
    """Return ``outputs`` with float16 arrays widened to float32 (decoding works in float32)."""
    return [out.astype(np.float32) if out.dtype == np.float16 else out for out in outputs]


class Backend(ABC):
    """Runs a detector model on a prepared NCHW tensor of :attr:`input_dtype`."""

    #: short name reported on /diagnostics ("onnxruntime", "tensorrt")
    name: str = ''
    #: (height, width) the model expects
    input_hw: Tuple[int, int] = (640, 640)
    #: the model's custom metadata (class names live here for Ultralytics exports)
    metadata: Dict[str, str] = {}
    #: element type of the model's input (float32, float16 or uint8 raw pixels)
    input_dtype: np.dtype = np.dtype(np.float32)
    #: extra detail for diagnostics, e.g. execution providers or precision
    detail: str = ''

    @abstractmethod
    def infer(self, tensor: np.ndarray) -> List[np.ndarray]:
        """
        Run the model and return its outputs in the model's output order.

        The tensor is cast to :attr:`input_dtype` when it is not in it already;
        float16 outputs come back as float32.
        """

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (GPU memory, sessions)."""
