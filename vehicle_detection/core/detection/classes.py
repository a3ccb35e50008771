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

"""Class names: from the model's metadata, else COCO-80, else a labels file."""

from __future__ import annotations

import ast
import json
from typing import List, Mapping, Optional, Sequence

import numpy as np

from vehicle_detection.core.detection.backends.base import ModelLoadError

COCO80 = (
    'person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus', 'train', 'truck', 'boat',
    'traffic light', 'fire hydrant', 'stop sign', 'parking meter', 'bench', 'bird', 'cat',
    'dog', 'horse', 'sheep', 'cow', 'elephant', 'bear', 'zebra', 'giraffe', 'backpack',
    'umbrella', 'handbag', 'tie', 'suitcase', 'frisbee', 'skis', 'snowboard', 'sports ball',
    'kite', 'baseball bat', 'baseball glove', 'skateboard', 'surfboard', 'tennis racket',
    'bottle', 'wine glass', 'cup', 'fork', 'knife', 'spoon', 'bowl', 'banana', 'apple',
    'sandwich', 'orange', 'broccoli', 'carrot', 'hot dog', 'pizza', 'donut', 'cake', 'chair',
    'couch', 'potted plant', 'bed', 'dining table', 'toilet', 'tv', 'laptop', 'mouse',
    'remote', 'keyboard', 'cell phone', 'microwave', 'oven', 'toaster', 'sink',
    'refrigerator', 'book', 'clock', 'vase', 'scissors', 'teddy bear', 'hair drier',
    'toothbrush')
VEHICLE_CLASSES = ('car', 'truck', 'bus', 'motorcycle', 'bicycle')


class LabelsError(ModelLoadError, ValueError):
    """Class names cannot be determined; the message says what to provide."""


def names_from_metadata(metadata: Mapping[str, str]) -> Optional[List[str]]:
    """Read ``names`` (Ultralytics: a dict literal; others: a JSON list) from metadata."""
    raw = metadata.get('names') or metadata.get('classes') or metadata.get('labels')
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            return None
    if isinstance(value, dict):
        try:
            return [str(value[k]) for k in sorted(value, key=int)]
        except (TypeError, ValueError):
            return None
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    return None


def read_labels_file(path: str) -> List[str]:
    """One class name per line; blank lines and ``#`` comments are skipped."""
    try:
        with open(path, encoding='utf-8') as stream:
            lines = [line.strip() for line in stream]
    except OSError as error:
        raise LabelsError(f'cannot read labels_file {path}: {error.strerror}') from error
    names = [line for line in lines if line and not line.startswith('#')]
    if not names:
        raise LabelsError(f'labels_file {path} holds no class names')
    return names


def resolve_names(metadata: Mapping[str, str], num_classes: Optional[int],
                  labels_file: str = '') -> List[str]:
    """Pick the class names: labels file if given, else metadata, else COCO-80."""
    if labels_file:
        names = read_labels_file(labels_file)
    else:
        names = names_from_metadata(metadata) or []
        if not names and (num_classes is None or num_classes == len(COCO80)):
            names = list(COCO80)
    if not names:
        raise LabelsError(f'the model has {num_classes} classes and no names in its metadata; '
                          'give a labels_file with one name per line')
    if num_classes is not None and len(names) < num_classes:
        raise LabelsError(f'{len(names)} class names for a model with {num_classes} classes')
    return names


def class_mask(names: Sequence[str], wanted: Sequence[str]) -> Optional[np.ndarray]:
    """Boolean mask over class ids of the ``wanted`` names (empty: every class)."""
    if not wanted:
        return None
    unknown = sorted(set(wanted) - set(names))
    if unknown:
        raise LabelsError(f'unknown classes {unknown}; the model knows {list(names)[:12]}...')
    wanted_set = set(wanted)
    return np.array([name in wanted_set for name in names], dtype=bool)
