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
Listen to an image topic for a while, as a node of this package would (for doctor).

Besides the whole frames received, it notes each message's publication
sequence number (the publisher's own count, from the middleware's message
info): the gaps between them are frames the publisher sent that never
arrived whole, however evenly they were lost. Messages on the camera_info
topic beside the image topic (small: they arrive) give the publisher's rate
where sequence numbers are not available.
"""

from __future__ import annotations

import time
from typing import List, Tuple

import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import ReliabilityPolicy
from rclpy.subscription import MessageInfo
from sensor_msgs.msg import CameraInfo, Image

from vehicle_detection.core.system.image_stream import camera_info_topic, StreamSample
from vehicle_detection.ros.image_conv import stamp_to_ns
from vehicle_detection.ros.qos import image_qos
from vehicle_detection.ros.transport import tune_transport


DISCOVERY_S = 10.0  # longest wait for the image topic's publisher before listening
# rmw's RMW_MESSAGE_INFO_SEQUENCE_NUMBER_UNSUPPORTED: the middleware does not count
SEQUENCE_UNSUPPORTED = 2**64 - 1


def publication_number(info: MessageInfo) -> Tuple[Tuple[int, ...], int]:
    """Return (publisher id, its sequence number) of a message; number 0 when unknown."""
    number = info.get('publication_sequence_number') or 0
    gid = info.get('publisher_gid') or {}
    publisher = tuple(gid.get('data', ()))
    return publisher, 0 if number == SEQUENCE_UNSUPPORTED else int(number)


def listen_to_images(topic: str, seconds: float, reliability: str) -> StreamSample:
    """Subscribe like the detector does for ``seconds``; return what came whole."""
    tune_transport()
    context = Context()
    rclpy.init(context=context)
    node = Node('vehicle_detection_doctor', context=context)
    stamps: List[int] = []
    sizes: List[int] = []
    numbers: List[Tuple[Tuple[int, ...], int]] = []
    arrivals: List[int] = []
    listening = [False]
    infos = [0]

    def on_image(msg: Image, info: MessageInfo) -> None:
        if listening[0] and len(msg.data) == msg.step * msg.height > 0:
            stamps.append(stamp_to_ns(msg.header.stamp))
            sizes.append(len(msg.data))
            numbers.append(publication_number(info))
            arrivals.append(time.monotonic_ns())

    def on_camera_info(_msg: CameraInfo) -> None:
        if listening[0]:
            infos[0] += 1

    subscription = node.create_subscription(Image, topic, on_image,
                                            image_qos(5, reliability))
    resolved = subscription.topic_name
    # Best effort hears every publisher; camera info is small and arrives whole.
    node.create_subscription(CameraInfo, camera_info_topic(resolved), on_camera_info,
                             image_qos(5, 'best_effort'))
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    try:
        # The listening starts once the camera is discovered (slow on a loaded box):
        # the sample then spans ``seconds`` of the stream, not of discovery.
        found_by = time.monotonic() + DISCOVERY_S
        while node.count_publishers(resolved) == 0 and time.monotonic() < found_by:
            executor.spin_once(timeout_sec=0.1)
        listening[0] = True
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.1)
        listening[0] = False
        publishers = ['reliable' if info.qos_profile.reliability == ReliabilityPolicy.RELIABLE
                      else 'best_effort'
                      for info in node.get_publishers_info_by_topic(resolved)]
    finally:
        executor.shutdown()
        node.destroy_node()
        context.try_shutdown()
    return StreamSample(resolved, seconds, reliability, stamps,
                        sizes[0] if sizes else 0, publishers, numbers, infos[0], arrivals)
