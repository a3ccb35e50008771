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
Helpers for node tests over real topics.

A :class:`Harness` spins a probe node (and any nodes under test) in a
test's own rclpy Context on a background executor, and collects messages so
a test can wait for them with a timeout instead of sleeping.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
import subprocess
import sys
import threading
from typing import Any, Callable, Iterator, List, Optional

from rclpy.context import Context
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image
from waiting import Inbox


class Harness:
    """A probe node plus nodes under test, spinning in the background."""

    def __init__(self, context: Context, name: str = 'probe') -> None:
        self.context = context
        self.probe = Node(name, context=context)
        self.executor = MultiThreadedExecutor(context=context)
        self.executor.add_node(self.probe)
        self.nodes: List[Node] = []
        self._thread = threading.Thread(target=self.executor.spin, daemon=True)
        self._thread.start()

    def add(self, node: Node) -> Node:
        """Spin ``node`` too; it is closed and destroyed with the harness."""
        self.nodes.append(node)
        self.executor.add_node(node)
        return node

    def subscribe(self, msg_type: Any, topic: str, qos: Any = 10) -> Inbox:
        """Collect messages of ``topic`` on the probe node."""
        inbox: Inbox = Inbox()
        self.probe.create_subscription(msg_type, topic, inbox, qos)
        return inbox

    def close(self) -> None:
        """Stop spinning and destroy every node."""
        self.executor.shutdown()
        self._thread.join(5.0)  # spinning has stopped before any handle is destroyed
        for node in self.nodes:
            close: Optional[Callable[[], None]] = getattr(node, 'close', None)
            if close is not None:
                close()
            node.destroy_node()
        self.probe.destroy_node()


def diagnostic_values(status: Any) -> dict:
    """Return the key/value pairs of a DiagnosticStatus as a dict."""
    return {kv.key: kv.value for kv in status.values}


@contextmanager
def camera_script(context: Context, env: dict, source: Path) -> Iterator[subprocess.Popen]:
    """
    Run the ``camera_node`` console script on ``source`` as ``ros2 run`` would.

    Yields once it publishes; at the end sends SIGINT (Ctrl-C) and checks that
    it stopped cleanly: exit 0, no traceback.
    """
    script = Path(sys.prefix) / 'bin' / 'camera_node'
    assert script.exists(), 'package not installed: run make test'
    harness = Harness(context)
    process = subprocess.Popen(
        [str(script), '--ros-args', '-p', f'source:={source}', '-p', 'loop:=true',
         '-p', 'fps:=15.0'], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True)
    try:
        images = harness.subscribe(Image, 'camera/image_raw', qos_profile_sensor_data)
        images.wait_count(3, timeout=30.0)
        yield process
    finally:
        process.send_signal(2)  # SIGINT, like Ctrl-C
        output, _ = process.communicate(timeout=20)
        harness.close()
    assert process.returncode == 0, output
    assert 'Traceback' not in output, output
