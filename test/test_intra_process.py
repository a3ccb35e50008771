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

"""In-process frame hand-over between composed nodes, and DDS for everyone else."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rclpy.context import Context
from rclpy.parameter import Parameter
from rclpy.qos import qos_profile_sensor_data
from ros_helpers import Harness
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from vehicle_detection.nodes.camera_node import CameraNode
from vehicle_detection.nodes.detector_node import DetectorNode
from vehicle_detection.ros.image_conv import stamp_from_ns, stamp_to_ns, to_bgr, to_image_msg
from vehicle_detection.ros.intra_process import ImageInput, ImageOutput
from vision_msgs.msg import Detection2DArray
from waiting import Inbox, wait_until

pytestmark = pytest.mark.ros
TOPIC = 'camera/image_raw'


def frame(seq: int) -> tuple:
    """Return a small distinct frame and its header."""
    image = np.full((48, 64, 3), seq, np.uint8)
    return image, Header(stamp=stamp_from_ns(seq * 1_000_000), frame_id='cam')


def classes(arrays: list) -> set:
    """Return the class names found in Detection2DArray messages."""
    return {d.results[0].hypothesis.class_id for a in arrays for d in a.detections}


def other_participant(domain_id: int) -> Harness:
    """Start a second rclpy context here: another DDS participant, as another process is."""
    import rclpy
    context = Context()
    rclpy.init(context=context, domain_id=domain_id)
    return Harness(context, 'other')


def test_local_frames_skip_dds_until_someone_else_subscribes(ros_context, domain_id) -> None:
    harness = Harness(ros_context)
    other = None
    try:
        output = ImageOutput(harness.probe, TOPIC, qos_profile_sensor_data)
        local: Inbox = Inbox()
        image_input = ImageInput(harness.probe, TOPIC, qos_profile_sensor_data, local)
        wait_until(lambda: output.matched_subscriptions == 1, what='the local subscription')
        first, header = frame(1)
        assert output.publish(first, header) is False  # only a local subscriber: no DDS
        received = local.wait_count(1)[0]
        assert received.array is first and received.msg is None and received.header is header
        assert not first.flags.writeable  # shared: nobody may change it

        other = other_participant(domain_id)
        remote: Inbox = Inbox()
        subscription = other.probe.create_subscription(Image, TOPIC, remote,
                                                       qos_profile_sensor_data)
        wait_until(lambda: output.matched_subscriptions == 2
                   and subscription.get_publisher_count() == 1, what='the other subscription')
        sent = [frame(seq) for seq in (2, 3)]
        assert all(output.publish(image, header) for image, header in sent)
        messages = remote.wait_count(2)
        assert [stamp_to_ns(m.header.stamp) for m in messages] == [2_000_000, 3_000_000]
        assert all((to_bgr(m) == image).all() for m, (image, _) in zip(messages, sent))
        # The local input also gets the DDS copies, and drops them.
        wait_until(lambda: image_input.duplicates == 2, what='the DDS copies to be dropped')
        assert [stamp_to_ns(r.header.stamp) for r in local.messages] == [
            1_000_000, 2_000_000, 3_000_000]
        assert (image_input.in_process, image_input.over_dds) == (3, 0)

        # A frame from another participant comes over DDS, once.
        image, header = frame(4)
        publisher = other.probe.create_publisher(Image, TOPIC, qos_profile_sensor_data)
        wait_until(lambda: publisher.get_subscription_count() == 2, what='matching')
        publisher.publish(to_image_msg(image, header.stamp, 'cam'))
        from_dds = local.wait_count(4)[3]
        assert from_dds.array is None and (from_dds.bgr() == image).all()
        assert image_input.over_dds == 1
        image_input.close()
    finally:
        harness.close()
        if other is not None:
            other.close()
            other.context.try_shutdown()


def test_composed_camera_and_detector_hand_frames_over_in_process(
        ros_context, model_path: Path, samples_dir: Path) -> None:
    harness = Harness(ros_context)
    try:
        detections = harness.subscribe(Detection2DArray, 'detections')
        detector = harness.add(DetectorNode(context=ros_context, parameter_overrides=[
            Parameter('model_path', value=str(model_path))]))
        harness.add(CameraNode(context=ros_context, parameter_overrides=[
            Parameter('source', value=str(samples_dir)), Parameter('loop', value=True),
            # Two photos in turn: at 10 fps a detector that takes two frame times (a
            # loaded CI box) saw the same photo every time; at 3 fps it sees both.
            Parameter('fps', value=3.0)]))
        arrays = detections.wait_for(lambda msgs: {'motorcycle', 'bicycle'} <= classes(msgs),
                                     timeout=60.0, what='the vehicles of both photos')
        assert detector.image_input.in_process >= len(arrays)
        assert detector.image_input.over_dds == detector.image_input.duplicates == 0
    finally:
        harness.close()


def test_a_strided_frame_is_handed_over_contiguous(ros_context) -> None:
    harness = Harness(ros_context)
    try:
        output = ImageOutput(harness.probe, TOPIC, qos_profile_sensor_data)
        local: Inbox = Inbox()
        ImageInput(harness.probe, TOPIC, qos_profile_sensor_data, local)
        image, header = frame(5)
        image[:, ::2] = 200
        crop = image[:, 1::2]  # a view with strides, as a crop of a larger frame is
        output.publish(crop, header)
        received = local.wait_count(1)[0].bgr()
        assert received.flags.c_contiguous and (received == crop).all()
    finally:
        harness.close()
