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

"""Tiny ONNX models, made with onnx.helper, whose outputs are fixed arrays."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional, Sequence

import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto


def constant_model(path: Path, outputs: Dict[str, np.ndarray],
                   input_shape: Sequence[int] = (1, 3, 64, 64),
                   metadata: Optional[Dict[str, str]] = None,
                   input_dtype: type = np.float32) -> Path:
    """
    Write a model with one image input of ``input_dtype`` whose outputs are ``outputs``.

    Each output is ``constant + 0 * mean(input)``, so the graph really reads
    its input and runs through every backend like a detector would. Float16
    outputs are computed in float32 and cast, as half-precision exports end.
    """
    nodes = [helper.make_node('Cast', ['images'], ['pixels'], to=TensorProto.FLOAT),
             helper.make_node('ReduceMean', ['pixels'], ['mean'], keepdims=0),
             helper.make_node('Mul', ['mean', 'zero'], ['nothing'])]
    initializers = [numpy_helper.from_array(np.zeros((), np.float32), 'zero')]
    graph_outputs = []
    for name, value in outputs.items():
        value = np.asarray(value)
        const = f'{name}_value'
        half = value.dtype == np.float16
        initializers.append(numpy_helper.from_array(value.astype(np.float32) if half else value,
                                                    const))
        elem = helper.np_dtype_to_tensor_dtype(value.dtype)
        if value.dtype == np.float32:
            nodes.append(helper.make_node('Add', [const, 'nothing'], [name]))
        elif half:
            nodes += [helper.make_node('Add', [const, 'nothing'], [f'{name}_wide']),
                      helper.make_node('Cast', [f'{name}_wide'], [name], to=elem)]
        else:
            nodes.append(helper.make_node('Identity', [const], [name]))
        graph_outputs.append(helper.make_tensor_value_info(name, elem, list(value.shape)))
    graph = helper.make_graph(
        nodes, 'constant_detector',
        [helper.make_tensor_value_info('images', helper.np_dtype_to_tensor_dtype(
            np.dtype(input_dtype)), list(input_shape))],
        graph_outputs, initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)])
    model.ir_version = 8
    for key, value in (metadata or {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path
