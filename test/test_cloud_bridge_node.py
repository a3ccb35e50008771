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

"""The cloud bridge node over real topics, against the real cloud server."""

from __future__ import annotations

from pathlib import Path
import threading
from typing import Iterator, List, Tuple

from cloud_helpers import add_device, CloudServer
import cv2
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from fake_cloud import serve_fake_cloud
import numpy as np
import pytest
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
import requests
from ros_helpers import diagnostic_values, Harness
from sensor_msgs.msg import Image
from std_srvs.srv import Trigger

from vehicle_detection.core.detection.detections import Detections
from vehicle_detection.nodes.cloud_bridge_node import CloudBridgeNode
from vehicle_detection.ros.detection_msgs import to_detection_array
from vehicle_detection.ros.image_conv import stamp_from_ns, to_image_msg
from vision_msgs.msg import Detection2DArray
from waiting import Inbox, wait_until

WARN = DiagnosticStatus.WARN


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[Tuple[CloudServer, str]]:
    db, storage = f'sqlite:///{tmp_path}/cloud.db', str(tmp_path / 'images')
    key = add_device('gate-1', db, storage)
    server = CloudServer(db, storage)
    try:
        yield server, key
    finally:
        server.stop()


def frame_and_detections(seq: int, tracks: List[Tuple[int, str]]) -> Tuple[Image, object]:
    image = np.full((240, 320, 3), 40 + seq, np.uint8)
    stamp = stamp_from_ns(1_700_000_000_000_000_000 + seq * 100_000_000)
    header_image = to_image_msg(image, stamp, 'cam')
    boxes = np.array([[20.0 + 60 * i, 30.0, 70.0 + 60 * i, 90.0] for i in range(len(tracks))],
                     np.float32).reshape(-1, 4)
    detections = Detections(boxes, np.full(len(tracks), 0.8, np.float32),
                            np.zeros(len(tracks), np.int64), [name for _, name in tracks],
                            np.array([track for track, _ in tracks], np.int64))
    return header_image, to_detection_array(detections, header_image.header)


def start_bridge(harness: Harness, server_url: str, tmp_path: Path,
                 **params: object) -> CloudBridgeNode:
    """Start a bridge node that sends as gate-1 to ``server_url``, its outbox in tmp_path."""
    values = {'api_base_url': server_url, 'device_id': 'gate-1',
              'data_dir': str(tmp_path / 'edge'), **params}
    return harness.add(CloudBridgeNode(context=harness.context, parameter_overrides=[
        Parameter(name, value=value) for name, value in values.items()]))


def test_one_alert_per_vehicle_with_its_frame(ros_context, cloud, tmp_path: Path,
                                              monkeypatch) -> None:
    server, key = cloud
    monkeypatch.setenv('VD_CLOUD_API_KEY', key)
    harness = Harness(ros_context)
    try:
        # Reliable images: a best-effort frame lost under load would leave its alert
        # without a snapshot, and this test checks each alert's exact frame.
        node = start_bridge(harness, server.url, tmp_path, min_track_hits=3,
                            snapshot_window=0.0, health_interval=0.5, heartbeat_interval=1.0,
                            image_reliability='reliable')
        images = harness.probe.create_publisher(Image, 'camera/image_raw', QoSProfile(
            depth=10, reliability=ReliabilityPolicy.RELIABLE))
        detections = harness.probe.create_publisher(
            Detection2DArray, 'detections', QoSProfile(depth=10,
                                                       reliability=ReliabilityPolicy.RELIABLE))
        diagnostics = harness.subscribe(DiagnosticArray, 'diagnostics')
        diagnostics.wait_count(1)  # discovery done: the node reports
        pace = threading.Event()
        for seq in range(8):  # a car seen 8 times, a truck from frame 4 on
            tracks = [(11, 'car')] + ([(12, 'truck')] if seq >= 4 else [])
            image, array = frame_and_detections(seq, tracks)
            images.publish(image)
            detections.publish(array)
            # A 10 fps camera (the default): the bridge keeps the last 2 images queued
            # (sensor data), so on a loaded machine 20 fps lost a frame an alert needed.
            pace.wait(0.1)  # a camera's frame interval, not a synchronisation
        alerts = wait_alerts(server.url, 2)
        assert sorted(a['class_name'] for a in alerts) == ['car', 'truck']
        assert {a['track_id'] for a in alerts} == {11, 12}
        for alert in alerts:
            assert alert['device_id'] == 'gate-1' and alert['image_url']
            snapshot = requests.get(server.url + alert['image_url'], timeout=5).content
            decoded = cv2.imdecode(np.frombuffer(snapshot, np.uint8), cv2.IMREAD_COLOR)
            seq = 2 if alert['class_name'] == 'car' else 6  # the third sighting's frame
            assert abs(int(decoded[5, 5, 0]) - (40 + seq)) <= 2
        client = harness.probe.create_client(Trigger, 'cloud_bridge_node/health_check')
        assert client.wait_for_service(timeout_sec=10)
        answer = Inbox()
        client.call_async(Trigger.Request()).add_done_callback(lambda f: answer(f.result()))
        result = answer.wait_count(1)[0]
        assert result.success and 'queue_depth=0' in result.message
        status = diagnostics.wait_for(lambda msgs: any(
            diagnostic_values(s).get('link_state') == 'up' and s.name.endswith('cloud_bridge')
            for m in msgs for s in m.status), what='link up on /diagnostics')
        assert status
        # The disk used on the box: the outbox database (two alerts), the ROS logs.
        values = diagnostic_values([s for m in status for s in m.status
                                    if s.name.endswith('cloud_bridge')][-1])
        assert int(values['outbox_db_bytes']) > 0 and int(values['snapshot_bytes']) == 0
        assert int(values['log_bytes']) >= 0 and int(values['history_pruned']) == 0
        assert node.recorder.recorded == 2  # alerts recorded this run
    finally:
        harness.close()


