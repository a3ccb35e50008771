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
Decode any common YOLO output layout into boxes, scores and class ids.

Layouts (network-pixel coordinates unless said):

- ``yolox``: one ``[1, N, 5+C]`` output of raw grid cells, N = sum over
  strides 8, 16, 32 of the grid sizes; ``x, y, log w, log h, objectness, C
  class scores`` (already sigmoid-ed).
- ``yolov5``: one ``[1, N, 5+C]`` output of decoded ``cx, cy, w, h, obj, C``
  (N = 3 anchors times the grid sizes).
- ``yolov8`` (also YOLO11): one ``[1, 4+C, N]`` output of ``cx, cy, w, h, C``.
- ``end2end``: NMS inside the model: one ``[1, K, 6]`` output of ``x1, y1, x2,
  y2, score, class``, or separate boxes ``[1, K, 4]``, scores ``[1, K]`` and
  classes ``[1, K]`` outputs (an optional detection count ``[1, 1]`` is used
  when present).

Everything is vectorised NumPy; class-aware NMS runs in OpenCV's C++.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from vehicle_detection.core.detection.backends.base import ModelLoadError

LAYOUTS = ('yolox', 'yolov5', 'yolov8', 'end2end')
NESTED_CONTAINMENT = 0.85  # share of a box inside a larger one that makes it a part-box
STRIDES = (8, 16, 32)


class LayoutError(ModelLoadError, ValueError):
    """The model's outputs match no supported layout; the message shows the shapes."""


@dataclass
class Candidates:
    """Boxes ``[x1, y1, x2, y2]`` in network pixels with their scores and class ids."""

    boxes: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray


