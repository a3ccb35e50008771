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

"""Decoding every output layout, letterbox inverse, classes and backend selection."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from onnx_models import constant_model
import pytest

from vehicle_detection.core.atomic_files import write_atomically
from vehicle_detection.core.detection.backends.base import BackendUnavailable, ModelLoadError
from vehicle_detection.core.detection.backends.engine_cache import (
    engine_key, engine_path)
from vehicle_detection.core.detection.backends.factory import (
    BackendSettings, choose_backend, create_backend)
from vehicle_detection.core.detection.backends.onnxruntime_backend import choose_providers
from vehicle_detection.core.detection.classes import (
    class_mask, LabelsError, names_from_metadata, resolve_names)
from vehicle_detection.core.detection.decoders import detect_layout, grid_cells, LayoutError
from vehicle_detection.core.detection.detector import Detector, DetectorSettings, INPUT_FORMATS
from vehicle_detection.core.detection.preprocess import InputFormat, letterbox
from vehicle_detection.core.params import slice_of

SOURCE = np.zeros((64, 128, 3), np.uint8)  # 128 wide, 64 high: letterboxed into 64x64
CELLS = grid_cells(64, 64)  # 84


def backend_settings(model: str, **changes: str) -> BackendSettings:
    """Return the backend's slice of the detector's settings (its defaults are the node's)."""
    return slice_of(BackendSettings, DetectorSettings(model, **changes))


def detector(path: Path, **kwargs) -> Detector:
    """Create an untracked ONNX Runtime detector keeping every class."""
    settings = {'backend': 'onnxruntime', 'tracking': False, 'classes': (),
                'confidence_threshold': 0.3}
    settings.update(kwargs)
    return Detector(DetectorSettings(str(path), **settings))


def test_yolox_raw_grid(tmp_path: Path) -> None:
    out = np.zeros((1, CELLS, 85), np.float32)
    row = 2 * 8 + 3  # stride-8 cell gx=3, gy=2
    out[0, row, :5] = [0.5, 0.5, math.log(2), math.log(3), 0.9]
    out[0, row, 5 + 2] = 0.8  # car
    det = detector(constant_model(tmp_path / 'yolox.onnx', {'output': out}))
    assert det.layout == 'yolox'
    found, _ = det.detect(SOURCE)
    # net box (20, 8, 36, 32); scale 0.5, top-left placement: source = net / 0.5
    np.testing.assert_allclose(found.boxes, [[40, 16, 72, 64]], atol=1e-4)
    assert found.class_names == ['car'] and found.scores[0] == pytest.approx(0.72)


def test_yolov5_decoded_rows_with_centred_letterbox(tmp_path: Path) -> None:
    out = np.zeros((1, 3 * CELLS, 85), np.float32)
    out[0, 5, :5] = [32, 32, 16, 8, 0.9]
    out[0, 5, 5 + 7] = 0.9  # truck
    out[0, 6, :5] = [33, 32, 16, 8, 0.8]  # duplicate of the same truck: removed by NMS
    out[0, 6, 5 + 7] = 0.9
    out[0, 7, :5] = [33, 32, 16, 8, 0.8]  # same place, other class: kept (class-aware)
    out[0, 7, 5 + 5] = 0.9  # bus
    path = constant_model(tmp_path / 'v5.onnx', {'output': out})
    det = detector(path, class_agnostic_nms=False)
    assert det.layout == 'yolov5'
    found, _ = det.detect(SOURCE)
    assert found.class_names == ['truck', 'bus']
    # The default, class-agnostic NMS: one vehicle, one box.
    assert detector(path).detect(SOURCE)[0].class_names == ['truck']
    # net (24, 28, 40, 36); pad_y 16, scale 0.5
    np.testing.assert_allclose(found.boxes[0], [48, 24, 80, 40], atol=1e-4)


def test_yolov8_transposed_with_metadata_names(tmp_path: Path) -> None:
    out = np.zeros((1, 4 + 3, CELLS), np.float32)
    out[0, :4, 10] = [32, 32, 16, 8]
    out[0, 4 + 1, 10] = 0.7
    names = {'names': "{0: 'car', 1: 'van', 2: 'bus'}"}
    det = detector(constant_model(tmp_path / 'v8.onnx', {'output0': out}, metadata=names))
    assert det.layout == 'yolov8' and det.names == ['car', 'van', 'bus']
    found, _ = det.detect(SOURCE)
    assert found.class_names == ['van']
    np.testing.assert_allclose(found.boxes[0], [48, 24, 80, 40], atol=1e-4)


def test_end2end_single_output(tmp_path: Path) -> None:
    out = np.zeros((1, 10, 6), np.float32)
    out[0, 0] = [24, 28, 40, 36, 0.9, 2]
    out[0, 1] = [0, 0, 10, 10, 0.1, 2]  # below the threshold
    det = detector(constant_model(tmp_path / 'e2e.onnx', {'dets': out}))
    assert det.layout == 'end2end'
    found, _ = det.detect(SOURCE)
    assert found.class_names == ['car']
    np.testing.assert_allclose(found.boxes[0], [48, 24, 80, 40], atol=1e-4)


def test_end2end_separate_outputs_with_count(tmp_path: Path) -> None:
    boxes = np.zeros((1, 5, 4), np.float32)
    boxes[0, :2] = [[24, 28, 40, 36], [0, 16, 8, 24]]
    outputs = {'num_dets': np.array([[2]], np.int32), 'det_boxes': boxes,
               'det_scores': np.array([[0.9, 0.8, 0.9, 0, 0]], np.float32),
               'det_classes': np.array([[3, 1, 2, 0, 0]], np.int32)}
    det = detector(constant_model(tmp_path / 'e2e4.onnx', outputs))
    found, _ = det.detect(SOURCE)
    assert det.layout == 'end2end'
    assert found.class_names == ['motorcycle', 'bicycle']  # the third row is past the count


def test_model_type_override_and_unknown_layout(tmp_path: Path) -> None:
    out = np.zeros((1, 3 * CELLS, 85), np.float32)
    path = constant_model(tmp_path / 'v5.onnx', {'output': out})
    assert detector(path, model_type='yolov5').layout == 'yolov5'
    odd = constant_model(tmp_path / 'odd.onnx', {'a': np.zeros((2, 3), np.float32)})
    with pytest.raises(LayoutError, match='set model_type'):
        detector(odd)
    with pytest.raises(LayoutError, match='not auto or one of'):
        detector(path, model_type='yolov99')


def test_class_filter_keeps_vehicles_only(tmp_path: Path) -> None:
    out = np.zeros((1, 3 * CELLS, 85), np.float32)
    out[0, 0, :5] = [16, 32, 8, 8, 0.9]
    out[0, 0, 5 + 16] = 0.9  # dog
    out[0, 1, :5] = [48, 32, 8, 8, 0.9]
    out[0, 1, 5 + 2] = 0.9  # car
    det = detector(constant_model(tmp_path / 'v5.onnx', {'output': out}),
                   classes=('car', 'truck'))
    assert det.detect(SOURCE)[0].class_names == ['car']


def test_model_load_errors_name_file_and_reason(tmp_path: Path) -> None:
    settings = backend_settings(str(tmp_path / 'missing.onnx'), backend='onnxruntime')
    with pytest.raises(ModelLoadError, match=r'missing\.onnx does not exist'):
        create_backend(settings)
    text = tmp_path / 'notes.onnx'
    text.write_text('not a model')
    with pytest.raises(ModelLoadError, match=r'notes\.onnx as an ONNX model'):
        create_backend(backend_settings(str(text), backend='onnxruntime'))
    flat = constant_model(tmp_path / 'flat.onnx', {'o': np.zeros((1, 4), np.float32)},
                          input_shape=(1, 12))
    with pytest.raises(ModelLoadError, match='rank 4'):
        create_backend(backend_settings(str(flat), backend='onnxruntime'))


@pytest.mark.parametrize('src_hw', [(64, 128), (128, 64), (20, 30), (416, 416), (577, 769)])
@pytest.mark.parametrize('center', [False, True])
def test_letterbox_inverse_is_exact(src_hw, center: bool) -> None:
    image = np.zeros((*src_hw, 3), np.uint8)
    tensor, transform = letterbox(image, (64, 96), InputFormat(center, False, 1.0))
    assert tensor.shape == (1, 3, 64, 96)
    h, w = src_hw
    # The image's own corners map onto the edges of the resized area and back.
    corners = np.array([[0, 0, w, h]], np.float32)
    net = corners.copy()
    net[:, [0, 2]] = net[:, [0, 2]] * transform.scale_x + transform.pad_x
    net[:, [1, 3]] = net[:, [1, 3]] * transform.scale_y + transform.pad_y
    np.testing.assert_allclose(transform.to_source(net), corners, atol=1e-3)
    # And the resized image really sits where the transform says (pad is 114 around it).
    left, top = int(transform.pad_x), int(transform.pad_y)
    assert tensor[0, 0, top, left] == 0
    if left > 0:
        assert tensor[0, 0, top, left - 1] == 114


def test_letterbox_channel_order_and_scale() -> None:
    image = np.empty((32, 64, 3), np.uint8)
    image[...] = (10, 20, 30)  # BGR
    bgr, _ = letterbox(image, (64, 64), InputFormat(center=False, rgb=False, scale=1.0))
    assert bgr[0, :, 0, 0].tolist() == [10, 20, 30]
    assert bgr[0, :, 63, 0].tolist() == [114, 114, 114]  # below the image: padding
    rgb, transform = letterbox(image, (64, 64), InputFormat(center=True, rgb=True,
                                                            scale=1 / 255))
    assert transform.pad_y == 16
    np.testing.assert_allclose(rgb[0, :, 16, 0], np.array([30, 20, 10]) / 255, rtol=1e-6)
    np.testing.assert_allclose(rgb[0, :, 0, 0], np.full(3, 114 / 255), rtol=1e-6)
    assert rgb.dtype == np.float32 and rgb.flags['C_CONTIGUOUS']


def test_class_names_resolution(tmp_path: Path) -> None:
    assert names_from_metadata({'names': '["a", "b"]'}) == ['a', 'b']
    assert names_from_metadata({'names': 'garbage{'}) is None
    assert resolve_names({}, 80)[2] == 'car'
    labels = tmp_path / 'labels.txt'
    labels.write_text('# my classes\nvan\n\nlorry\n')
    assert resolve_names({}, 2, str(labels)) == ['van', 'lorry']
    with pytest.raises(LabelsError, match='labels_file'):
        resolve_names({}, 3)
    with pytest.raises(LabelsError, match='unknown classes'):
        class_mask(['car'], ['spaceship'])


def test_backend_choice_and_fallback(tmp_path: Path) -> None:
    assert choose_backend('auto', True, True) == ('tensorrt', None)
    name, warning = choose_backend('auto', False, True)
    assert name == 'onnxruntime' and 'TensorRT is not installed' in warning
    assert choose_backend('auto', True, False)[0] == 'onnxruntime'
    assert choose_backend('onnxruntime', True, True) == ('onnxruntime', None)
    with pytest.raises(ValueError, match='not one of'):
        choose_backend('openvino', False, False)
    assert choose_providers(['CPUExecutionProvider', 'CUDAExecutionProvider'], True) == [
        'CUDAExecutionProvider', 'CPUExecutionProvider']
    assert choose_providers(['CUDAExecutionProvider'], False) == ['CPUExecutionProvider']
    model = constant_model(tmp_path / 'm.onnx', {'output': np.zeros((1, 252, 85), np.float32)})
    # auto with TensorRT claimed present but not importable here: falls back, says why.
    backend, warnings = create_backend(backend_settings(str(model)), trt_available=True, gpu=True)
    assert backend.name == 'onnxruntime'
    assert any('tensorrt and pycuda' in w and 'falls back' in w for w in warnings)
    with pytest.raises(BackendUnavailable, match='pip install'):
        create_backend(backend_settings(str(model), backend='tensorrt'))


def test_engine_cache_key_and_path(tmp_path: Path) -> None:
    base = engine_key('abc', '10.3.0', 'Orin', 'fp16')
    assert len({base, engine_key('abd', '10.3.0', 'Orin', 'fp16'),
                engine_key('abc', '10.4.0', 'Orin', 'fp16'),
                engine_key('abc', '10.3.0', 'RTX 4090', 'fp16'),
                engine_key('abc', '10.3.0', 'Orin', 'int8')}) == 5
    with pytest.raises(ValueError, match='precision'):
        engine_key('abc', '10', 'gpu', 'fp8')
    path = engine_path(str(tmp_path), '/models/yolox_nano.onnx', base, 'fp16')
    assert path.name == f'yolox_nano.fp16.{base}.engine'
    write_atomically(path, b'engine')
    assert path.read_bytes() == b'engine' and list(tmp_path.iterdir()) == [path]


def test_every_model_load_error_is_one_error_type(tmp_path: Path) -> None:
    """A missing backend, an unknown layout and unknown class names: one type to catch."""
    for error in (BackendUnavailable, LayoutError, LabelsError):
        assert issubclass(error, ModelLoadError)
    with pytest.raises(ModelLoadError, match='set model_type'):
        detector(constant_model(tmp_path / 'odd.onnx', {'a': np.zeros((2, 3), np.float32)}))
    defaults = DetectorSettings('m.onnx')  # the node's defaults, not a second copy
    assert (defaults.confidence_threshold, defaults.classes[0], defaults.backend) == (
        0.35, 'car', 'auto')


def test_input_formats_per_family() -> None:
    assert not INPUT_FORMATS['yolox'].center and INPUT_FORMATS['yolox'].scale == 1.0
    assert INPUT_FORMATS['yolov8'].rgb and INPUT_FORMATS['yolov8'].scale == 1 / 255
    assert detect_layout([(1, 8400, 85)], (640, 640)) == 'yolox'
    assert detect_layout([(1, 25200, 85)], (640, 640)) == 'yolov5'
    assert detect_layout([(1, 84, 8400)], (640, 640)) == 'yolov8'
    assert detect_layout([(1, 100, 6)], (640, 640)) == 'end2end'


def test_part_boxes_nested_in_a_larger_box_are_dropped() -> None:
    from vehicle_detection.core.detection.decoders import nested_mask

    boxes = np.array([[0, 0, 100, 100],      # a whole bicycle
                      [50, 40, 98, 99],      # its rear wheel, all inside: dropped
                      [90, 0, 190, 100],     # a neighbour overlapping a little: kept
                      [10, 10, 60, 60]], np.float32)  # inside, but another class: kept
    classes = np.array([1, 1, 1, 2])
    assert nested_mask(boxes, classes).tolist() == [True, False, True, True]
    assert nested_mask(boxes, classes, containment=0).all()
    assert nested_mask(boxes[:1], classes[:1]).tolist() == [True]
