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

"""Publish ``diagnostic_msgs/DiagnosticArray`` reports without diagnostic_updater."""

from __future__ import annotations

from typing import Mapping, Union

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.node import Node

from vehicle_detection.ros.qos import reliable_qos

OK = DiagnosticStatus.OK
WARN = DiagnosticStatus.WARN
ERROR = DiagnosticStatus.ERROR
STALE = DiagnosticStatus.STALE


class DiagnosticsPublisher:
    """One status per call on the standard ``/diagnostics`` topic."""

    def __init__(self, node: Node, hardware_id: str = '') -> None:
        self._node = node
        self.hardware_id = hardware_id
        self._pub = node.create_publisher(DiagnosticArray, '/diagnostics', reliable_qos(10))

    def publish(self, name: str, level: Union[int, bytes], message: str,
                values: Mapping[str, object]) -> None:
        """Publish one status named ``<node name>: <name>``."""
        status = DiagnosticStatus(
            level=level if isinstance(level, bytes) else bytes([level]),
            name=f'{self._node.get_name()}: {name}', message=message,
            hardware_id=self.hardware_id,
            values=[KeyValue(key=k, value=_text(v)) for k, v in values.items()])
        array = DiagnosticArray(status=[status])
        array.header.stamp = self._node.get_clock().now().to_msg()
        self._pub.publish(array)


def _text(value: object) -> str:
    if isinstance(value, float):
        return f'{value:.3f}'
    return str(value)
