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
from typing import Dict, List, Tuple

import numpy as np


class ModelLoadError(RuntimeError):
    """The model cannot be loaded; the message names the file and the reason."""


class BackendUnavailable(RuntimeError):
    """The backend's libraries are not installed here; the message says what to install."""


class Backend(ABC):
    """Runs a detector model on a prepared NCHW float32 tensor."""

    #: short name reported on /diagnostics ("onnxruntime", "tensorrt")
    name: str = ''
    #: (height, width) the model expects
    input_hw: Tuple[int, int] = (640, 640)
    #: the model's custom metadata (class names live here for Ultralytics exports)
    metadata: Dict[str, str] = {}
    #: extra detail for diagnostics, e.g. execution providers or precision
    detail: str = ''

    @abstractmethod
    def infer(self, tensor: np.ndarray) -> List[np.ndarray]:
        """Run the model and return its outputs in the model's output order."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (GPU memory, sessions)."""
