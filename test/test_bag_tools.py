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

"""rosbag2 tools: bags written and read back, videos sampled like a camera, comparison."""

from __future__ import annotations

import json
from pathlib import Path
import subprocess
import sys
import time
from typing import Dict, List, Optional

import cv2
import numpy as np
import pytest
from rclpy.serialization import deserialize_message
from ros_cli import Terminal
from sensor_msgs.msg import CameraInfo, Image

from vehicle_detection.core.system.bag_compare import compare, FrameRecord, load_records
from vehicle_detection.core.system.bag_tools import (
    bag_topics, count_messages, header_stamp_ns, make_bag, read_images, read_messages)
from vehicle_detection.ros.image_conv import stamp_to_ns, to_bgr

CLI = str(Path(sys.prefix) / 'bin' / 'vehicle-detection')
REPO = Path(__file__).resolve().parents[1]
CLIP = 'highway_bridge_jitter.mp4'  # 29.97 fps, 570 frames, 426x320


def cli(*args: str, env: Optional[Dict[str, str]] = None,
        timeout: float = 120) -> subprocess.CompletedProcess:
    """Run ``vehicle-detection ARGS`` as typed."""
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=timeout,
                          env=env)


@pytest.mark.parametrize('storage', ['sqlite3', 'mcap'])
def test_bag_round_trip(tmp_path: Path, storage: str) -> None:
    frames = [np.full((48, 64, 3), value, np.uint8) for value in (10, 20, 30)]
    bag = tmp_path / 'bag'
    assert make_bag('', str(bag), 4.0, storage=storage, start_ns=5 * 10**9,
                    frames=iter(frames)) == 3
    assert count_messages(str(bag)) == 3
    assert bag_topics(str(bag)) == [('/camera/camera_info', 'sensor_msgs/msg/CameraInfo'),
                                    ('/camera/image_raw', 'sensor_msgs/msg/Image')]
    read = list(read_images(str(bag)))
    assert [t for t, _ in read] == [5 * 10**9, 5_250_000_000, 5_500_000_000]
    for (timestamp, raw), frame in zip(read, frames):
        message = deserialize_message(raw, Image)  # the CDR ROS 2 itself reads
        assert stamp_to_ns(message.header.stamp) == timestamp == header_stamp_ns(raw)
        assert message.encoding == 'bgr8' and np.array_equal(to_bgr(message), frame)
    infos = [deserialize_message(raw, CameraInfo)
             for _, _, _, raw in read_messages(str(bag), ['/camera/camera_info'])]
    assert [(i.width, i.height, stamp_to_ns(i.header.stamp)) for i in infos] == [
        (64, 48, t) for t, _ in read]
    with pytest.raises(ValueError, match='no topic /other'):
        list(read_images(str(bag), '/other'))


def test_bag_from_an_image_folder(samples_dir: Path, tmp_path: Path) -> None:
    assert make_bag(str(samples_dir), str(tmp_path / 'bag'), 2.0) == 2


