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

"""Listen to an image topic for a while, as a node of this package would (for doctor)."""

from __future__ import annotations

import time
from typing import List

import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import ReliabilityPolicy
from sensor_msgs.msg import Image

from vehicle_detection.core.system.image_stream import StreamSample
from vehicle_detection.ros.image_conv import stamp_to_ns
from vehicle_detection.ros.qos import image_qos
from vehicle_detection.ros.transport import tune_transport


DISCOVERY_S = 10.0  # longest wait for the image topic's publisher before listening


def listen_to_images(topic: str, seconds: float, reliability: str) -> StreamSample:
    """Subscribe like the detector does for ``seconds``; return what came whole."""
    tune_transport()
    context = Context()
    rclpy.init(context=context)
    node = Node('vehicle_detection_doctor', context=context)
    stamps: List[int] = []
    sizes: List[int] = []

    def on_image(msg: Image) -> None:
        if len(msg.data) == msg.step * msg.height > 0:
            stamps.append(stamp_to_ns(msg.header.stamp))
            sizes.append(len(msg.data))

    subscription = node.create_subscription(Image, topic, on_image,
                                            image_qos(5, reliability))
    resolved = subscription.topic_name
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    try:
        # The listening starts once the camera is discovered (slow on a loaded box):
        # the sample then spans ``seconds`` of the stream, not of discovery.
        found_by = time.monotonic() + DISCOVERY_S
        while node.count_publishers(resolved) == 0 and time.monotonic() < found_by:
            executor.spin_once(timeout_sec=0.1)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.1)
        publishers = ['reliable' if info.qos_profile.reliability == ReliabilityPolicy.RELIABLE
                      else 'best_effort'
                      for info in node.get_publishers_info_by_topic(resolved)]
    finally:
        executor.shutdown()
        node.destroy_node()
        context.try_shutdown()
    return StreamSample(resolved, seconds, reliability, stamps,
                        sizes[0] if sizes else 0, publishers)
