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

"""The detector: backend + letterbox + layout decoding + class filter + tracking."""

from __future__ import annotations

from dataclasses import dataclass, replace
import threading
import time
from typing import List, Optional, Tuple

import numpy as np

from vehicle_detection.core.detection.backends.base import Backend, ModelLoadError
from vehicle_detection.core.detection.backends.factory import BackendSettings, create_backend
from vehicle_detection.core.detection.classes import class_mask, resolve_names
from vehicle_detection.core.detection.decoders import decode, detect_layout, LayoutError, LAYOUTS
from vehicle_detection.core.detection.detections import Detections
from vehicle_detection.core.detection.node_config import DetectorSettings
from vehicle_detection.core.detection.preprocess import InputFormat, Letterbox, letterbox
from vehicle_detection.core.detection.tracker import ByteTracker
from vehicle_detection.core.params import slice_of

__all__ = ['Detector', 'DetectorSettings', 'Timing']

# YOLOX wants BGR 0..255 at the top left; Ultralytics-style models RGB 0..1, centred.
INPUT_FORMATS = {
    'yolox': InputFormat(center=False, rgb=False, scale=1.0),
    'yolov5': InputFormat(center=True, rgb=True, scale=1.0 / 255.0),
    'yolov8': InputFormat(center=True, rgb=True, scale=1.0 / 255.0),
    'end2end': InputFormat(center=True, rgb=True, scale=1.0 / 255.0),
}


def input_format(layout: str, dtype: np.dtype) -> InputFormat:
    """
    Return how to prepare the input of a ``layout`` model whose input is ``dtype``.

    A uint8 input takes raw 0..255 pixels (the model normalises inside), so the
    family's 1/255 scale is dropped; float16 and float32 keep it.
    """
    family = INPUT_FORMATS[layout]
    return replace(family, dtype=np.dtype(dtype),
                   scale=1.0 if np.dtype(dtype) == np.uint8 else family.scale)


@dataclass(frozen=True)
class Prepared:
    """The network input of one frame, waiting for :meth:`Detector.infer`."""

    tensor: np.ndarray
    transform: Letterbox
    preprocess_ms: float


@dataclass(frozen=True)
class Inferred:
    """Raw outputs of one frame, waiting for :meth:`Detector.finish`."""

    outputs: List[np.ndarray]
    transform: Letterbox
    preprocess_ms: float
    inference_ms: float


@dataclass(frozen=True)
class Timing:
    """Milliseconds spent per stage of one frame."""

    preprocess_ms: float
    inference_ms: float
    postprocess_ms: float


