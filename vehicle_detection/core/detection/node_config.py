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

"""The detector node's parameters, and the detector's settings: a slice of them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Mapping, Optional, Sequence

from vehicle_detection.core.detection.backends.engine_cache import PRECISIONS
from vehicle_detection.core.detection.backends.factory import BACKENDS
from vehicle_detection.core.detection.classes import VEHICLE_CLASSES
from vehicle_detection.core.detection.decoders import LAYOUTS
from vehicle_detection.core.params import from_spec, IMAGE_RELIABILITY, setting, specs_of

# Changing one of these reloads the model (in the worker thread, never the executor).
MODEL_PARAMS = ('model_path', 'backend', 'model_type', 'precision', 'engine_cache_dir',
                'calibration_images', 'labels_file', 'classes', 'class_agnostic_nms',
                'tracking', 'threads')


def _not_empty(value: str) -> Optional[str]:
    return None if value else 'must not be empty'


@dataclass(frozen=True)
class DetectorNodeSettings:
    """The detector node's parameters, typed: one field per parameter."""

    model_path: str = setting('', 'ONNX detector model (YOLOX, YOLOv5, YOLOv8/11 or end-to-end '
                              'with NMS inside). Empty or missing: activation fails, the node '
                              'stays inactive and says why on /diagnostics.')
    backend: str = setting('auto', 'Inference backend; auto uses TensorRT when it imports and a '
                           'GPU is present, else ONNX Runtime.',
                           choices=BACKENDS)
    model_type: str = setting('auto', 'Output layout; auto detects it from the output shapes.',
                              choices=('auto', *LAYOUTS))
    precision: str = setting('fp16', 'TensorRT engine precision.',
                             choices=PRECISIONS)
    engine_cache_dir: str = setting('~/.cache/vehicle_detection/engines', 'Folder of cached '
                                    'TensorRT engines (keyed by TensorRT, GPU, precision, '
                                    'model).')
    calibration_images: str = setting('', 'Folder of images for INT8 calibration.')
    labels_file: str = setting('', 'Class names, one per line; overrides the model metadata.')
    classes: List[str] = setting(list(VEHICLE_CLASSES), 'Class names to report; empty '
                                 'reports all.')
    confidence_threshold: float = setting(0.35, 'Minimum score of a reported detection '
                                          '(changeable while running).', minimum=0.0, maximum=1.0)
    nms_iou_threshold: float = setting(0.45, 'IoU above which overlapping boxes are merged '
                                       '(changeable while running).', minimum=0.0, maximum=1.0)
    class_agnostic_nms: bool = setting(True, 'Merge overlapping boxes of different classes (one '
                                       'vehicle scored as car and truck is one detection).')
    tracking: bool = setting(True, 'Track vehicles across frames (track id in Detection2D.id).')
    threads: int = setting(0, 'ONNX Runtime CPU threads; 0 uses half the cores.',
                           minimum=0, maximum=64)
    input_topic: str = setting('camera/image_raw', 'Image topic to detect on (read at start).',
                               read_only=True, check=_not_empty)
    qos_depth: int = setting(1, 'Depth of the sensor-data QoS of the image subscription (read at '
                             'start).', minimum=1, maximum=100, read_only=True)
    image_reliability: str = from_spec(IMAGE_RELIABILITY)
    autostart: bool = setting(True, 'Configure and activate the (lifecycle) node at start; '
                              'false: it waits unconfigured for ros2 lifecycle set (read at '
                              'start).', read_only=True)
    diagnostics_period: float = setting(1.0, 'Seconds between /diagnostics reports (read at '
                                        'start).', minimum=0.1, maximum=60.0, read_only=True)


DETECTOR_PARAMS = specs_of(DetectorNodeSettings)
_NODE = DetectorNodeSettings()  # the defaults of the settings below are the node's


@dataclass(frozen=True)
class DetectorSettings:
    """Everything the detector core is configured with: the node's parameters that shape it."""

    model_path: str
    backend: str = _NODE.backend
    model_type: str = _NODE.model_type
    precision: str = _NODE.precision
    engine_cache_dir: str = _NODE.engine_cache_dir
    calibration_images: str = _NODE.calibration_images
    labels_file: str = _NODE.labels_file
    classes: Sequence[str] = tuple(_NODE.classes)
    confidence_threshold: float = _NODE.confidence_threshold
    nms_iou_threshold: float = _NODE.nms_iou_threshold
    class_agnostic_nms: bool = _NODE.class_agnostic_nms
    tracking: bool = _NODE.tracking
    threads: int = _NODE.threads


def detector_settings(values: Mapping[str, Any]) -> DetectorSettings:
    """Build :class:`DetectorSettings` from (validated) parameter values."""
    names = DetectorSettings.__dataclass_fields__.keys()
    chosen = {k: v for k, v in values.items() if k in names}
    chosen['model_path'] = str(chosen.get('model_path', ''))
    if 'classes' in chosen:
        chosen['classes'] = tuple(chosen['classes'])
    return DetectorSettings(**chosen)
