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

"""Detector node over real topics: detections, runtime thresholds, missing model."""

from __future__ import annotations

import json
from pathlib import Path
import threading
import time

import cv2
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
import numpy as np
import pytest
from rcl_interfaces.msg import Log
from rclpy.parameter import Parameter
from rclpy.qos import (
    DurabilityPolicy, qos_profile_sensor_data, QoSProfile, ReliabilityPolicy)
from ros_helpers import diagnostic_values, Harness
from sensor_msgs.msg import Image
from std_msgs.msg import String

from vehicle_detection.core.counting.overlay import LINE_COLOUR
from vehicle_detection.core.detection import node_status
from vehicle_detection.core.detection.detector import Detector
from vehicle_detection.nodes.detector_node import DetectorNode
from vehicle_detection.ros.image_conv import (
    stamp_from_ns, stamp_to_ns, to_bgr, to_image_msg)
from vehicle_detection.ros.qos import COUNTS_QOS
from vision_msgs.msg import Detection2DArray
from waiting import Inbox, wait_until

pytestmark = pytest.mark.ros
ROSOUT_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE,
                        durability=DurabilityPolicy.TRANSIENT_LOCAL)


def start(harness: Harness, image_path: Path, period: float = 0.1, **params) -> DetectorNode:
    """Start a detector node and a publisher of one photo every ``period`` s (0: none)."""
    node = DetectorNode(context=harness.context, parameter_overrides=[
        Parameter(k, value=v) for k, v in params.items()])
    harness.add(node)
    image = cv2.imread(str(image_path))
    publisher = harness.probe.create_publisher(Image, 'camera/image_raw',
                                               qos_profile_sensor_data)

    def publish() -> None:
        # Stamped with the wall clock the node measures frame age and latency against.
        stamp = time.time_ns()
        publisher.publish(to_image_msg(image, stamp_from_ns(stamp), f'cam{stamp}'))

    if period > 0:
        harness.probe.create_timer(period, publish)
    return node


def test_detections_with_header_classes_and_ids(ros_context, model_path: Path,
                                                samples_dir: Path) -> None:
    harness = Harness(ros_context)
    try:
        detections = harness.subscribe(Detection2DArray, 'detections')
        annotated = harness.subscribe(Image, 'detections/image', qos_profile_sensor_data)
        diagnostics = harness.subscribe(DiagnosticArray, '/diagnostics')
        node = start(harness, samples_dir / 'motorcycle.png', model_path=str(model_path),
                     diagnostics_period=0.2)
        arrays = detections.wait_for(lambda msgs: sum(len(m.detections) > 0 for m in msgs) >= 3,
                                     timeout=30.0, what='three arrays with a motorcycle')
        annotated.wait_count(1)
        full = [a for a in arrays if a.detections]
        first = full[0].detections[0]
        assert first.results[0].hypothesis.class_id == 'motorcycle'
        assert first.results[0].hypothesis.score > 0.8
        assert abs(first.bbox.center.position.x - 410) < 15 and abs(first.bbox.size_x - 600) < 30
        # header copied from the image: frame_id names the stamp
        assert all(a.header.frame_id == f'cam{stamp_to_ns(a.header.stamp)}' for a in arrays)
        assert {d.detections[0].id for d in full} == {first.id} and first.id != ''

        def running(arrays):
            return [diagnostic_values(s) for a in arrays for s in a.status
                    if s.name.endswith(': detector') and s.level == DiagnosticStatus.OK
                    and float(diagnostic_values(s)['fps']) > 0]

        values = running(diagnostics.wait_for(running, what='an OK detector status'))[-1]
        assert values['backend'] == 'onnxruntime' and values['model'] == str(model_path)
        assert float(values['inference_ms']) > 0 and int(values['published']) > 0
        assert float(values['latency_ms']) >= float(values['frame_age_ms']) > 0
        assert int(values['dropped_frames']) >= 0 and values['layout'] == 'yolox'
        assert values['input_dtype'] == 'float32'

        # Raise the threshold above the motorcycle's score: empty arrays keep coming.
        assert node.set_parameters([Parameter('confidence_threshold', value=0.97)])[0].successful
        count = len(detections.messages)
        detections.wait_for(lambda msgs: len(msgs) >= count + 5
                            and all(not m.detections for m in msgs[-3:]),
                            what='empty arrays after raising the threshold')
        assert not node.set_parameters([Parameter('confidence_threshold', value=1.5)])[
            0].successful
    finally:
        harness.close()


