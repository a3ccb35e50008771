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

"""Two systems in one ROS domain: the nodes and doctor name the extra publishers."""

from __future__ import annotations

from pathlib import Path
import subprocess
import sys

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
import pytest
from rcl_interfaces.msg import Log
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, qos_profile_sensor_data, QoSProfile, ReliabilityPolicy
from ros_helpers import Harness
from sensor_msgs.msg import Image
from test_cloud_bridge_node import start_bridge

from vehicle_detection.nodes.detector_node import DetectorNode
from vision_msgs.msg import Detection2DArray

pytestmark = pytest.mark.ros

REPO = Path(__file__).resolve().parents[1]
CLI = str(Path(sys.prefix) / 'bin' / 'vehicle-detection')
ROSOUT_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE,
                        durability=DurabilityPolicy.TRANSIENT_LOCAL)


def status(arrays: list, node: str, level: int, text: str) -> bool:
    """Tell whether a recent status of ``node`` has ``level`` and holds ``text``."""
    return any(s.name.startswith(f'{node}:') and s.level == level and text in s.message
               for a in arrays[-6:] for s in a.status)


def test_a_second_camera_and_detector_are_named_on_diagnostics(
        ros_context, domain_id: int, model_path: Path, tmp_path: Path) -> None:
    harness = Harness(ros_context)
    try:
        diagnostics = harness.subscribe(DiagnosticArray, '/diagnostics')
        log = harness.subscribe(Log, '/rosout', ROSOUT_QOS)
        harness.add(DetectorNode(context=ros_context, parameter_overrides=[
            Parameter('model_path', value=str(model_path)),
            Parameter('diagnostics_period', value=0.2)]))
        start_bridge(harness, 'http://127.0.0.1:9', tmp_path, enabled=False,
                     diagnostics_period=0.2)
        # This system's camera, and another system's camera and detector on the same domain.
        cameras = [Node(name, context=ros_context) for name in ('camera_a', 'camera_b')]
        for camera in cameras:
            harness.add(camera).create_publisher(Image, 'camera/image_raw',
                                                 qos_profile_sensor_data)
        harness.add(Node('other_detector', context=ros_context)).create_publisher(
            Detection2DArray, 'detections', 10)
        images = ('/camera/image_raw has 2 publishers (/camera_a, /camera_b), 1 expected: '
                  f'another system in ROS domain {domain_id}?')
        detections = '/detections has 2 publishers (/detector_node, /other_detector)'
        arrays = diagnostics.wait_for(
            lambda a: status(a, 'cloud_bridge_node', DiagnosticStatus.WARN, detections)
            and status(a, 'detector_node', DiagnosticStatus.WARN, images), timeout=30.0,
            what='both nodes warning about the extra publishers')
        assert status(arrays, 'cloud_bridge_node', DiagnosticStatus.WARN, images)
        assert status(arrays, 'cloud_bridge_node', DiagnosticStatus.WARN, 'ROS_DOMAIN_ID')
        seen = len(diagnostics.messages)
        diagnostics.wait_count(seen + 10)  # a second of reports: the log said it once
        said = [m for m in log.messages if m.name == 'cloud_bridge_node' and images in m.msg]
        assert len(said) == 1 and said[0].level == Log.WARN, [m.msg for m in said]

        # The other system goes: the warnings go with it.
        harness.nodes.remove(cameras[1])
        harness.executor.remove_node(cameras[1])
        cameras[1].destroy_node()
        diagnostics.wait_for(lambda a: status(a, 'detector_node', DiagnosticStatus.OK,
                                              'running'), timeout=30.0,
                             what='the detector OK again with one camera')
    finally:
        harness.close()


def test_doctor_names_the_publishers_of_a_crowded_topic(ros_context, ros_env: dict,
                                                        samples_dir: Path,
                                                        model_path: Path) -> None:
    publishers = [Node(name, context=ros_context) for name in ('camera_a', 'camera_b')]
    try:
        for node in publishers:
            node.create_publisher(Image, 'camera/image_raw', qos_profile_sensor_data)
        result = subprocess.run(
            [CLI, 'doctor', '--config', str(REPO / 'config' / 'config.yaml'), '--source',
             str(samples_dir), '--model', str(model_path), '--cloud-url', 'http://127.0.0.1:9',
             '--listen', '1'], capture_output=True, text=True, timeout=120,
            env={k: v for k, v in ros_env.items() if k != 'VD_CLOUD_API_KEY'})
    finally:
        for node in publishers:
            node.destroy_node()
    assert ('WARN  publishers: /camera/image_raw has 2 publishers (/camera_a, /camera_b), 1 '
            'expected') in result.stdout, result.stdout + result.stderr
    assert '-> give each system its own ROS_DOMAIN_ID' in result.stdout, result.stdout
    assert 'Traceback' not in result.stderr, result.stderr
