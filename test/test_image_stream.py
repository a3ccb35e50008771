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

"""Frames from a camera in another process with stock settings, as doctor reports them."""

from __future__ import annotations

from pathlib import Path
import subprocess
import sys
from typing import Dict

import cv2
import numpy as np
import pytest
from ros_cli import Terminal

from vehicle_detection.core.system.image_stream import (
    camera_info_topic, check_image_stream, check_socket_buffers, lost_share,
    read_socket_buffers, sent_by_numbers, StreamSample)

BIN = Path(sys.prefix) / 'bin'
STOCK_CAMERA = Path(__file__).with_name('stock_camera.py')
PROFILE = Path('/profile.xml')
SECOND = 10**9


def sample(stamps, publishers=('best_effort',), reliability='best_effort') -> StreamSample:
    return StreamSample('/camera/image_raw', 3.0, reliability, stamps, 2764800, publishers)


def test_lost_share_from_stamp_gaps() -> None:
    every = [i * SECOND // 10 for i in range(30)]
    assert lost_share(every) == 0.0
    assert lost_share(every[::3]) == 0.0  # a slower camera, nothing lost
    holes = [s for i, s in enumerate(every) if i % 5 != 2]  # one frame in five lost
    assert lost_share(holes) == pytest.approx(0.2, abs=0.01)
    assert lost_share(every[:2]) is None


def test_stream_verdicts_name_the_cause_and_the_fix() -> None:
    every = [i * SECOND // 10 for i in range(30)]
    good = check_image_stream(sample(every), PROFILE)
    assert good.ok and not good.warning and '0% lost' in good.detail
    lossy = check_image_stream(sample([s for i, s in enumerate(every) if i % 3]), PROFILE)
    assert lossy.ok and lossy.warning and '31% lost' in lossy.detail  # 20 of 29
    gone = check_image_stream(sample(every[:1]), PROFILE)
    assert not gone.ok and 'lost in transport' in gone.detail
    assert f'FASTDDS_DEFAULT_PROFILES_FILE={PROFILE}' in gone.fix
    reliable = check_image_stream(sample([], publishers=('reliable',)), PROFILE)
    assert 'image_reliability: reliable' in reliable.fix
    deaf = check_image_stream(sample([], reliability='reliable'), PROFILE)
    assert not deaf.ok and 'never heard' in deaf.detail
    nobody = check_image_stream(sample([], publishers=()), PROFILE)
    assert nobody.ok and nobody.warning and 'no publisher' in nobody.detail


def test_even_loss_is_counted_against_what_the_publisher_sent() -> None:
    """One frame in five arriving, evenly: the stamps' gaps alone read it as a slow camera."""
    every = [i * SECOND // 10 for i in range(50)]
    publisher = (1, 2, 3)
    fifth = every[::5]
    numbers = [(publisher, 100 + i) for i in range(50)][::5]
    assert sent_by_numbers(numbers) == 46  # frames 100 to 145
    lossy = check_image_stream(StreamSample('/camera/image_raw', 5.0, 'best_effort', fifth,
                                            2764800, ('reliable',), numbers), PROFILE)
    assert not lossy.ok and '78% lost' in lossy.detail, lossy.detail  # 10 of 46
    assert "10 of the 46 frames sent arrived, counted by the publisher's sequence" in lossy.detail
    assert 'the publisher is reliable and this subscription best effort' in lossy.detail
    assert lossy.fix.startswith('its publishers are reliable: set image_reliability: reliable')
    # Without sequence numbers, the camera_info beside the images tells what was sent.
    by_info = check_image_stream(StreamSample('/camera/image_raw', 5.0, 'best_effort', fifth,
                                              2764800, ('best_effort',), camera_infos=50),
                                 PROFILE)
    assert not by_info.ok and '80% lost' in by_info.detail, by_info.detail
    assert 'counted by its camera_info messages' in by_info.detail
    whole = check_image_stream(StreamSample('/camera/image_raw', 5.0, 'best_effort', every,
                                            2764800, ('reliable',),
                                            [(publisher, 100 + i) for i in range(50)]), PROFILE)
    assert whole.ok and not whole.warning and '0% lost' in whole.detail, whole.detail
    assert sent_by_numbers([(publisher, 0), (publisher, 0)]) is None  # not counted
    assert camera_info_topic('/front/camera/image_raw') == '/front/camera/camera_info'


def test_frames_sent_before_the_first_and_after_the_last_arrival_count_as_lost() -> None:
    """Two frames of thirty arrive (CI saw it): their numbers alone say one in three lost."""
    publisher = (4, 5, 6)
    numbers = [(publisher, 12), (publisher, 14)]
    arrivals = [SECOND + 12 * SECOND // 10, SECOND + 14 * SECOND // 10]  # 10 fps here
    assert sent_by_numbers(numbers) == 3  # the span alone
    assert sent_by_numbers(numbers, arrivals, 3.0) == 30  # 10 a second for 3 s
    sample = StreamSample('/camera/image_raw', 3.0, 'best_effort', [0, 2], 2764800,
                          ('reliable',), numbers, arrivals_ns=arrivals)
    lossy = check_image_stream(sample, PROFILE)
    assert not lossy.ok and '93% lost' in lossy.detail, lossy.detail
    # Every frame arriving over the window, with jitter: nothing lost.
    every = [(publisher, 100 + i) for i in range(30)]
    jittered = [i * SECOND // 10 + (i % 3) * SECOND // 200 for i in range(30)]
    whole = check_image_stream(StreamSample('/camera/image_raw', 3.0, 'best_effort',
                                            jittered, 2764800, ('reliable',), every,
                                            arrivals_ns=jittered), PROFILE)
    assert whole.ok and not whole.warning, whole.detail
    # A bag replayed at half speed: its stamps are twice as dense as its arrivals; the
    # pace comes from the arrivals, so nothing reads as lost.
    slow = [i * SECOND // 5 for i in range(15)]
    stamps = [i * SECOND // 10 for i in range(15)]
    replay = check_image_stream(StreamSample('/camera/image_raw', 3.0, 'best_effort', stamps,
                                             2764800, ('reliable',), every[:15],
                                             arrivals_ns=slow), PROFILE)
    assert replay.ok and not replay.warning, replay.detail


def test_socket_buffers_against_one_frame(tmp_path: Path) -> None:
    frame = 1280 * 720 * 3
    assert not check_socket_buffers(frame, 212992, 4 * frame).warning
    small = check_socket_buffers(frame, 212992, 212992)
    assert small.ok and small.warning and f'net.core.rmem_max={4 * frame}' in small.fix
    (tmp_path / 'rmem_default').write_text('212992\n')
    (tmp_path / 'rmem_max').write_text('4194304\n')
    assert read_socket_buffers(tmp_path) == (212992, 4194304)
    assert read_socket_buffers(tmp_path / 'absent') == (0, 0)


@pytest.fixture
def frames_720p(tmp_path: Path) -> Path:
    """Give a folder with one 1280x720 photo-like frame (noise: it does not compress)."""
    folder = tmp_path / 'frames'
    folder.mkdir()
    image = np.random.default_rng(0).integers(0, 255, (720, 1280, 3), np.uint8)
    cv2.imwrite(str(folder / 'frame.png'), image)
    return folder


@pytest.fixture
def stock_env(ros_env: Dict[str, str]) -> Dict[str, str]:
    """Environment of a third-party driver: stock Fast DDS, no profile, no tuning."""
    env = {k: v for k, v in ros_env.items()
           if k not in ('FASTDDS_DEFAULT_PROFILES_FILE', 'FASTRTPS_DEFAULT_PROFILES_FILE')}
    return dict(env, VD_TRANSPORT_TUNING='0')


def camera(frames: Path, env: Dict[str, str], *params: str) -> Terminal:
    """Start a camera node publishing the 720p folder in a loop at 10 fps."""
    terminal = Terminal([str(BIN / 'camera_node'), '--ros-args', '-p', f'source:={frames}',
                         '-p', 'loop:=true', *params], env)
    terminal.wait_for('camera source')
    return terminal


def doctor(env: Dict[str, str], model_path: Path, *extra: str) -> str:
    result = subprocess.run(
        [str(BIN / 'vehicle-detection'), 'doctor', '--listen', '3', '--model', str(model_path),
         '--cloud-url', 'http://127.0.0.1:9', *extra], env=env, capture_output=True,
        text=True, timeout=120)
    return result.stdout


def test_doctor_sees_frames_lost_from_a_stock_camera(frames_720p: Path, stock_env, ros_env,
                                                     model_path: Path) -> None:
    with camera(frames_720p, stock_env) as stock:
        report = doctor(ros_env, model_path)
        stock.interrupt()
    assert 'FAIL  images /camera/image_raw: ' in report, report
    assert 'frames are lost in transport' in report and 'FASTDDS_DEFAULT_PROFILES_FILE=' in report
    # The fix the report gives: the same driver with the package's profile.
    profile = next(line.split('FASTDDS_DEFAULT_PROFILES_FILE=')[1].split()[0]
                   for line in report.splitlines() if 'FASTDDS_DEFAULT_PROFILES_FILE=' in line)
    with camera(frames_720p, dict(stock_env, FASTDDS_DEFAULT_PROFILES_FILE=profile)) as fixed:
        report = doctor(ros_env, model_path)
        fixed.interrupt()
    assert 'OK    images /camera/image_raw: ' in report, report


def test_doctor_says_a_reliable_subscription_cannot_hear_best_effort(
        frames_720p: Path, ros_env, model_path: Path) -> None:
    with camera(frames_720p, ros_env) as tuned:
        report = doctor(ros_env, model_path, '--set', 'detector_node.image_reliability=reliable')
        tuned.interrupt()
    assert 'FAIL  images /camera/image_raw: image_reliability is reliable' in report, report


def test_doctor_fails_a_stock_reliable_camera_and_passes_with_its_fix(
        stock_env, ros_env, model_path: Path) -> None:
    """A plain rclpy publisher, default QoS, stock middleware: most frames never arrive."""
    command = [sys.executable, str(STOCK_CAMERA), '--rate', '10']
    with Terminal(command, stock_env) as stock:
        stock.wait_for('publishing')
        lossy = doctor(ros_env, model_path)
        fixed = doctor(ros_env, model_path, '--set', 'detector_node.image_reliability=reliable')
        stock.interrupt()
    line = next((x for x in lossy.splitlines() if 'images /camera/image_raw' in x), lossy)
    assert line.startswith('FAIL  images /camera/image_raw: '), lossy
    assert 'lost' in line and 'the publisher is reliable and this subscription best effort' \
        in line, line
    assert '-> its publishers are reliable: set image_reliability: reliable' in lossy, lossy
    line = next((x for x in fixed.splitlines() if 'images /camera/image_raw' in x), fixed)
    assert line.startswith('OK    images /camera/image_raw: '), fixed
    assert "counted by the publisher's sequence numbers" in line, line
