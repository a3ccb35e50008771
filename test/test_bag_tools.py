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

"""rosbag2 tools without ROS: bags written and read back, detection comparison."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import Image

from vehicle_detection.core.system.bag_tools import compare, count_messages, load_records, make_bag
from vehicle_detection.core.system.bag_tools import read_images
from vehicle_detection.ros.image_conv import stamp_to_ns, to_bgr


@pytest.mark.parametrize('storage', ['sqlite3', 'mcap'])
def test_bag_round_trip(tmp_path: Path, storage: str) -> None:
    frames = [np.full((48, 64, 3), value, np.uint8) for value in (10, 20, 30)]
    bag = tmp_path / 'bag'
    assert make_bag('', str(bag), 4.0, storage=storage, start_ns=5 * 10**9,
                    frames=iter(frames)) == 3
    assert count_messages(str(bag)) == 3
    read = list(read_images(str(bag)))
    assert [t for t, _ in read] == [5 * 10**9, 5_250_000_000, 5_500_000_000]
    for (timestamp, raw), frame in zip(read, frames):
        message = deserialize_message(raw, Image)  # the CDR ROS 2 itself reads
        assert stamp_to_ns(message.header.stamp) == timestamp
        assert message.encoding == 'bgr8' and np.array_equal(to_bgr(message), frame)
    with pytest.raises(ValueError, match='no topic /other'):
        list(read_images(str(bag), '/other'))


def test_bag_from_an_image_folder(samples_dir: Path, tmp_path: Path) -> None:
    assert make_bag(str(samples_dir), str(tmp_path / 'bag'), 2.0) == 2


def test_compare_counts_matches_by_class_and_iou(tmp_path: Path) -> None:
    car = {'class_name': 'car', 'bbox': [0, 0, 10, 10]}
    moved = {'class_name': 'car', 'bbox': [1, 0, 11, 10]}  # IoU 0.82
    bus = {'class_name': 'bus', 'bbox': [0, 0, 10, 10]}
    result = compare({1: [moved, bus], 2: []}, {1: [car], 2: [car]})
    assert (result.true_positives, result.false_positives, result.false_negatives) == (1, 1, 1)
    assert result.precision == 0.5 and result.recall == 0.5 and result.frames == 2
    path = tmp_path / 'run.jsonl'
    path.write_text(json.dumps({'stamp_ns': 1, 'detections': [car]}) + '\n\nnot json\n')
    with pytest.raises(ValueError, match=r'run\.jsonl:3'):
        load_records(str(path))
