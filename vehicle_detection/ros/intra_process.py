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
Camera frames handed between nodes of one process without going through DDS.

rclpy has no intra-process communication (rclcpp's ``use_intra_process_comms``):
a frame published to a node in the same process still crosses the middleware,
about six copies of a 2.7 MB 720p frame and 2-3 ms (``bench/transport.py``),
paid again by every subscriber. When the camera node and its subscribers are
composed in one process (``vehicle-detection run``), :class:`ImageOutput`
hands each frame, a read-only NumPy array with its header, straight to the
:class:`ImageInput` of that topic in the same rclpy context, and publishes on
DDS only while some matched subscription is not served that way (another
process, ``ros2 topic echo``, ``ros2 bag record``). An input drops the DDS copy
of a frame it already had, so every frame is delivered once either way.

Local subscriptions must use a QoS the image publisher matches (the sensor-data
profile does): the DDS publish is skipped when the matched subscriptions are no
more than the local ones.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
import threading
from typing import Callable, Deque, Dict, List, Optional, Tuple
import weakref

import numpy as np
from rclpy.context import Context
from rclpy.node import Node
from rclpy.qos import QoSProfile
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from vehicle_detection.ros.image_conv import stamp_to_ns, to_bgr, to_image_msg

LocalCallback = Callable[[Header, np.ndarray], None]
_RECENT_LOCAL_FRAMES = 16  # local frames remembered to drop their DDS copies


@dataclass(frozen=True)
class ReceivedImage:
    """An image from either path: a message from DDS or an array handed over in-process."""

    header: Header
    msg: Optional[Image] = None
    array: Optional[np.ndarray] = None

    def bgr(self) -> np.ndarray:
        """Return the BGR frame (raises ``ImageEncodingError`` for an unsupported message)."""
        if self.array is not None:
            return self.array
        assert self.msg is not None
        return to_bgr(self.msg)


class LocalFrameBus:
    """The in-process image subscribers of one rclpy context, by resolved topic name."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: Dict[str, List[LocalCallback]] = {}

    def subscribe(self, topic: str, callback: LocalCallback) -> None:
        """Deliver the frames published on ``topic`` in this process to ``callback``."""
        with self._lock:
            self._subscribers.setdefault(topic, []).append(callback)

    def unsubscribe(self, topic: str, callback: LocalCallback) -> None:
        """Stop delivering to ``callback`` (unknown callbacks are ignored)."""
        with self._lock:
            callbacks = self._subscribers.get(topic, [])
            if callback in callbacks:
                callbacks.remove(callback)

    def publish(self, topic: str, header: Header, image: np.ndarray) -> int:
        """Hand ``image`` to every local subscriber of ``topic``; return how many took it."""
        with self._lock:
            callbacks = list(self._subscribers.get(topic, ()))
        for callback in callbacks:
            callback(header, image)
        return len(callbacks)


_BUSES: 'weakref.WeakKeyDictionary[Context, LocalFrameBus]' = weakref.WeakKeyDictionary()
_BUSES_LOCK = threading.Lock()


def frame_bus(context: Context) -> LocalFrameBus:
    """Return the bus shared by the nodes of ``context``."""
    with _BUSES_LOCK:
        bus = _BUSES.get(context)
        if bus is None:
            bus = _BUSES[context] = LocalFrameBus()
        return bus


def _frame_key(header: Header) -> Tuple[int, str]:
    return stamp_to_ns(header.stamp), header.frame_id


class ImageInput:
    """A node's image subscription: in-process from a camera in this process, else DDS."""

    def __init__(self, node: Node, topic: str, qos: QoSProfile,
                 on_image: Callable[[ReceivedImage], None]) -> None:
        self._on_image = on_image
        self.in_process = self.over_dds = self.duplicates = 0  # frames by path; DDS copies
        self._lock = threading.Lock()
        self._recent: Deque[Tuple[int, str]] = collections.deque(maxlen=_RECENT_LOCAL_FRAMES)
        self._node = node
        self._subscription = node.create_subscription(Image, topic, self._on_message, qos)
        self.topic = self._subscription.topic_name
        self._bus = frame_bus(node.context)
        self._bus.subscribe(self.topic, self._on_local)

    def _on_local(self, header: Header, image: np.ndarray) -> None:
        with self._lock:
            self._recent.append(_frame_key(header))
            self.in_process += 1
        self._on_image(ReceivedImage(header, array=image))

    def _on_message(self, msg: Image) -> None:
        with self._lock:
            had_it = _frame_key(msg.header) in self._recent
            if had_it:
                self.duplicates += 1
            else:
                self.over_dds += 1
        if not had_it:
            self._on_image(ReceivedImage(msg.header, msg=msg))

    def close(self) -> None:
        """Stop taking in-process frames (the DDS subscription goes with the node)."""
        self._bus.unsubscribe(self.topic, self._on_local)

    def destroy(self) -> None:
        """Close and destroy the DDS subscription too (from the node's executor thread)."""
        self.close()
        self._node.destroy_subscription(self._subscription)


class ImageOutput:
    """The camera's image publisher: local inputs get the array, DDS the rest."""

    def __init__(self, node: Node, topic: str, qos: QoSProfile) -> None:
        self._publisher = node.create_publisher(Image, topic, qos)
        self.topic = self._publisher.topic_name
        self._bus = frame_bus(node.context)

    @property
    def matched_subscriptions(self) -> int:
        """DDS subscriptions matched to the publisher, local ones included."""
        return self._publisher.get_subscription_count()

    def publish(self, image: np.ndarray, header: Header) -> bool:
        """Deliver one frame; return whether it also went on DDS."""
        # Local subscribers share the array (made contiguous, as a message's pixels
        # are): it must not change after this point.
        image = np.ascontiguousarray(image)
        image.flags.writeable = False
        served = self._bus.publish(self.topic, header, image)
        if self.matched_subscriptions <= served:
            return False
        self._publisher.publish(to_image_msg(image, header.stamp, header.frame_id))
        return True
