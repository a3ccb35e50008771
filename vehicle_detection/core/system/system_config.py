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
The whole system's node parameters, built one way for the launch files and the runner.

``system.launch.py``, ``replay.launch.py`` and ``vehicle-detection run`` all
call :func:`system_parameters`: the parameter file, then ``--set`` style
overrides, then the shortcuts (source, model, cloud URL), validated against
each node's specs, so a bad value fails the same way everywhere.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Optional

from vehicle_detection.core.bridge.config import BRIDGE_PARAMS
from vehicle_detection.core.camera.config import CAMERA_PARAMS, check_camera
from vehicle_detection.core.detection.node_config import DETECTOR_PARAMS
from vehicle_detection.core.system.config_file import node_parameters

NODE_SPECS = {'camera_node': CAMERA_PARAMS, 'detector_node': DETECTOR_PARAMS,
              'cloud_bridge_node': BRIDGE_PARAMS}
CROSS_CHECKS = {'camera_node': check_camera}
SHORTCUTS = {'source': 'camera_node.source', 'model': 'detector_node.model_path',
             'cloud_url': 'cloud_bridge_node.api_base_url'}


def shortcut_overrides(source: str = '', model: str = '', cloud_url: str = '') -> List[str]:
    """Return ``node.param=value`` overrides for the non-empty shortcuts."""
    given = {'source': source, 'model': model, 'cloud_url': cloud_url}
    return [f'{SHORTCUTS[name]}={value}' for name, value in given.items() if value]


def system_parameters(config_path: Optional[str], overrides: Iterable[str] = (),
                      source: str = '', model: str = '', cloud_url: str = '',
                      nodes: Optional[Iterable[str]] = None) -> Dict[str, Dict[str, Any]]:
    """
    Return the validated parameters of each node (all three, or ``nodes``).

    Raises :class:`~vehicle_detection.core.system.config_file.ConfigError` naming the
    file, node and parameter of the first bad value.
    """
    params = node_parameters(NODE_SPECS, config_path,
                             [*overrides, *shortcut_overrides(source, model, cloud_url)],
                             CROSS_CHECKS)
    return {node: params[node] for node in (nodes if nodes is not None else NODE_SPECS)}
