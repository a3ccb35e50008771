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

"""Camera node: publishes ``/camera/image_raw`` and ``/camera/camera_info``."""

from __future__ import annotations

import sys
from typing import Any, Dict, List, Optional

from rclpy.context import Context
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo
from std_msgs.msg import Header

from vehicle_detection.core.camera.config import CAMERA_PARAMS, CameraConfig, check_camera
from vehicle_detection.core.camera.stream import CameraStream, Frame, StreamState
from vehicle_detection.ros.diagnostics import DiagnosticsPublisher, ERROR, OK, WARN
from vehicle_detection.ros.image_conv import camera_info, stamp_from_ns
from vehicle_detection.ros.intra_process import ImageOutput
from vehicle_detection.ros.parameters import DeclaredParameters
from vehicle_detection.ros.qos import image_qos
from vehicle_detection.ros.spin import run_nodes

_LEVELS = {StreamState.STREAMING: OK, StreamState.CONNECTING: OK, StreamState.ENDED: WARN,
           StreamState.RECONNECTING: ERROR, StreamState.STOPPED: WARN}


class CameraNode(Node):
    """Reads a :class:`CameraStream` and publishes its frames."""

    def __init__(self, context: Optional[Context] = None,
                 parameter_overrides: Optional[List[Any]] = None) -> None:
        super().__init__('camera_node', context=context,
                         parameter_overrides=parameter_overrides)
        self.params = DeclaredParameters(self, CAMERA_PARAMS, check_camera, self._apply)
        self._config = CameraConfig.from_values(self.params.values)
        qos = image_qos(self._config.qos_depth)
        # Nodes in this process get the frames without DDS (see intra_process).
        self._image_out = ImageOutput(self, 'camera/image_raw', qos)
        self._info_pub = self.create_publisher(CameraInfo, 'camera/camera_info', qos)
        self._diagnostics = DiagnosticsPublisher(self, hardware_id=self._config.source)
        self._stream = CameraStream(self._config, self._publish, log=self._log)
        self.create_timer(self._config.diagnostics_period, self._report)
        self._stream.start()
        self.get_logger().info(f'camera source {self._config.source!r}, '
                               f'fps cap {self._config.fps:g}, pace {self._config.pace}')

    def _apply(self, values: Dict[str, Any], _previous: Dict[str, Any]) -> None:
        config = CameraConfig.from_values(values)
        self._config = config
        self._diagnostics.hardware_id = config.source
        self._stream.update(config)

    def _log(self, level: str, message: str) -> None:
        # One call site per severity: rclpy refuses a call site whose severity changes.
        logger = self.get_logger()
        if level == 'error':
            logger.error(message)
        elif level == 'warn':
            logger.warning(message)
        else:
            logger.info(message)

    def _publish(self, frame: Frame) -> None:
        # Called on the stream's thread: publishing never waits for the executor.
        header = Header(stamp=stamp_from_ns(frame.stamp_ns), frame_id=self._config.frame_id)
        self._image_out.publish(frame.image, header)
        height, width = frame.image.shape[:2]
        self._info_pub.publish(camera_info(width, height, header.stamp, header.frame_id))

    def _report(self) -> None:
        stats = self._stream.stats()
        message = stats.state.value
        if stats.state is StreamState.RECONNECTING:
            message = f'reconnecting in {stats.retry_in:.1f} s: {stats.last_error}'
        self._diagnostics.publish('camera', _LEVELS[stats.state], message, {
            'state': stats.state.value, 'source': self._config.source,
            'fps': stats.fps, 'frames': stats.frames, 'reconnects': stats.reconnects,
            'last_error': stats.last_error})

    def close(self) -> None:
        """Stop the capture threads (called before the node is destroyed)."""
        self._stream.stop()


def main(args: Optional[List[str]] = None) -> int:
    """Entry point of ``ros2 run vehicle_detection camera_node``."""
    return run_nodes([CameraNode], args)


if __name__ == '__main__':
    sys.exit(main())