def test_a_missing_model_fails_activation_until_model_path_is_fixed(
        ros_context, tmp_path: Path, model_path: Path, samples_dir: Path) -> None:
    harness = Harness(ros_context)
    try:
        diagnostics = harness.subscribe(DiagnosticArray, '/diagnostics')
        detections = harness.subscribe(Detection2DArray, 'detections')
        log = harness.subscribe(Log, '/rosout', ROSOUT_QOS)
        missing = tmp_path / 'absent.onnx'
        node = start(harness, samples_dir / 'motorcycle.png', model_path=str(missing),
                     diagnostics_period=0.2)
        error = f'not detecting: activation failed: model file {missing} does not exist'
        arrays = diagnostics.wait_for(lambda a: detector_status(a, DiagnosticStatus.ERROR,
                                                                error),
                                      what='an ERROR naming the missing model')
        status = next(s for a in arrays for s in a.status if s.level == DiagnosticStatus.ERROR)
        assert int(diagnostic_values(status)['frames']) == 0  # inactive: frames not taken
        assert node.lifecycle_state == 'inactive' and lifecycle_state(harness) == 'inactive'
        assert not transition(harness, 'activate')  # again: refused, and not logged again
        seen = len(diagnostics.messages)
        diagnostics.wait_count(seen + 5)
        said = [m.msg for m in log.messages if m.name == 'detector_node' and str(missing) in m.msg]
        assert said == [f'cannot activate: model file {missing} does not exist; set model_path '
                        '(ros2 param set), then activate (ros2 lifecycle set)'], said
        assert not detections.messages

        assert node.set_parameters([Parameter('model_path', value=str(model_path))])[
            0].successful
        assert transition(harness, 'activate') and lifecycle_state(harness) == 'active'
        detections.wait_for(lambda msgs: any(m.detections for m in msgs), timeout=30.0,
                            what='detections once the model is there')
        diagnostics.wait_for(lambda a: detector_status(a[-3:], DiagnosticStatus.OK, 'running'),
                             timeout=30.0, what='running')
    finally:
        harness.close()


def lifecycle_state(harness: Harness) -> str:
    """Ask /detector_node/get_state, as `ros2 lifecycle get` does."""
    client = harness.probe.create_client(GetState, '/detector_node/get_state')
    try:
        assert client.wait_for_service(timeout_sec=10.0)
        answer = Inbox()
        client.call_async(GetState.Request()).add_done_callback(lambda f: answer(f.result()))
        return str(answer.wait_count(1)[0].current_state.label)
    finally:
        harness.probe.destroy_client(client)


def test_stale_frames_are_dropped_not_queued(ros_context, model_path: Path,
                                             samples_dir: Path) -> None:
    harness = Harness(ros_context)
    try:
        detections = harness.subscribe(Detection2DArray, 'detections')
        node = start(harness, samples_dir / 'street_dog_bicycle_truck.jpg', period=0,
                     model_path=str(model_path))
        publisher = harness.probe.create_publisher(Image, 'camera/image_raw',
                                                   qos_profile_sensor_data)
        wait_until(lambda: node.ready and publisher.get_subscription_count() > 0,
                   timeout=30.0, what='the model loaded and the image topic matched')
        # A burst of 40 frames, far faster than they can be inferred.
        image = cv2.imread(str(samples_dir / 'motorcycle.png'))
        for seq in range(1, 41):
            publisher.publish(to_image_msg(image, stamp_from_ns(seq), f'burst{seq}'))
        # The newest frame is always inferred in the end, and every received frame
        # is published or dropped: none is left waiting in a queue.
        wait_until(lambda: [m.header.frame_id for m in list(detections.messages)][-1:]
                   == ['burst40'] and node.published + node.dropped == node.frames,
                   timeout=30.0, what='the last frame published, every other one accounted')
        burst = [int(m.header.frame_id[5:]) for m in list(detections.messages)]
        assert burst == sorted(set(burst)), f'out of order or twice: {burst}'
        # Skipped frames were dropped by the node or, with qos_depth 1, by the reader.
        assert len(burst) == node.published < 40
    finally:
        harness.close()


def detector_status(arrays, level: int, text: str) -> bool:
    """Tell whether a detector status of ``level`` whose message holds ``text`` arrived."""
    return any(s.name.endswith(': detector') and s.level == level and text in s.message
               for a in arrays for s in a.status)


def transition(harness: Harness, label: str) -> bool:
    """Ask /detector_node/change_state for a transition, as a lifecycle manager does."""
    client = harness.probe.create_client(ChangeState, '/detector_node/change_state')
    try:
        assert client.wait_for_service(timeout_sec=10.0)
        future = client.call_async(ChangeState.Request(transition=Transition(label=label)))
        done = threading.Event()
        future.add_done_callback(lambda _: done.set())
        assert done.wait(30.0), f'no answer to {label}'
        return bool(future.result().success)
    finally:
        harness.probe.destroy_client(client)


