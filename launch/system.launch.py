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

"""Launch camera, detector and cloud bridge with parameters from config/config.yaml."""

from launch import LaunchDescription

from vehicle_detection.launch_support import launch_description


def generate_launch_description() -> LaunchDescription:
    """Describe the three nodes of the system with their arguments."""
    return launch_description(('camera_node', 'detector_node', 'cloud_bridge_node'))
