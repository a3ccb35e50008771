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

"""Models in half precision and with raw uint8 input, as users export them."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Dict

import cv2
import numpy as np
import onnx
from onnx_models import constant_model
import pytest

from vehicle_detection.core.detection.backends.base import ModelLoadError
from vehicle_detection.core.detection.backends.onnxruntime_backend import OnnxRuntimeBackend
from vehicle_detection.core.detection.decoders import grid_cells
from vehicle_detection.core.detection.detector import Detector, DetectorSettings
from vehicle_detection.core.detection.tracker import iou_matrix

SOURCE = np.zeros((64, 128, 3), np.uint8)
CELLS = grid_cells(64, 64)
MOTORCYCLE_BOX = [110, 65, 710, 445]  # README-data.md
# A three-class YOLOv8 export (84 channels would read as 84 cells at 64x64 too).
METADATA = {'yolov8': {'names': "{0: 'bus', 1: 'truck', 2: 'car'}"}}


def one_car_per_layout() -> Dict[str, Dict[str, np.ndarray]]:
    """Return outputs of every layout holding one car."""
    yolox = np.zeros((1, CELLS, 85), np.float32)
    row = 3 * 8 + 4  # stride-8 cell gx=4, gy=3
    yolox[0, row, :5] = [0.0, 0.5, math.log(2), math.log(1), 0.9]  # centre (32, 28), 16x8
    yolox[0, row, 5 + 2] = 0.9
    yolov5 = np.zeros((1, 3 * CELLS, 85), np.float32)
    yolov5[0, 5, :5] = [32, 32, 16, 8, 0.9]
    yolov5[0, 5, 5 + 2] = 0.9
    yolov8 = np.zeros((1, 4 + 3, CELLS), np.float32)
    yolov8[0, :4, 10] = [32, 32, 16, 8]
    yolov8[0, 4 + 2, 10] = 0.81
    end2end = np.zeros((1, 10, 6), np.float32)
    end2end[0, 0] = [24, 28, 40, 36, 0.81, 2]
    return {'yolox': {'output': yolox}, 'yolov5': {'output': yolov5},
            'yolov8': {'output0': yolov8}, 'end2end': {'dets': end2end}}


def detector(path: Path) -> Detector:
    return Detector(DetectorSettings(str(path), backend='onnxruntime', tracking=False,
                                     classes=(), confidence_threshold=0.3))


@pytest.mark.parametrize('layout', sorted(one_car_per_layout()))
@pytest.mark.parametrize('dtype', [np.float16, np.uint8])
def test_every_layout_in_half_precision_and_uint8(tmp_path: Path, layout: str,
                                                  dtype: type) -> None:
    outputs = one_car_per_layout()[layout]
    metadata = METADATA.get(layout)
    wide = detector(constant_model(tmp_path / 'fp32.onnx', outputs, metadata=metadata))
    # Half-precision exports have float16 outputs too; uint8-input ones float32.
    out_dtype = np.float16 if dtype == np.float16 else np.float32
    narrow = detector(constant_model(tmp_path / 'other.onnx',
                                     {k: v.astype(out_dtype) for k, v in outputs.items()},
                                     metadata=metadata, input_dtype=dtype))
    assert narrow.layout == wide.layout == layout
    assert narrow.backend.input_dtype == dtype and narrow.prepare(SOURCE).tensor.dtype == dtype
    assert f'{np.dtype(dtype)} input 64x64' in narrow.describe()
    expected, _ = wide.detect(SOURCE)
    found, _ = narrow.detect(SOURCE)
    assert found.class_names == expected.class_names == ['car']
    np.testing.assert_allclose(found.boxes, expected.boxes, atol=0.05)
    np.testing.assert_allclose(found.scores, expected.scores, atol=1e-3)


def test_uint8_input_gets_raw_pixels_and_float16_the_family_scale(tmp_path: Path) -> None:
    image = np.empty((32, 64, 3), np.uint8)
    image[...] = (10, 20, 30)  # BGR
    v5 = one_car_per_layout()['yolov5']
    raw = detector(constant_model(tmp_path / 'u8.onnx', v5, input_dtype=np.uint8))
    assert raw.prepare(image).tensor[0, :, 16, 0].tolist() == [30, 20, 10]  # RGB, not /255
    half = detector(constant_model(tmp_path / 'f16.onnx', v5, input_dtype=np.float16))
    np.testing.assert_allclose(half.prepare(image).tensor[0, :, 16, 0],
                               np.array([30, 20, 10]) / 255, rtol=1e-3)


def test_backend_feeds_the_declared_type_and_widens_half_outputs(tmp_path: Path) -> None:
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node('Identity', ['images'], ['same'])], 'echo',
        [onnx.helper.make_tensor_value_info('images', onnx.TensorProto.FLOAT16, [1, 3, 4, 4])],
        [onnx.helper.make_tensor_value_info('same', onnx.TensorProto.FLOAT16, [1, 3, 4, 4])])
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid('', 17)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / 'echo.onnx'))
    backend = OnnxRuntimeBackend(str(tmp_path / 'echo.onnx'), use_gpu=False)
    tensor = np.arange(48, dtype=np.float32).reshape(1, 3, 4, 4) / 7
    (out,) = backend.infer(tensor)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, tensor, rtol=1e-3)


def test_unsupported_input_type_is_refused_by_name(tmp_path: Path) -> None:
    path = constant_model(tmp_path / 'int32.onnx', one_car_per_layout()['yolov5'],
                          input_dtype=np.int32)
    with pytest.raises(ModelLoadError, match=r'int32.onnx: input .images. is tensor\(int32\); '
                                             r'supported: tensor\(float\), tensor\(float16\)'):
        detector(path)


@pytest.fixture(scope='module')
def half_model(tmp_path_factory) -> Path:
    """Convert the real YOLOX-Nano to float16 inputs, weights and outputs."""
    from conftest import MODEL, require_asset
    float16 = pytest.importorskip('onnxconverter_common.float16')
    model = onnx.load(str(require_asset(MODEL)))
    with pytest.warns(UserWarning):  # tiny weights are rounded to float16's range
        converted = float16.convert_float_to_float16(model, keep_io_types=False)
    path = tmp_path_factory.mktemp('fp16') / 'yolox_nano_fp16.onnx'
    onnx.save(converted, str(path))
    return path


def test_real_model_in_half_precision_finds_the_vehicles(half_model: Path,
                                                         samples_dir: Path) -> None:
    half = Detector(DetectorSettings(str(half_model), backend='onnxruntime', tracking=False))
    assert half.backend.input_dtype == np.float16 and half.layout == 'yolox'
    found, _ = half.detect(cv2.imread(str(samples_dir / 'motorcycle.png')))
    assert found.class_names == ['motorcycle'] and found.scores[0] > 0.8
    assert iou_matrix(found.boxes, np.array([MOTORCYCLE_BOX], np.float32))[0, 0] >= 0.85
    street, _ = half.detect(cv2.imread(str(samples_dir / 'street_dog_bicycle_truck.jpg')))
    assert sorted(street.class_names) == ['bicycle', 'car']
