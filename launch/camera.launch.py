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

"""Launch the camera node alone, with parameters from config/config.yaml."""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def generate_launch_description() -> LaunchDescription:
    """Describe the camera node with its parameter file."""
    default_config = os.path.join(get_package_share_directory('vehicle_detection'),
                                  'config', 'config.yaml')
    return LaunchDescription([
        DeclareLaunchArgument('config', default_value=default_config,
                              description='ROS 2 parameter file of the nodes'),
        DeclareLaunchArgument('log_level', default_value='info',
                              description='Logging level of the node'),
        Node(package='vehicle_detection', executable='camera_node', name='camera_node',
             parameters=[LaunchConfiguration('config')], output='screen',
             arguments=['--ros-args', '--log-level', LaunchConfiguration('log_level')]),
    ])