class Detector:
    """Loads a model once, then detects (and tracks) vehicles frame by frame."""

    def __init__(self, settings: DetectorSettings,
                 backend: Optional[Backend] = None) -> None:
        self.settings = settings
        self.warnings: List[str] = []
        if backend is None:
            # DetectorSettings holds every BackendSettings field under the same name.
            backend, self.warnings = create_backend(slice_of(BackendSettings, settings),
                                                    preprocess=self._calibration_tensor)
        self.backend = backend
        self.input_hw = backend.input_hw
        self.layout, outputs = self._probe_layout(settings.model_type)
        self.format = input_format(self.layout, backend.input_dtype)
        self.names = resolve_names(backend.metadata, self._class_count(outputs),
                                   settings.labels_file)
        self._mask = class_mask(self.names, list(settings.classes))
        self._lock = threading.Lock()
        self.confidence = settings.confidence_threshold
        self.iou = settings.nms_iou_threshold
        self.tracker: Optional[ByteTracker] = (
            ByteTracker(high_threshold=max(self.confidence, 0.1),
                        new_track_threshold=max(self.confidence, 0.1))
            if settings.tracking else None)

    def describe(self) -> str:
        """One line for logs and checks: layout, input type and size, backend."""
        height, width = self.input_hw
        return (f'{self.layout} layout, {self.backend.input_dtype} input {width}x{height}, '
                f'{self.backend.name} ({self.backend.detail})')

    def _calibration_tensor(self, image: np.ndarray) -> np.ndarray:
        return letterbox(image, self.backend.input_hw, self.format)[0]

    def _probe_layout(self, model_type: str):
        """Run one blank frame: warms the backend up and reveals the output shapes."""
        blank = np.zeros((1, 3, *self.input_hw), self.backend.input_dtype)
        try:
            outputs = self.backend.infer(blank)
        except Exception as error:  # backends raise their own runtime errors
            raise ModelLoadError(f'{self.settings.model_path}: inference on a blank '
                                 f'{self.input_hw[0]}x{self.input_hw[1]} input failed: '
                                 f'{error}') from error
        if model_type != 'auto':
            if model_type not in LAYOUTS:
                raise LayoutError(f'model_type {model_type!r} is not auto or one of '
                                  + ', '.join(LAYOUTS))
            return model_type, outputs
        return detect_layout([o.shape for o in outputs], self.input_hw), outputs

    def _class_count(self, outputs: List[np.ndarray]) -> Optional[int]:
        shape = outputs[0].shape
        if self.layout in ('yolox', 'yolov5'):
            return int(shape[-1]) - 5
        if self.layout == 'yolov8':
            return int(shape[1]) - 4
        return None

    def set_thresholds(self, confidence: float, iou: float) -> None:
        """Change the thresholds between frames (thread-safe)."""
        with self._lock:
            self.confidence, self.iou = confidence, iou
            if self.tracker is not None:
                self.tracker.high_threshold = max(confidence, 0.1)
                self.tracker.new_track_threshold = max(confidence, 0.1)

    def detect(self, image: np.ndarray,
               stamp: Optional[float] = None) -> Tuple[Detections, Timing]:
        """Return (Detections in source pixels, Timing) for one BGR frame taken at ``stamp``."""
        return self.finish(self.infer(self.prepare(image)), stamp)

    # detect() in three stages, so that a caller can run them on separate
    # threads: prepare the next frame and post-process the previous one while
    # a frame is inferred. Stages may overlap; call finish() in frame order.
    def prepare(self, image: np.ndarray) -> Prepared:
        """Letterbox one BGR frame into the network input."""
        start = time.perf_counter()
        tensor, transform = letterbox(image, self.input_hw, self.format)
        return Prepared(tensor, transform, (time.perf_counter() - start) * 1e3)

    def infer(self, prepared: Prepared) -> Inferred:
        """Run the network on a prepared frame."""
        start = time.perf_counter()
        outputs = self.backend.infer(prepared.tensor)
        return Inferred(outputs, prepared.transform, prepared.preprocess_ms,
                        (time.perf_counter() - start) * 1e3)

    def finish(self, inferred: Inferred,
               stamp: Optional[float] = None) -> Tuple[Detections, Timing]:
        """Decode, track and filter the outputs of :meth:`infer` (``stamp``: seconds)."""
        with self._lock:
            confidence, iou = self.confidence, self.iou
        start = time.perf_counter()
        floor = min(confidence, self.tracker.low_threshold) if self.tracker else confidence
        found = decode(inferred.outputs, self.layout, self.input_hw, floor, iou, self._mask,
                       self.settings.class_agnostic_nms)
        boxes = inferred.transform.to_source(found.boxes)
        detections = Detections(boxes, found.scores, found.class_ids,
                                [self.names[i] if i < len(self.names) else f'class_{i}'
                                 for i in found.class_ids.tolist()],
                                np.full(len(found.scores), -1, np.int64))
        if self.tracker is not None:
            # Low-score boxes keep tracks alive (ByteTrack) but are not reported.
            source = inferred.transform
            detections = self.tracker.update(
                detections, (source.src_width, source.src_height), stamp)
        detections = detections.select(detections.scores >= confidence)
        done = time.perf_counter()
        return detections, Timing(inferred.preprocess_ms, inferred.inference_ms,
                                  (done - start) * 1e3)

    def close(self) -> None:
        """Release the backend."""
        self.backend.close()