def test_bag_make_samples_a_video_like_a_camera(samples_dir: Path, tmp_path: Path) -> None:
    """At --fps 10 a 29.97 fps clip keeps real time: every third frame, on its timeline."""
    clip = samples_dir / CLIP
    made = cli('bag', 'make', str(clip), str(tmp_path / 'ten'), '--fps', '10',
               '--storage', 'mcap')
    assert made.returncode == 0, made.stderr
    stamps = np.array([t for t, _ in read_images(str(tmp_path / 'ten'))])
    assert 189 <= len(stamps) <= 191, len(stamps)  # 570 frames / 2.997
    span = (stamps[-1] - stamps[0]) / 1e9
    assert 18.9 <= span <= 19.0, span  # the clip lasts 570 / 29.97 = 19.02 s
    gaps = np.diff(stamps) / 1e9
    assert np.median(gaps) == pytest.approx(3 / 29.97, abs=1e-4)  # three source frames
    # Each stamp is a source frame's own moment: start + frame number / 29.97.
    offsets = (stamps - stamps[0]) / 1e9 * 29.97
    assert np.abs(offsets - np.round(offsets)).max() < 1e-3
    # The picture at each stamp is that source frame.
    source = cv2.VideoCapture(str(clip))
    wanted = {round(o) for o in offsets[:4]}
    pictures = []
    for index in range(max(wanted) + 1):
        _, frame = source.read()
        if index in wanted:
            pictures.append(frame)
    source.release()
    for (_, raw), picture in zip(read_images(str(tmp_path / 'ten')), pictures):
        assert np.array_equal(to_bgr(deserialize_message(raw, Image)), picture)
    # The old way stays available: every frame, one per 1/fps (3x slower than real).
    slow = cli('bag', 'make', str(clip), str(tmp_path / 'slow'), '--fps', '10',
               '--pace', 'every_frame', '--storage', 'mcap')
    assert slow.returncode == 0 and 'wrote 570 frames' in slow.stdout, slow.stderr
    stamps = [t for t, _ in read_images(str(tmp_path / 'slow'))]
    assert (stamps[-1] - stamps[0]) / 1e9 == pytest.approx(56.9)


def test_compare_counts_matches_by_class_and_iou(tmp_path: Path) -> None:
    car = {'class_name': 'car', 'bbox': [0, 0, 10, 10]}
    moved = {'class_name': 'car', 'bbox': [1, 0, 11, 10]}  # IoU 0.82
    bus = {'class_name': 'bus', 'bbox': [0, 0, 10, 10]}
    result = compare([FrameRecord([moved, bus], 1), FrameRecord([], 2)],
                     [FrameRecord([car], 1), FrameRecord([car], 2)])
    assert (result.true_positives, result.false_positives, result.false_negatives) == (1, 1, 1)
    assert result.precision == 0.5 and result.recall == 0.5 and result.frames == 2
    assert result.joined_by == 'stamp'
    path = tmp_path / 'run.jsonl'
    path.write_text(json.dumps({'stamp_ns': 1, 'detections': [car]}) + '\n\nnot json\n')
    with pytest.raises(ValueError, match=r'run\.jsonl:3'):
        load_records(str(path))


def write_lines(path: Path, records: List[dict]) -> str:
    path.write_text(''.join(json.dumps(r) + '\n' for r in records))
    return str(path)


def test_bag_compare_joins_frames_or_fails(tmp_path: Path) -> None:
    car = {'class_name': 'car', 'bbox': [0, 0, 10, 10]}
    truck = {'class_name': 'truck', 'bbox': [20, 0, 40, 10]}
    # Two bags of one clip: different stamps, the same moments of the video.
    first = write_lines(tmp_path / 'a.jsonl', [
        {'stamp_ns': 10**18 + i * 10**8, 'frame': i, 'time_s': i / 10,
         'detections': [car, truck]} for i in range(10)])
    second = write_lines(tmp_path / 'b.jsonl', [
        {'stamp_ns': 5 * 10**18 + i * 10**8, 'frame': i, 'time_s': i / 10,
         'detections': [car, truck]} for i in range(10) if i != 4])  # one frame lost
    result = cli('bag', 'compare', second, first)
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'frames 9 (joined by time since the start of the recording)' in result.stdout
    assert 'precision 1.000, recall 1.000' in result.stdout
    # `detect` of every frame of the 30 fps video: every third frame meets the replay.
    detect = write_lines(tmp_path / 'detect.jsonl', [
        {'frame': i, 'time_s': round(i / 29.97, 6), 'width': 64, 'height': 48,
         'detections': [car, truck]} for i in range(30)])
    result = cli('bag', 'compare', first, detect)
    assert result.returncode == 0 and 'frames 10 (joined by time' in result.stdout, (
        result.stdout)
    # Half the reference's vehicles missed: below the default --min-recall.
    half = write_lines(tmp_path / 'half.jsonl', [
        {'stamp_ns': 10**18 + i * 10**8, 'detections': [car]} for i in range(10)])
    result = cli('bag', 'compare', half, first)
    assert result.returncode == 1 and 'recall 0.500' in result.stdout, result.stdout
    assert 'FAIL recall 0.500 < 0.9' in result.stdout
    assert cli('bag', 'compare', half, first, '--min-recall', '0.5').returncode == 0
    # Nothing to join: stamps differ, no time or frame numbers, not as many frames.
    other = write_lines(tmp_path / 'other.jsonl', [
        {'stamp_ns': 7 * 10**18 + i, 'detections': [car]} for i in range(7)])
    result = cli('bag', 'compare', half, other)
    assert result.returncode == 1, result.stdout
    assert 'FAIL no common frames: 10 replayed, 7 in the reference' in result.stdout


