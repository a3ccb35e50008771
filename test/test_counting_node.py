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

"""Traffic counting in the cloud bridge node: real topics, the real server, real bags."""

from __future__ import annotations

from datetime import datetime
import json
from pathlib import Path
import threading

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
import numpy as np
from rcl_interfaces.msg import Log
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
import requests
from ros_helpers import diagnostic_values, Harness
from sensor_msgs.msg import Image
from std_msgs.msg import String
from test_cloud_bridge_node import cloud, start_bridge  # noqa: F401 (cloud: a fixture)

from vehicle_detection.core.detection.detections import Detections
from vehicle_detection.ros.detection_msgs import to_detection_array
from vehicle_detection.ros.image_conv import stamp_from_ns, to_image_msg
from vehicle_detection.ros.qos import COUNTS_QOS
from vision_msgs.msg import Detection2DArray
from waiting import wait_until

START_NS = 1_700_000_000_000_000_000  # on a 10 s boundary: one period of the test
RELIABLE = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
ROSOUT_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE,
                        durability=DurabilityPolicy.TRANSIENT_LOCAL)


def frame(seq: int, stamp_ns: int, vehicles: list) -> tuple:
    """Return an image and its detections: (track, class, box) per vehicle."""
    image = to_image_msg(np.full((240, 320, 3), 60, np.uint8), stamp_from_ns(stamp_ns), 'cam')
    boxes = np.array([box for _, _, box in vehicles], np.float32).reshape(-1, 4)
    detections = Detections(boxes, np.full(len(vehicles), 0.8, np.float32),
                            np.zeros(len(vehicles), np.int64), [c for _, c, _ in vehicles],
                            np.array([t for t, _, _ in vehicles], np.int64))
    return image, to_detection_array(detections, image.header)


def test_counts_topic_cloud_and_stopped_vehicle(ros_context, cloud, tmp_path: Path,  # noqa: F811
                                                monkeypatch) -> None:
    """Counts, a stopped vehicle and a wrong-way driver, through the outbox to the server."""
    server, key = cloud
    monkeypatch.setenv('VD_CLOUD_API_KEY', key)
    harness = Harness(ros_context)
    try:
        node = start_bridge(harness, server.url, tmp_path, image_reliability='reliable',
                            count_period=10,
                            counting_lines='bar 0,0.5 1,0.5 towards/away oneway=away',
                            counting_zones='shoulder 0.75,0 1,0 1,1 0.75,1 dwell=1.5')
        images = harness.probe.create_publisher(Image, 'camera/image_raw', RELIABLE)
        detections = harness.probe.create_publisher(Detection2DArray, 'detections', RELIABLE)
        counts = harness.subscribe(String, 'traffic_counts', COUNTS_QOS)
        diagnostics = harness.subscribe(DiagnosticArray, 'diagnostics')
        diagnostics.wait_count(1)  # discovery done
        pace = threading.Event()
        # 3 s at 10 fps: a car drives down across the line (y 60 -> 210: the wrong way), a
        # van stands on the shoulder; then one frame of the next period closes this one.
        for seq in [*range(30), 100]:
            vehicles = [(5, 'truck', (260.0, 100.0, 300.0, 140.0))]
            bottom = 60.0 + 5 * seq
            if seq < 30:
                vehicles.append((4, 'car', (100.0, bottom - 40, 140.0, bottom)))
            image, array = frame(seq, START_NS + seq * 100_000_000, vehicles)
            images.publish(image)
            detections.publish(array)
            pace.wait(0.1)  # the camera's rate: the bridge keeps the last 10 detections
        stopped = wait_until_alert(server.url, 'stopped_vehicle')
        assert (stopped['zone'], stopped['track_id'], stopped['class_name']) == (
            'shoulder', 5, 'truck')
        assert stopped['image_url']  # with the frame's snapshot
        wrong = wait_until_alert(server.url, 'wrong_way')
        assert (wrong['line'], wrong['direction'], wrong['track_id'], wrong['class_name'],
                wrong['zone']) == ('bar', 'towards', 4, 'car', None)
        crossed = START_NS / 1e9 + 1.5  # its bottom clears the line's band (y 131) at 1.5 s
        seen = datetime.fromisoformat(wrong['detected_at'].replace('Z', '+00:00')).timestamp()
        assert 0.0 < seen - crossed <= 2.0  # the snapshot of the frame that confirmed it
        series = wait_counts(server.url, 'gate-1')
        assert [(r['line'], r['direction'], r['class_name'], r['count'])
                for r in series['rows']] == [('bar', 'towards', 'car', 1)]
        assert series['coverage'][0]['seconds'] == 10
        latest = json.loads(counts.wait_for(lambda m: any(
            json.loads(x.data)['total'] for x in m), what='counts on the topic')[-1].data)
        assert latest['total'] == [{'line': 'bar', 'direction': 'towards', 'class_name': 'car',
                                    'count': 1}]
        assert latest['lines'][0]['a'] == [0.0, 120.0]  # fractions of the 320x240 picture
        status = diagnostics.wait_for(lambda msgs: any(
            diagnostic_values(s).get('counted_bar_towards') == '1'
            for m in msgs for s in m.status), what='counts on /diagnostics')
        assert status
        refused = node.set_parameters([Parameter('counting_lines', value='bar 0,0.5')])[0]
        assert not refused.successful and 'expected NAME X1,Y1 X2,Y2' in refused.reason
    finally:
        harness.close()


