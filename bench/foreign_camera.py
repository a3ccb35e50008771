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
Frames from another process with stock settings: what this package's subscriber gets.

A third-party camera driver publishes 720p bgr8 with Fast DDS's stock settings
(no profile: the 512 KB shared-memory segment cannot hold a 2.7 MB frame, so
frames go as UDP fragments through the kernel's socket buffers). This runs
such a publisher in a child process at the camera rate, for each publisher
reliability and each ``image_reliability`` of the subscriber (tuned like the
nodes), and once more with the publisher given this package's Fast DDS
profile (``FASTDDS_DEFAULT_PROFILES_FILE``, what the README tells users to
do). Prints the share of frames received per series; last line JSON.

    python bench/foreign_camera.py [--frames 60] [--rate 10]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time

import numpy as np

from vehicle_detection.ros.transport import PROFILE, tune_transport

WIDTH, HEIGHT = 1280, 720
# (publisher reliability, subscriber image_reliability, publisher uses our profile)
SERIES = (('best_effort', 'best_effort', False), ('reliable', 'best_effort', False),
          ('reliable', 'reliable', False), ('best_effort', 'best_effort', True),
          ('reliable', 'reliable', True))


def start_ros(name: str):
    """Init rclpy in a fresh context and return (context, node)."""
    import rclpy
    from rclpy.context import Context
    from rclpy.node import Node
    context = Context()
    rclpy.init(context=context)
    return context, Node(name, context=context)


def publisher(frames: int, rate: float, reliability: str) -> None:
    """Publish ``frames`` 720p frames at ``rate`` Hz with sensor-data QoS of ``reliability``."""
    from sensor_msgs.msg import Image

    from vehicle_detection.ros.image_conv import stamp_from_ns, to_image_msg
    from vehicle_detection.ros.qos import image_qos
    context, node = start_ros('stock_camera')
    pub = node.create_publisher(Image, 'camera/image_raw', image_qos(5, reliability))
    deadline = time.monotonic() + 30
    while pub.get_subscription_count() == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # discovery settles on both sides
    frame = np.random.default_rng(0).integers(0, 255, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    for index in range(frames):
        start = time.monotonic()
        pub.publish(to_image_msg(frame, stamp_from_ns(index + 1), 'camera'))
        time.sleep(max(0.0, 1.0 / rate - (time.monotonic() - start)))
    time.sleep(1.0)  # reliable: let retransmissions finish before the writer goes
    node.destroy_node()
    context.try_shutdown()


def receive(frames: int, rate: float, pub_reliability: str, sub_reliability: str,
            with_profile: bool) -> int:
    """Run one stock publisher process; return how many whole frames arrived here."""
    from rclpy.executors import SingleThreadedExecutor
    from sensor_msgs.msg import Image

    from vehicle_detection.ros.qos import image_qos
    domain = str(40 + (os.getpid() + len(pub_reliability) + 3 * with_profile) % 40)
    os.environ['ROS_DOMAIN_ID'] = domain
    context, node = start_ros('subscriber')
    received = set()

    def on_image(msg) -> None:
        if len(msg.data) == WIDTH * HEIGHT * 3:
            received.add(msg.header.stamp.nanosec)

    node.create_subscription(Image, 'camera/image_raw', on_image,
                             image_qos(5, sub_reliability))
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    threading.Thread(target=executor.spin, daemon=True).start()
    env = {k: v for k, v in os.environ.items()
           if k not in ('FASTDDS_DEFAULT_PROFILES_FILE', 'FASTRTPS_DEFAULT_PROFILES_FILE')}
    if with_profile:
        env['FASTDDS_DEFAULT_PROFILES_FILE'] = str(PROFILE)
    child = subprocess.run(
        [sys.executable, __file__, '--role', 'pub', '--frames', str(frames), '--rate',
         str(rate), '--reliability', pub_reliability], env=env, timeout=300)
    assert child.returncode == 0
    executor.shutdown()
    node.destroy_node()
    context.try_shutdown()
    return len(received)


def main() -> None:
    """Measure every series and report."""
    parser = argparse.ArgumentParser(description='720p frames from a stock publisher')
    parser.add_argument('--frames', type=int, default=60)
    parser.add_argument('--rate', type=float, default=10.0)
    parser.add_argument('--reliability', default='best_effort', help=argparse.SUPPRESS)
    parser.add_argument('--role', default='main', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == 'pub':
        publisher(args.frames, args.rate, args.reliability)
        return
    tune_transport()  # this side is one of our nodes
    result: dict = {'resolution': f'{WIDTH}x{HEIGHT}', 'frames': args.frames,
                    'rate_hz': args.rate}
    for pub_rel, sub_rel, with_profile in SERIES:
        got = receive(args.frames, args.rate, pub_rel, sub_rel, with_profile)
        key = f'pub_{pub_rel}_sub_{sub_rel}' + ('_publisher_profile' if with_profile else '')
        result[f'{key}_received_share'] = round(got / args.frames, 3)
        print(f'publisher {pub_rel:>11}{" + profile" if with_profile else "          "} -> '
              f'subscriber {sub_rel:>11}: {got:3d}/{args.frames} frames', flush=True)
    print(json.dumps(result))


if __name__ == '__main__':
    main()