def test_lifecycle_unconfigured_until_asked_then_back(ros_context, model_path: Path,
                                                      samples_dir: Path) -> None:
    harness = Harness(ros_context)
    try:
        diagnostics = harness.subscribe(DiagnosticArray, '/diagnostics')
        detections = harness.subscribe(Detection2DArray, 'detections')
        node = start(harness, samples_dir / 'motorcycle.png', model_path=str(model_path),
                     autostart=False, diagnostics_period=0.2)
        diagnostics.wait_for(lambda a: detector_status(
            a, DiagnosticStatus.WARN, 'lifecycle state unconfigured'), what='unconfigured')
        assert node.lifecycle_state == 'unconfigured' and not node.ready
        assert not detections.messages

        assert transition(harness, 'configure') and transition(harness, 'activate')
        detections.wait_for(lambda msgs: any(m.detections for m in msgs), timeout=30.0,
                            what='detections once active')

        assert transition(harness, 'deactivate')
        assert not node.ready  # the model is freed
        count = len(detections.messages)
        seen = len(diagnostics.messages)
        diagnostics.wait_for(lambda a: len(a) > seen + 2 and detector_status(
            a[seen:], DiagnosticStatus.WARN, 'lifecycle state inactive'), what='inactive')
        assert len(detections.messages) == count  # frames keep coming; nothing published

        assert transition(harness, 'activate')  # and back
        detections.wait_for(lambda msgs: len(msgs) > count, timeout=30.0,
                            what='detections after a second activation')
        assert transition(harness, 'deactivate') and transition(harness, 'cleanup')
        assert node.lifecycle_state == 'unconfigured'
    finally:
        harness.close()


def test_a_dead_worker_thread_is_an_error_on_diagnostics(ros_context, model_path: Path,
                                                         samples_dir: Path,
                                                         monkeypatch) -> None:
    def broken_finish(self, inferred, stamp=None):
        raise RuntimeError('decoder bug')

    harness = Harness(ros_context)
    try:
        diagnostics = harness.subscribe(DiagnosticArray, '/diagnostics')
        monkeypatch.setattr(Detector, 'finish', broken_finish)
        start(harness, samples_dir / 'motorcycle.png', model_path=str(model_path),
              diagnostics_period=0.2)
        arrays = diagnostics.wait_for(lambda a: detector_status(
            a, DiagnosticStatus.ERROR, "detector-publish died: RuntimeError('decoder bug')"),
            timeout=30.0, what='an ERROR naming the dead thread')
        later = len(arrays)
        diagnostics.wait_for(lambda a: len(a) > later + 2, what='more reports')
        # It stays an error, never "running" again.
        assert not detector_status(diagnostics.messages[later:], DiagnosticStatus.OK, '')
    finally:
        harness.close()


def test_the_annotated_image_shows_the_counting_lines(ros_context, model_path: Path,
                                                      samples_dir: Path) -> None:
    """The bridge's traffic_counts status is drawn on detections/image."""
    harness = Harness(ros_context)
    try:
        annotated = harness.subscribe(Image, 'detections/image', qos_profile_sensor_data)
        counts = harness.probe.create_publisher(String, 'traffic_counts', COUNTS_QOS)
        start(harness, samples_dir / 'motorcycle.png', model_path=str(model_path))
        counts.publish(String(data=json.dumps({
            'lines': [{'name': 'bar', 'a': [0, 30], 'b': [200, 30],
                       'directions': ['towards', 'away']}],
            'zones': [], 'total': [{'line': 'bar', 'direction': 'away', 'class_name': 'car',
                                    'count': 7}]})))

        def line_drawn(images: list) -> bool:
            if not images:
                return False
            pixels = to_bgr(images[-1])[30, 100:190]  # on the line, right of its label
            return bool(np.all(np.abs(pixels.astype(int) - LINE_COLOUR) < 40))

        annotated.wait_for(line_drawn, what='the counting line on detections/image')
    finally:
        harness.close()


def test_what_stops_activation_is_found_from_the_files(tmp_path: Path) -> None:
    model = tmp_path / 'model.onnx'
    model.write_bytes(b'onnx')
    model_problem, state = node_status.model_problem, node_status.DetectorState
    assert model_problem('') == 'no model_path set'
    assert model_problem(str(tmp_path / 'gone.onnx')) == (
        f'model file {tmp_path / "gone.onnx"} does not exist')
    assert model_problem(str(tmp_path)) == f'model file {tmp_path} is not a file'
    assert model_problem(str(model), str(tmp_path / 'labels.txt')) == (
        f'labels_file {tmp_path / "labels.txt"} does not exist')
    assert model_problem(str(model)) == ''
    # A second system's camera is named whatever the node's own state.
    crowded = '/camera/image_raw has 2 publishers'
    assert node_status.detector_status(state('active', True, crowded=crowded)) == (
        node_status.WARN, f'running; {crowded}')
    level, message = node_status.detector_status(state(
        'inactive', False, activation_error='no model_path set', crowded=crowded))
    assert level == node_status.ERROR and message.endswith(crowded)
    assert 'no model_path set' in message