def wait_alerts(url: str, count: int) -> list:
    """Wait until the server holds ``count`` alerts with images."""
    items: list = []

    def arrived() -> bool:
        items[:] = requests.get(f'{url}/api/v1/alerts', timeout=5).json()['items']
        return len(items) >= count and all(a['image_url'] for a in items)

    wait_until(arrived, timeout=20, what=f'{count} alerts with images', poll=0.1)
    return items


def test_plain_http_to_another_machine_is_refused_unless_allowed(ros_context,
                                                                 tmp_path: Path) -> None:
    harness = Harness(ros_context)
    try:
        node = harness.add(CloudBridgeNode(context=ros_context, parameter_overrides=[
            Parameter('data_dir', value=str(tmp_path / 'edge'))]))
        refused = node.set_parameters([Parameter('api_base_url',
                                                 value='http://cloud.example.com')])[0]
        assert not refused.successful and 'unencrypted' in refused.reason
        assert node.settings.api_base_url == 'http://127.0.0.1:8000'  # unchanged
        allowed = node.set_parameters_atomically([
            Parameter('allow_insecure_http', value=True),
            Parameter('api_base_url', value='http://cloud.example.com')])
        assert allowed.successful
        assert node.uploader.settings.api_base_url == 'http://cloud.example.com'  # applied
    finally:
        harness.close()


def test_a_captive_portal_shows_on_diagnostics_and_the_health_service(
        ros_context, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv('VD_CLOUD_API_KEY', 'a-key')
    portal = serve_fake_cloud(lambda handler, method, path, body: handler.reply(
        200, b'<html>Sign in to the Wi-Fi</html>', 'text/html') or True)
    url = next(portal)
    harness = Harness(ros_context)
    try:
        node = start_bridge(harness, url, tmp_path, health_interval=0.5,
                            max_retry_after=30.0, request_deadline=20.0)
        assert (node.uploader.settings.max_retry_after,
                node.uploader.settings.request_deadline) == (30.0, 20.0)
        diagnostics = harness.subscribe(DiagnosticArray, 'diagnostics')
        diagnostics.wait_for(lambda msgs: any(
            diagnostic_values(s).get('link_state') == 'unexpected' and s.level == WARN
            and f'unexpected answer from {url}/api/v1/health' in s.message
            for m in msgs for s in m.status), what='the portal on /diagnostics')
        client = harness.probe.create_client(Trigger, 'cloud_bridge_node/health_check')
        assert client.wait_for_service(timeout_sec=10)
        answer = Inbox()
        client.call_async(Trigger.Request()).add_done_callback(lambda f: answer(f.result()))
        result = answer.wait_count(1)[0]
        assert not result.success and 'unexpected answer from' in result.message
    finally:
        harness.close()
        portal.close()


def test_a_device_id_other_than_the_keys_is_reported_not_failed(
        ros_context, cloud, tmp_path: Path, monkeypatch) -> None:
    """The server files alerts under the key's device: the health check says so and passes."""
    server, key = cloud  # the key of gate-1
    monkeypatch.setenv('VD_CLOUD_API_KEY', key)
    harness = Harness(ros_context)
    try:
        start_bridge(harness, server.url, tmp_path, device_id='edge-nc', min_track_hits=2,
                     snapshot_window=0.0, image_reliability='reliable', diagnostics_period=0.2)
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        images = harness.probe.create_publisher(Image, 'camera/image_raw', reliable)
        detections = harness.probe.create_publisher(Detection2DArray, 'detections', reliable)
        diagnostics = harness.subscribe(DiagnosticArray, 'diagnostics')
        diagnostics.wait_count(1)
        for seq in range(3):
            image, array = frame_and_detections(seq, [(21, 'car')])
            images.publish(image)
            detections.publish(array)
        assert [a['device_id'] for a in wait_alerts(server.url, 1)] == ['gate-1']
        filed = "filed under 'gate-1' (the API key's device; device_id 'edge-nc' is not used)"
        statuses = diagnostics.wait_for(lambda msgs: any(
            filed in s.message for m in msgs[-3:] for s in m.status),
            what='the device the server files under, on /diagnostics')
        assert all(s.level == DiagnosticStatus.OK for m in statuses[-1:] for s in m.status)
        client = harness.probe.create_client(Trigger, 'cloud_bridge_node/health_check')
        assert client.wait_for_service(timeout_sec=10)
        answer = Inbox()
        client.call_async(Trigger.Request()).add_done_callback(lambda f: answer(f.result()))
        result = answer.wait_count(1)[0]
        assert result.success and filed in result.message, result.message
    finally:
        harness.close()
