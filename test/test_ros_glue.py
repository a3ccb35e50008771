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

"""Unit tests of the ROS glue that needs no running graph: images, parameters, transport."""

from __future__ import annotations

import os

import numpy as np
import pytest
from rcl_interfaces.msg import ParameterType
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import Image

from vehicle_detection.core.camera.config import CAMERA_PARAMS
from vehicle_detection.core.detection.node_config import DETECTOR_PARAMS
from vehicle_detection.core.params import spec_map
from vehicle_detection.core.system.config_file import ConfigError, node_parameters, parse_override
from vehicle_detection.ros import transport
from vehicle_detection.ros.image_conv import (
    image_view, ImageEncodingError, stamp_from_ns, stamp_to_ns, to_bgr, to_image_msg)
from vehicle_detection.ros.parameters import descriptor


def test_image_round_trip_through_serialization() -> None:
    frame = np.random.default_rng(0).integers(0, 255, (37, 53, 3), dtype=np.uint8)
    msg = to_image_msg(frame, stamp_from_ns(1_700_000_000_123_456_789), 'cam')
    back = deserialize_message(serialize_message(msg), Image)
    assert back.step == 53 * 3 and back.encoding == 'bgr8'
    assert stamp_to_ns(back.header.stamp) == 1_700_000_000_123_456_789
    view = to_bgr(back)
    assert np.array_equal(view, frame)
    assert not view.flags.owndata  # a view of the message buffer, not a copy


def test_padded_rows_and_other_encodings() -> None:
    rgb = np.zeros((4, 5, 3), np.uint8)
    rgb[..., 0] = 200  # red in RGB
    msg = to_image_msg(rgb, stamp_from_ns(0), 'cam', encoding='rgb8')
    assert to_bgr(msg)[0, 0].tolist() == [0, 0, 200]
    padded = Image(height=2, width=3, encoding='mono8', step=4)
    padded.data = bytes([1, 2, 3, 99, 4, 5, 6, 99])
    assert image_view(padded).tolist() == [[1, 2, 3], [4, 5, 6]]
    assert to_bgr(padded).shape == (2, 3, 3)


def test_bad_images_are_refused_with_reasons() -> None:
    with pytest.raises(ImageEncodingError, match='unsupported image encoding'):
        image_view(Image(height=1, width=1, encoding='yuv422', step=2))
    short = Image(height=10, width=10, encoding='bgr8', step=30)
    short.data = bytes(29)
    with pytest.raises(ImageEncodingError, match='do not hold the pixels'):
        image_view(short)
    with pytest.raises(ImageEncodingError, match='uint8'):
        to_image_msg(np.zeros((2, 2), np.float32), stamp_from_ns(0), 'cam')


def test_descriptors_carry_ranges_and_descriptions() -> None:
    specs = spec_map(CAMERA_PARAMS)
    fps = descriptor(specs['fps'])
    assert fps.type == ParameterType.PARAMETER_DOUBLE
    assert (fps.floating_point_range[0].from_value, fps.floating_point_range[0].to_value) == (
        0.0, 240.0)
    width = descriptor(specs['width'])
    assert width.integer_range[0].to_value == 8192
    assert descriptor(specs['qos_depth']).read_only
    assert all(descriptor(spec).description for spec in CAMERA_PARAMS)


def test_config_file_and_overrides(tmp_path) -> None:
    config = tmp_path / 'config.yaml'
    config.write_text('camera_node:\n  ros__parameters:\n    fps: 5.0\n    source: "2"\n')
    specs = {'camera_node': CAMERA_PARAMS}
    params = node_parameters(specs, str(config), ['camera_node.fps=7', 'camera_node.loop=true'])
    assert params == {'camera_node': {'fps': 7.0, 'source': '2', 'loop': True}}
    with pytest.raises(ConfigError, match=r'node camera_node: fps: 500\.0 is above'):
        node_parameters(specs, str(config), ['camera_node.fps=500.0'])
    with pytest.raises(ConfigError, match="unknown node 'detector'"):
        node_parameters(specs, str(config), ['detector.x=1'])
    with pytest.raises(ConfigError, match=r'expected node\.param=value'):
        parse_override('fps=3')
    config.write_text('camera_node: {fps: 3}\n')
    with pytest.raises(ConfigError, match='ros__parameters'):
        node_parameters(specs, str(config))
    with pytest.raises(ConfigError, match='cannot read config file'):
        node_parameters(specs, str(tmp_path / 'missing.yaml'))


def test_config_file_sections_as_ros_writes_them(tmp_path) -> None:
    """/** for every node, merged under node sections; /name, /**/name; use_sim_time."""
    config = tmp_path / 'config.yaml'
    config.write_text(
        '/**:\n  ros__parameters:\n    use_sim_time: true\n    fps: 4.0\n'
        '/camera_node:\n  ros__parameters:\n    fps: 5.0\n'
        '/**/camera_node:\n  ros__parameters:\n    loop: true\n')
    specs = {'camera_node': CAMERA_PARAMS, 'detector_node': DETECTOR_PARAMS}
    params = node_parameters(specs, str(config), ['**.use_sim_time=false',
                                                  'detector_node.use_sim_time=true'])
    assert params['camera_node'] == {'use_sim_time': False, 'fps': 5.0, 'loop': True}
    assert params['detector_node'] == {'use_sim_time': True}  # the detector has no fps
    config.write_text('/**:\n  ros__parameters:\n    fsp: 4.0\n')
    with pytest.raises(ConfigError, match='section /\\*\\*: no node has fsp'):
        node_parameters(specs, str(config))
    config.write_text('/**:\n  ros__parameters:\n    use_sim_time: 1.5\n')
    with pytest.raises(ConfigError, match='use_sim_time: expected bool'):
        node_parameters(specs, str(config))
    config.write_text('/front/camera_node:\n  ros__parameters:\n    fps: 4.0\n')
    with pytest.raises(ConfigError, match="section '/front/camera_node': expected a node name"):
        node_parameters(specs, str(config))


def test_transport_tuning_respects_user_choices(monkeypatch) -> None:
    monkeypatch.delenv('FASTDDS_DEFAULT_PROFILES_FILE', raising=False)
    monkeypatch.delenv('FASTRTPS_DEFAULT_PROFILES_FILE', raising=False)
    monkeypatch.delenv('RMW_IMPLEMENTATION', raising=False)
    assert transport.use_large_image_profile()
    assert os.environ['FASTDDS_DEFAULT_PROFILES_FILE'] == str(transport.PROFILE)
    assert transport.PROFILE.is_file()
    monkeypatch.setenv('FASTDDS_DEFAULT_PROFILES_FILE', '/user/profile.xml')
    assert not transport.use_large_image_profile()
    assert os.environ['FASTDDS_DEFAULT_PROFILES_FILE'] == '/user/profile.xml'
    monkeypatch.delenv('FASTDDS_DEFAULT_PROFILES_FILE')
    monkeypatch.setenv('RMW_IMPLEMENTATION', 'rmw_cyclonedds_cpp')
    assert not transport.use_large_image_profile()
    assert transport.tune_allocator()  # glibc here
