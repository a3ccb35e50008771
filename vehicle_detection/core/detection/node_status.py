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
What the detector node says about itself: why it cannot activate, and its status.

A model that cannot be there is found before activation (a quick look at the
files), so that the lifecycle node never claims ``active`` while it has
nothing to run; a model that is there but does not load (not ONNX, a bad
labels file) is found by the worker threads, which retry.
"""

from __future__ import annotations

from dataclasses import dataclass
import os
from typing import Tuple

OK, WARN, ERROR = 0, 1, 2  # diagnostic_msgs/DiagnosticStatus levels


def model_problem(model_path: str, labels_file: str = '') -> str:
    """Say why the model files cannot be loaded, from a quick look ('' when they may)."""
    if not model_path:
        return 'no model_path set'
    for what, path in (('model file', model_path), ('labels_file', labels_file)):
        if not path:
            continue
        if not os.path.exists(path):
            return f'{what} {path} does not exist'
        if not os.path.isfile(path):
            return f'{what} {path} is not a file'
        if not os.access(path, os.R_OK):
            return f'{what} {path} is not readable'
    return ''


@dataclass(frozen=True)
class DetectorState:
    """What the node's status is made of (read on the executor thread)."""

    lifecycle_state: str
    loaded: bool  # a model is loaded
    worker_error: str = ''  # a worker thread died
    activation_error: str = ''  # the last activation was refused
    load_error: str = ''  # the last (re)load failed
    crowded: str = ''  # more publishers than expected on the input topic


def detector_status(state: DetectorState) -> Tuple[int, str]:
    """Return the level and message of the node's /diagnostics status."""
    level, message = _own_status(state)
    if state.crowded:  # whatever the node's own state: the input is not this system's alone
        return max(level, WARN), f'{message}; {state.crowded}'
    return level, message


def _own_status(state: DetectorState) -> Tuple[int, str]:
    if state.worker_error:
        return ERROR, state.worker_error
    if state.lifecycle_state != 'active' and state.activation_error:
        return ERROR, (f'not detecting: activation failed: {state.activation_error}; fix '
                       'model_path, then activate the node')
    if state.lifecycle_state != 'active':
        return WARN, f'not detecting: lifecycle state {state.lifecycle_state}'
    if not state.loaded:
        return ERROR, f'model not loaded: {state.load_error}'
    if state.load_error:
        return WARN, f'running; reload failed: {state.load_error}'
    return OK, 'running'
