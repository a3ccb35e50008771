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
A third-party camera as users write one: plain rclpy, default QoS, stock middleware.

    python test/stock_camera.py [--rate 10] [--width 1280 --height 720]

Publishes bgr8 frames on ``camera/image_raw`` with ``create_publisher(Image,
topic, 10)`` (reliable, keep last 10) from a timer, stamped with the time of
publishing, until Ctrl-C. Started without this package's Fast DDS profile it
is the README's failing case: frames of 2.7 MB go as UDP fragments.
"""

from __future__ import annotations

import argparse

import numpy as np
import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from sensor_msgs.msg import Image

from vehicle_detection.ros.image_conv import to_image_msg


def main() -> None:
    """Publish until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--rate', type=float, default=10.0)
    parser.add_argument('--width', type=int, default=1280)
    parser.add_argument('--height', type=int, default=720)
    args = parser.parse_args()
    rclpy.init()
    node = Node('stock_camera')
    publisher = node.create_publisher(Image, 'camera/image_raw', 10)
    frame = np.random.default_rng(0).integers(0, 255, (args.height, args.width, 3), np.uint8)

    def tick() -> None:
        # The package's converter only for its speed: the message is a plain Image.
        publisher.publish(to_image_msg(frame, node.get_clock().now().to_msg(), 'camera'))

    node.create_timer(1.0 / args.rate, tick)
    print('publishing', flush=True)
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    main()
