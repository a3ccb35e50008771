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

"""Who publishes on a node's input topics, from the ROS graph (see core/system/crosstalk)."""

from __future__ import annotations

import time
from typing import Dict, List, Sequence, Tuple

import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node

from vehicle_detection.core.system.crosstalk import CROSSTALK_FIX, crowded_topic


def publisher_names(node: Node, topic: str) -> List[str]:
    """Return the full names of the nodes publishing on ``topic`` (resolved), one per publisher."""
    return [f'{info.node_namespace.rstrip("/")}/{info.node_name}'
            for info in node.get_publishers_info_by_topic(topic)]


class PublisherWatch:
    """
    Warns when an input topic of ``node`` has more publishers than expected.

    :meth:`check` reads the graph (a local cache: cheap), so a node calls it
    with each /diagnostics report; a new warning is logged once, and
    :attr:`problem` holds it for /diagnostics while it lasts.
    """

    def __init__(self, node: Node, topics: Sequence[str]) -> None:
        self._node = node
        self.topics = [node.resolve_topic_name(topic) for topic in topics]
        self.problem = ''

    def check(self) -> str:
        """Look at the graph; return the warning ('' when each topic has one publisher)."""
        domain = self._node.context.get_domain_id()
        problem = '; '.join(filter(None, (
            crowded_topic(topic, publisher_names(self._node, topic), domain)
            for topic in self.topics)))
        if problem:
            problem += f'; {CROSSTALK_FIX}'
        if problem and problem != self.problem:
            self._node.get_logger().warning(problem)
        self.problem = problem
        return problem


def publishers_by_topic(topics: Sequence[str], wait_s: float,
                        settle_s: float = 1.0) -> Tuple[int, Dict[str, List[str]]]:
    """
    Return the ROS domain and the publishers of each of ``topics`` (for doctor).

    Discovery takes a moment: waits up to ``wait_s`` for a first publisher,
    then ``settle_s`` more for the others (a second system is found as fast).
    """
    context = Context()
    rclpy.init(context=context)
    node = Node('vehicle_detection_doctor_graph', context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    resolved = [node.resolve_topic_name(topic) for topic in topics]
    try:
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and not any(
                node.count_publishers(topic) for topic in resolved):
            executor.spin_once(timeout_sec=0.1)
        settled = time.monotonic() + settle_s
        while time.monotonic() < settled:
            executor.spin_once(timeout_sec=0.1)
        return context.get_domain_id(), {topic: publisher_names(node, topic)
                                         for topic in dict.fromkeys(resolved)}
    finally:
        executor.shutdown()
        node.destroy_node()
        context.try_shutdown()
