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
the one-process runner uses too. Each launch file declares the arguments of
the nodes it starts (``ros2 launch vehicle_detection camera.launch.py
--show-args`` lists them), and refuses any other: ``ros2 launch`` itself
would ignore a mistyped ``sorce:=...`` and start the camera on device 0.
"""

import difflib
import itertools
import os
import sys
from typing import Any, Dict, List, Sequence

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, ExecuteProcess, OpaqueFunction
from launch.launch_description import LaunchDescription
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.substitutions import ExecutableInPackage

from vehicle_detection.core.params import spec_map
from vehicle_detection.core.system.system_config import NODE_SPECS, system_parameters

PACKAGE = 'vehicle_detection'
COMMON = {
    'config': 'ROS 2 parameter file of the nodes (default: the installed config.yaml)',
    'namespace': 'namespace of the nodes and their topics',
    'log_level': 'logging level of the nodes (debug, info, warn, error)',
}
# Launch argument -> the node parameter it sets; empty keeps the parameter file's value.
SHORTCUTS = {'source': 'camera_node.source', 'fps': 'camera_node.fps',
             'model': 'detector_node.model_path', 'cloud_url': 'cloud_bridge_node.api_base_url'}
LAYOUT = ('processes: one process per node; composed: all nodes in one process '
          '(vehicle-detection run), frames handed over without DDS: lower latency, '
          'see bench/detector.py; no namespace there')
LAYOUTS = ('processes', 'composed')
REPLAY = ('true: the images are recorded (a bag), alerts and counts are marked as replays '
          '(the default of replay.launch.py); false: they are live; empty: from config')
# Set by `ros2 launch --launch-prefix(-filter)` itself, read by launch_ros.
LAUNCH_OWN = ('launch-prefix', 'launch-prefix-filter')


def shortcuts_of(nodes: Sequence[str]) -> List[str]:
    """Return the shortcut arguments of ``nodes``."""
    return [name for name, target in SHORTCUTS.items() if target.split('.')[0] in nodes]


def declare_arguments(nodes: Sequence[str] = tuple(NODE_SPECS), replay: str = ''
                      ) -> List[DeclareLaunchArgument]:
    """Return the launch arguments of ``nodes`` with their descriptions and defaults."""
    config = os.path.join(get_package_share_directory(PACKAGE), 'config', 'config.yaml')
    arguments = [DeclareLaunchArgument('config', default_value=config,
                                       description=COMMON['config']),
                 DeclareLaunchArgument('namespace', default_value='',
                                       description=COMMON['namespace']),
                 DeclareLaunchArgument('log_level', default_value='info',
                                       description=COMMON['log_level'])]
    for name in shortcuts_of(nodes):
        node, param = SHORTCUTS[name].split('.')
        spec = spec_map(NODE_SPECS[node])[param]
        arguments.append(DeclareLaunchArgument(
            name, default_value='', description=f'{node} {param}: {spec.description} '
                                                "Empty: the parameter file's value."))
    if 'cloud_bridge_node' in nodes:
        arguments.append(DeclareLaunchArgument('replay', default_value=replay,
                                               description=REPLAY, choices=['', 'true', 'false']))
    if len(nodes) > 1:
        arguments.append(DeclareLaunchArgument('layout', default_value=LAYOUTS[0],
                                               description=LAYOUT, choices=list(LAYOUTS)))
    return arguments


def launch_description(nodes: Sequence[str], replay: str = '') -> LaunchDescription:
    """
    Describe ``nodes`` with their arguments; an argument they do not take is an error.

    ``replay``: the default of the bridge's replay mark ('' keeps the parameter file's).
    """
    declared = declare_arguments(nodes, replay)
    names = [argument.name for argument in declared]
    return LaunchDescription([
        *declared,
        OpaqueFunction(function=refuse_unknown_arguments, args=[names]),
        OpaqueFunction(function=make_nodes, args=[tuple(nodes)])])


def refuse_unknown_arguments(context: Any, declared: Sequence[str]) -> list:
    """
    Stop the launch when the command line names an argument this launch file lacks.

    Only for the file ``ros2 launch`` was given: when another launch file
    includes this one, the command line's arguments are that file's.
    """
    launch_file = context.locals.current_launch_file_path
    if not launched_directly(launch_file, sys.argv[1:]):
        return []
    given = [argument.partition(':=')[0] for argument in context.argv if ':=' in argument]
    unknown = [name for name in given if name not in declared and name not in LAUNCH_OWN]
    if unknown:
        hints = [f'{name!r} (did you mean {close[0]!r}?)' if close else repr(name)
                 for name in unknown
                 for close in [difflib.get_close_matches(name, declared, 1)]]
        raise RuntimeError(
            f'{os.path.basename(launch_file)} has no argument {", ".join(hints)}; its '
            f'arguments: {", ".join(sorted(declared))} (ros2 launch {PACKAGE} '
            f'{os.path.basename(launch_file)} --show-args describes them)')
    return []


def launched_directly(launch_file: str, command_line: Sequence[str]) -> bool:
    """Tell whether ``ros2 launch`` was given ``launch_file`` (by package and name, or path)."""
    name = os.path.basename(launch_file)
    return any(os.path.abspath(word) == launch_file for word in command_line) or any(
        pair == (PACKAGE, name) for pair in itertools.pairwise(command_line))


def make_nodes(context: Any, names: Sequence[str] = tuple(NODE_SPECS)) -> List[ExecuteProcess]:
    """Build ``names`` from the resolved arguments (an ``OpaqueFunction`` callback)."""
    value = {name: LaunchConfiguration(name).perform(context)
             for name in [*COMMON, *shortcuts_of(names)]}
    overrides = [f'{SHORTCUTS[name]}={value[name]}' for name in shortcuts_of(names)
                 if value[name]]
    if 'cloud_bridge_node' in names:  # the replay mark: the argument over the file
        replay = LaunchConfiguration('replay').perform(context)
        overrides += [f'cloud_bridge_node.replay={replay}'] if replay else []
    if len(names) > 1 and LaunchConfiguration('layout').perform(context) == 'composed':
        return [composed(value, overrides, replay='camera_node' not in names)]
    params = system_parameters(value['config'], overrides, nodes=names)
    return [Node(package=PACKAGE, executable=name, name=name,
                 namespace=value['namespace'], parameters=[params[name]], output='screen',
                 arguments=['--ros-args', '--log-level', value['log_level']])
            for name in names]


def composed(value: Dict[str, str], overrides: List[str], replay: bool) -> ExecuteProcess:
    """Run the nodes in one ``vehicle-detection run`` process with the same arguments."""
    if value['namespace']:
        raise ValueError('layout:=composed runs the nodes under their own names; '
                         'use layout:=processes for a namespace')
    # Checked here, not only in the process: a bad file fails the launch at once.
    system_parameters(value['config'], overrides)
    arguments = ['run', '--config', value['config'], '--quiet']
    for override in overrides:
        arguments += ['--set', override]
    # A plain process: launch_ros's Node would add --ros-args remappings that rename
    # every node of the process to one name.
    return ExecuteProcess(cmd=[ExecutableInPackage('vehicle-detection', PACKAGE),
                               *arguments, *(['--replay'] if replay else [])],
                          name=PACKAGE, output='screen')