def grid_cells(height: int, width: int) -> int:
    """Return the number of grid cells over the strides for an input size."""
    return sum((height // s) * (width // s) for s in STRIDES)


def detect_layout(shapes: Sequence[Tuple[int, ...]], input_hw: Tuple[int, int]) -> str:
    """Name the layout of outputs with these shapes; raise LayoutError if none fits."""
    cells = grid_cells(*input_hw)
    if len(shapes) >= 3:
        return 'end2end'
    if len(shapes) == 1 and len(shapes[0]) == 3 and shapes[0][0] == 1:
        _, rows, cols = shapes[0]
        if cols in (6, 7) and rows not in (cells, 3 * cells):
            return 'end2end'
        if rows == cells and cols > 5:
            return 'yolox'
        if rows == 3 * cells and cols > 5:
            return 'yolov5'
        if cols == cells and rows > 4:
            return 'yolov8'
        if cols > 5 and rows > cols:
            return 'yolov5'  # decoded rows, anchor count not the usual three
        if rows > 4 and cols > rows:
            return 'yolov8'
    raise LayoutError(f'cannot tell the output layout from shapes {list(shapes)} for input '
                      f'{input_hw[0]}x{input_hw[1]}; set model_type to one of '
                      + ', '.join(LAYOUTS))


@lru_cache(maxsize=8)
def _yolox_grid(height: int, width: int) -> Tuple[np.ndarray, np.ndarray]:
    grids, strides = [], []
    for stride in STRIDES:
        rows, cols = height // stride, width // stride
        ys, xs = np.meshgrid(np.arange(rows), np.arange(cols), indexing='ij')
        grids.append(np.stack((xs, ys), axis=-1).reshape(-1, 2))
        strides.append(np.full((rows * cols, 1), stride))
    return (np.concatenate(grids).astype(np.float32),
            np.concatenate(strides).astype(np.float32))


def _xywh_to_xyxy(xywh: np.ndarray) -> np.ndarray:
    half = xywh[:, 2:4] / 2
    return np.concatenate((xywh[:, :2] - half, xywh[:, :2] + half), axis=1)


def _best_class(scores: np.ndarray, objectness: Optional[np.ndarray]
                ) -> Tuple[np.ndarray, np.ndarray]:
    class_ids = scores.argmax(axis=1)
    best = scores[np.arange(len(scores)), class_ids]
    if objectness is not None:
        best = best * objectness
    return best.astype(np.float32), class_ids


def _dense(outputs: List[np.ndarray], layout: str, input_hw: Tuple[int, int],
           floor: float) -> Tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
    """
    Return (xywh, class scores, objectness or None) rows of a dense layout.

    With an objectness column only rows whose objectness reaches ``floor`` are
    returned: scores are objectness x class probability (both sigmoid outputs
    in [0, 1]), so no other row can reach it. That leaves a few dozen of
    thousands of rows for the per-row work.
    """
    out = outputs[0][0]
    if layout == 'yolov8':
        out = out.T
        return out[:, :4], out[:, 4:], None
    rows = np.flatnonzero(out[:, 4] >= floor)
    if layout == 'yolox':
        grid, stride = _yolox_grid(*input_hw)
        if len(out) != len(grid):
            raise LayoutError(f'yolox output has {len(out)} rows, the grid of a '
                              f'{input_hw[0]}x{input_hw[1]} input has {len(grid)}')
        out, grid, stride = out[rows], grid[rows], stride[rows]
        xy = (out[:, :2] + grid) * stride
        wh = np.exp(np.minimum(out[:, 2:4], 20.0)) * stride
        return np.concatenate((xy, wh), axis=1), out[:, 5:], out[:, 4]
    out = out[rows]
    return out[:, :4], out[:, 5:], out[:, 4]


def _end2end(outputs: List[np.ndarray]) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    if len(outputs) == 1:
        rows = outputs[0].reshape(-1, outputs[0].shape[-1])
        if rows.shape[1] == 7:  # [batch, x1, y1, x2, y2, score, class]
            rows = rows[:, 1:]
        return rows[:, :4], rows[:, 4], rows[:, 5].astype(np.int64)
    count: Optional[int] = None
    arrays = list(outputs)
    small = [a for a in arrays if a.size == 1]
    if small:
        count = int(small[0].reshape(-1)[0])
        arrays = [a for a in arrays if a.size != 1]
    boxes = next((a for a in arrays if a.shape[-1] == 4 and a.ndim >= 2), None)
    rest = [a.reshape(-1) for a in arrays if a is not boxes]
    if boxes is None or len(rest) != 2:
        raise LayoutError('end2end model needs boxes [1,K,4], scores [1,K] and classes [1,K] '
                          f'outputs, got shapes {[a.shape for a in outputs]}')
    boxes = boxes.reshape(-1, 4)
    # Class ids are whole numbers; scores are not (both may be float tensors).
    first, second = rest
    is_int = np.issubdtype(first.dtype, np.integer) or bool(np.all(first == np.round(first)))
    classes, scores = (first, second) if is_int else (second, first)
    if count is not None:
        boxes, scores, classes = boxes[:count], scores[:count], classes[:count]
    return boxes, scores, classes.astype(np.int64)


def _nms(xywh: Any, scores: Any, class_ids: Any, confidence: float, iou: float,
         agnostic: bool) -> np.ndarray:
    """Return the indices kept by OpenCV's NMS (its stubs ask for sequences; arrays work)."""
    if agnostic:
        kept = cv2.dnn.NMSBoxes(xywh, scores, confidence, iou)
    else:
        kept = cv2.dnn.NMSBoxesBatched(xywh, scores, class_ids, confidence, iou)
    return np.asarray(kept, dtype=np.int64)


def nested_mask(boxes: np.ndarray, class_ids: np.ndarray,
                containment: float = NESTED_CONTAINMENT) -> np.ndarray:
    """
    Return a keep-mask that drops part-boxes: boxes lying mostly inside a larger box.

    A box is dropped when at least ``containment`` of its area is inside a
    larger box of the same class (a wheel-and-fork "bicycle" inside the whole
    bicycle; the model's half-vehicle box at a frame edge). Plain NMS keeps such
    pairs because their IoU is low. 0 keeps everything.
    """
    count = len(boxes)
    if containment <= 0 or count < 2:
        return np.ones(count, bool)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    width = np.clip(np.minimum(boxes[:, None, 2], boxes[None, :, 2])
                    - np.maximum(boxes[:, None, 0], boxes[None, :, 0]), 0, None)
    height = np.clip(np.minimum(boxes[:, None, 3], boxes[None, :, 3])
                     - np.maximum(boxes[:, None, 1], boxes[None, :, 1]), 0, None)
    inside = width * height / np.maximum(area[:, None], 1e-6)  # share of box i inside j
    bigger = area[None, :] > area[:, None]
    same = class_ids[:, None] == class_ids[None, :]
    return ~np.any((inside >= containment) & bigger & same, axis=1)


def decode(outputs: List[np.ndarray], layout: str, input_hw: Tuple[int, int],
           confidence: float, iou: float, wanted: Optional[np.ndarray] = None,
           agnostic: bool = False, containment: float = NESTED_CONTAINMENT) -> Candidates:
    """
    Turn raw outputs into final candidates in network pixels.

    ``wanted`` is a boolean mask over class ids (None keeps every class);
    boxes below ``confidence`` or of unwanted classes are dropped before NMS.
    ``agnostic`` NMS lets one box suppress overlapping boxes of any class, so
    a truck also scored as "car" is one vehicle, not two. Part-boxes nested
    in a larger box of their class are dropped after NMS (:func:`nested_mask`).
    """
    if layout == 'end2end':
        boxes, scores, class_ids = _end2end(outputs)
        boxes = boxes.astype(np.float32)
        scores = scores.astype(np.float32)
    else:
        xywh, class_scores, objectness = _dense(outputs, layout, input_hw, confidence)
        scores, class_ids = _best_class(class_scores, objectness)
        keep = scores >= confidence
        boxes = _xywh_to_xyxy(xywh[keep].astype(np.float32))
        scores, class_ids = scores[keep], class_ids[keep]
    keep = scores >= confidence
    if wanted is not None:
        in_range = class_ids < len(wanted)
        keep &= in_range & wanted[np.where(in_range, class_ids, 0)]
    boxes, scores, class_ids = boxes[keep], scores[keep], class_ids[keep]
    if layout != 'end2end' and len(scores):
        xywh = np.concatenate((boxes[:, :2], boxes[:, 2:] - boxes[:, :2]), axis=1)
        index = _nms(xywh, scores, class_ids.astype(np.int32), confidence, iou, agnostic)
        index = index.reshape(-1)
        boxes, scores, class_ids = boxes[index], scores[index], class_ids[index]
    keep = nested_mask(boxes, class_ids, containment)
    boxes, scores, class_ids = boxes[keep], scores[keep], class_ids[keep]
    order = np.argsort(-scores, kind='stable')
    return Candidates(boxes[order], scores[order], class_ids[order])
