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

"""Run the nodes in one process (for machines without the ROS 2 command-line tools)."""

from __future__ import annotations

import argparse
import sys
from typing import Any, Dict, List

from rclpy.context import Context
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image

from vehicle_detection.core.camera_config import CAMERA_PARAMS, check_camera
from vehicle_detection.core.config_file import ConfigError, default_config_path, node_parameters
from vehicle_detection.nodes.camera_node import CameraNode
from vehicle_detection.ros.spin import NodeFactory, spin_nodes, start_context

NODE_SPECS = {'camera_node': CAMERA_PARAMS}
CROSS_CHECKS = {'camera_node': check_camera}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``vehicle-detection run``."""
    parser.add_argument('--config', default=None,
                        help='ROS 2 parameter file (default: the installed config/config.yaml)')
    parser.add_argument('--set', dest='overrides', action='append', default=[],
                        metavar='NODE.PARAM=VALUE', help='override one parameter (repeatable)')
    parser.add_argument('--duration', type=float, default=0.0,
                        help='stop after this many seconds (default: run until Ctrl-C)')
    parser.add_argument('--quiet', action='store_true', help='do not print each message')


class Monitor(Node):
    """Prints one line per message the system publishes."""

    def __init__(self, context: Context, quiet: bool) -> None:
        super().__init__('vehicle_detection_monitor', context=context)
        self.frames = 0
        self._quiet = quiet
        self.create_subscription(Image, 'camera/image_raw', self._on_image,
                                 qos_profile_sensor_data)

    def _on_image(self, msg: Image) -> None:
        self.frames += 1
        if not self._quiet:
            stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
            print(f'/camera/image_raw #{self.frames}: {msg.width}x{msg.height} {msg.encoding} '
                  f'frame_id={msg.header.frame_id} stamp={stamp:.3f}', flush=True)


def as_overrides(values: Dict[str, Any]) -> List[Parameter]:
    """Turn validated values into rclpy parameter overrides."""
    return [Parameter(name, value=value) for name, value in values.items()]


def run(args: argparse.Namespace) -> int:
    """Start the nodes, spin until Ctrl-C or ``--duration``, print a summary."""
    config = args.config or default_config_path()
    try:
        params = node_parameters(NODE_SPECS, config, args.overrides, CROSS_CHECKS)
    except ConfigError as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    monitor: List[Monitor] = []

    def make_monitor(context: Context) -> Monitor:
        monitor.append(Monitor(context, args.quiet))
        return monitor[0]

    factories: List[NodeFactory] = [
        lambda context: CameraNode(context=context,
                                   parameter_overrides=as_overrides(params['camera_node'])),
        make_monitor,
    ]
    code = spin_nodes(start_context(), factories, args.duration)
    print(f'summary: frames={monitor[0].frames if monitor else 0}', flush=True)
    return code