def wait_until_alert(url: str, kind: str) -> dict:
    found: list = []

    def arrived() -> bool:
        found[:] = [a for a in requests.get(f'{url}/api/v1/alerts', timeout=5).json()['items']
                    if a['kind'] == kind and a['image_url']]
        return bool(found)

    wait_until(arrived, timeout=20, what=f'a {kind} alert', poll=0.1)
    return found[0]


def wait_counts(url: str, device: str) -> dict:
    series: dict = {}

    def arrived() -> bool:
        series.update(requests.get(f'{url}/api/v1/counts', timeout=5, params={
            'device': device, 'from': '2023-11-14T22:13:00Z', 'to': '2023-11-14T22:14:00Z',
            'bucket': '1min'}).json())
        return bool(series['rows'])

    wait_until(arrived, timeout=20, what='counts on the server', poll=0.1)
    return series


def test_counting_without_images_or_track_ids_says_why(ros_context, tmp_path: Path) -> None:
    """Lines in pixels need no image; fractions wait for one; untracked boxes are not counted."""
    harness = Harness(ros_context)
    try:
        node = start_bridge(harness, 'http://127.0.0.1:9', tmp_path, enabled=False,
                            diagnostics_period=0.2,
                            counting_lines='bar 0,0.5 1,0.5 towards/away')
        detections = harness.probe.create_publisher(Detection2DArray, 'detections', RELIABLE)
        counts = harness.subscribe(String, 'traffic_counts', COUNTS_QOS)
        diagnostics = harness.subscribe(DiagnosticArray, 'diagnostics')
        diagnostics.wait_count(1)  # discovery done

        def drive(track: int, first_seq: int) -> None:
            for seq in range(first_seq, first_seq + 12):  # down across y = 120
                bottom = 60.0 + 10 * (seq - first_seq)
                _, array = frame(seq, START_NS + seq * 100_000_000,
                                 [(track, 'car', (100.0, bottom - 40, 140.0, bottom))])
                detections.publish(array)

        def warned(text: str):
            return lambda msgs: any(s.level == DiagnosticStatus.WARN and text in s.message
                                    for m in msgs[-3:] for s in m.status)

        drive(4, 0)  # no image has come: fractions cannot be put in pixels
        diagnostics.wait_for(warned('counting waits for an image on camera/image_raw'),
                             what='a warning that counting waits for an image')
        pixels = Parameter('counting_lines', value='bar 0,120 320,120 towards/away')
        assert node.set_parameters([pixels])[0].successful
        drive(5, 20)  # in pixels: counted without any image
        latest = counts.wait_for(lambda m: any(json.loads(x.data)['total'] for x in m),
                                 what='the crossing on traffic_counts')[-1]
        assert json.loads(latest.data)['total'][0]['count'] == 1
        # The frame that counted it (bottom 140, past the line's band): a recording of the
        # statuses (validate record) places the crossing there.
        assert json.loads(latest.data)['stamp'] == (START_NS + 28 * 100_000_000) / 1e9
        drive(-1, 40)  # the detector tracks nothing
        diagnostics.wait_for(warned('counting needs track ids'),
                             what='a warning that counting needs track ids')
    finally:
        harness.close()


def test_a_line_outside_the_first_image_is_a_warning_naming_it(ros_context,
                                                               tmp_path: Path) -> None:
    """A line in pixels beyond the picture could never count: said once, and on /diagnostics."""
    harness = Harness(ros_context)
    try:
        start_bridge(harness, 'http://127.0.0.1:9', tmp_path, enabled=False,
                     diagnostics_period=0.2, image_reliability='reliable',
                     counting_lines='out 0,500 426,500 towards/away; road 0,0.5 1,0.5')
        images = harness.probe.create_publisher(Image, 'camera/image_raw', RELIABLE)
        diagnostics = harness.subscribe(DiagnosticArray, 'diagnostics')
        log = harness.subscribe(Log, '/rosout', ROSOUT_QOS)
        diagnostics.wait_count(1)
        warning = "line 'out' (0,500 426,500) lies outside the 426x320 image: it can never count"
        assert not any(warning in s.message for m in diagnostics.messages for s in m.status)
        picture = to_image_msg(np.zeros((320, 426, 3), np.uint8), stamp_from_ns(START_NS), 'cam')
        for _ in range(3):  # the same size again: nothing new to say
            images.publish(picture)
        diagnostics.wait_for(lambda msgs: any(
            s.level == DiagnosticStatus.WARN and warning in s.message
            for m in msgs[-3:] for s in m.status), what='a WARN naming the line and the size')
        seen = len(diagnostics.messages)
        diagnostics.wait_count(seen + 5)  # a second of reports: the log said it once
        said = [m for m in log.messages if m.name == 'cloud_bridge_node' and warning in m.msg]
        assert len(said) == 1 and said[0].level == Log.WARN, [m.msg for m in said]
        assert "'road'" not in said[0].msg  # fractions fit every image
    finally:
        harness.close()
