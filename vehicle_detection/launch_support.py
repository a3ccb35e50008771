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
What the launch files share: their arguments and the nodes built from them.

Imported only by ``launch/*.launch.py`` (it needs ``launch`` and
``launch_ros`` from a ROS 2 install); the parameters come from
:func:`vehicle_detection.core.system.system_config.system_parameters`, the function
the one-process runner uses too.
"""

import os
from typing import Any, Dict, List, Sequence

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, ExecuteProcess
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.substitutions import ExecutableInPackage

from vehicle_detection.core.system.system_config import NODE_SPECS, system_parameters

ARGUMENTS = {
    'config': 'ROS 2 parameter file of the nodes (default: the installed config.yaml)',
    'source': 'camera source (device, file, folder, URL, GStreamer); empty: from config',
    'model': 'ONNX model path; empty: from config',
    'cloud_url': 'cloud server URL; empty: from config',
    'namespace': 'namespace of the nodes and their topics',
    'log_level': 'logging level of the nodes (debug, info, warn, error)',
    'layout': 'processes: one process per node; composed: all nodes in one process '
              '(vehicle-detection run), frames handed over without DDS: lower latency, '
              'see bench/detector.py; no namespace there',
    'replay': 'true: the images are recorded (a bag), alerts and counts are marked as replays '
              '(the default of replay.launch.py); false: they are live; empty: from config',
}
LAYOUTS = ('processes', 'composed')


def declare_arguments(replay: str = '') -> List[DeclareLaunchArgument]:
    """Return the launch arguments with their descriptions and defaults (``replay``'s given)."""
    defaults = {'config': os.path.join(get_package_share_directory('vehicle_detection'),
                                       'config', 'config.yaml'),
                'log_level': 'info', 'layout': LAYOUTS[0], 'replay': replay}
    choices = {'layout': list(LAYOUTS), 'replay': ['', 'true', 'false']}
    return [DeclareLaunchArgument(name, default_value=defaults.get(name, ''),
                                  description=description, choices=choices.get(name))
            for name, description in ARGUMENTS.items()]


def make_nodes(context: Any, names: Sequence[str] = tuple(NODE_SPECS)
               ) -> List[ExecuteProcess]:
    """Build ``names`` from the resolved arguments (an ``OpaqueFunction`` callback)."""
    value = {name: LaunchConfiguration(name).perform(context) for name in ARGUMENTS}
    if value['layout'] == 'composed':
        return [composed(value, replay='camera_node' not in names)]
    params = system_parameters(value['config'], _replay_overrides(value['replay'], names),
                               source=value['source'], model=value['model'],
                               cloud_url=value['cloud_url'], nodes=names)
    return [Node(package='vehicle_detection', executable=name, name=name,
                 namespace=value['namespace'], parameters=[params[name]], output='screen',
                 arguments=['--ros-args', '--log-level', value['log_level']])
            for name in names]


def _replay_overrides(replay: str, names: Sequence[str]) -> List[str]:
    """Return the bridge's replay mark as an override ('' : the config file's)."""
    if not replay or 'cloud_bridge_node' not in names:
        return []
    return [f'cloud_bridge_node.replay={replay}']


def composed(value: Dict[str, str], replay: bool) -> ExecuteProcess:
    """Run the nodes in one ``vehicle-detection run`` process with the same arguments."""
    if value['namespace']:
        raise ValueError('layout:=composed runs the nodes under their own names; '
                         'use layout:=processes for a namespace')
    # Checked here, not only in the process: a bad file fails the launch at once.
    system_parameters(value['config'], _replay_overrides(value['replay'], tuple(NODE_SPECS)),
                      source=value['source'], model=value['model'],
                      cloud_url=value['cloud_url'])
    arguments = ['run', '--config', value['config'], '--quiet']
    if value['replay']:  # the launch argument over the file, as with layout:=processes
        arguments += ['--set', f'cloud_bridge_node.replay={value["replay"]}']
    for option in ('source', 'model', 'cloud_url'):
        if value[option]:
            arguments += [f'--{option.replace("_", "-")}', value[option]]
    # A plain process: launch_ros's Node would add --ros-args remappings that rename
    # every node of the process to one name.
    return ExecuteProcess(cmd=[ExecutableInPackage('vehicle-detection', 'vehicle_detection'),
                               *arguments, *(['--replay'] if replay else [])],
                          name='vehicle_detection', output='screen')