def test_replays_of_two_bags_of_one_clip_and_detect_agree(
        samples_dir: Path, model_path: Path, tmp_path: Path, ros_env: Dict[str, str]) -> None:
    """The issue's case: two bags made from one clip share no stamp (was 0.000, exit 0)."""
    short = tmp_path / 'short.avi'  # the clip's first 2 s, at its own rate
    capture = cv2.VideoCapture(str(samples_dir / CLIP))
    writer = cv2.VideoWriter(str(short), cv2.VideoWriter_fourcc(*'MJPG'), 29.97, (426, 320))
    for _ in range(60):
        writer.write(capture.read()[1])
    writer.release()
    capture.release()
    for name in ('a', 'b'):
        made = cli('bag', 'make', str(short), str(tmp_path / name), '--fps', '10')
        assert made.returncode == 0 and 'wrote 20 frames' in made.stdout, made.stdout
    detected = cli('detect', str(short), '--model', str(model_path), '--output',
                   str(tmp_path / 'detect.jsonl'))
    assert detected.returncode == 0, detected.stderr
    command = [CLI, 'run', '--replay', '--config', str(REPO / 'config' / 'config.yaml'),
               '--model', str(model_path), '--quiet', '--set', 'cloud_bridge_node.enabled=false',
               '--set', f'cloud_bridge_node.data_dir={tmp_path / "edge"}']
    with Terminal(command, ros_env) as system:
        system.wait_for('detector ready')
        for name in ('a', 'b'):
            played = cli('bag', 'play', str(tmp_path / name), '--record',
                         str(tmp_path / f'{name}.jsonl'), env=ros_env)
            assert played.returncode == 0 and '20/20' in played.stderr, played.stderr
        system.interrupt()
    runs = [load_records(str(tmp_path / f'{name}.jsonl')) for name in ('a', 'b')]
    assert not {r.stamp_ns for r in runs[0]} & {r.stamp_ns for r in runs[1]}
    assert sum(len(r.detections) for r in runs[0]) >= 20  # the road is busy
    result = cli('bag', 'compare', str(tmp_path / 'b.jsonl'), str(tmp_path / 'a.jsonl'))
    assert result.returncode == 0, result.stdout
    assert 'joined by time since the start of the recording' in result.stdout
    result = cli('bag', 'compare', str(tmp_path / 'a.jsonl'), str(tmp_path / 'detect.jsonl'))
    assert result.returncode == 0, result.stdout
    assert 'joined by time since the start of the recording' in result.stdout


@pytest.mark.ros
def test_play_waits_for_its_subscribers_then_says_it_plays_without_them(
        tmp_path: Path, ros_env: Dict[str, str]) -> None:
    bag = tmp_path / 'bag'
    make_bag('', str(bag), 10.0, frames=iter([np.zeros((48, 64, 3), np.uint8)] * 3))
    started = time.monotonic()
    played = cli('bag', 'play', str(bag), '--subscribers', '2', '--settle', '1', env=ros_env)
    assert played.returncode == 0, played.stderr
    assert 'warning: 0 of 2 subscribers of /camera/image_raw matched in 1 s' in played.stderr
    assert time.monotonic() - started >= 1.0  # it waited its --settle for them
    refused = cli('bag', 'play', str(bag), '--subscribers', '-1', env=ros_env)
    assert refused.returncode == 2 and '--subscribers not negative' in refused.stderr
