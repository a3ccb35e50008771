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

"""``vehicle-detection detect``: the detector core on files, without ROS."""

from __future__ import annotations

import json
from pathlib import Path
import subprocess
import sys

import cv2
import numpy as np

FIXTURE = Path(__file__).parent / 'fixtures' / 'highway_bridge_jitter.truth.json'


def detect(*args: str) -> subprocess.CompletedProcess:
    """Run the command in a subprocess, as a user would."""
    return subprocess.run([sys.executable, '-m', 'vehicle_detection.cli.main', 'detect', *args],
                          capture_output=True, text=True, timeout=120)


def test_folder_to_json_lines(tmp_path: Path, model_path: Path, samples_dir: Path) -> None:
    output = tmp_path / 'out.jsonl'
    result = detect(str(samples_dir), '--model', str(model_path), '--output', str(output))
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in output.read_text().splitlines()]
    by_file = {Path(r['file']).name: r for r in records}
    assert [d['class_name'] for d in by_file['motorcycle.png']['detections']] == ['motorcycle']
    street = by_file['street_dog_bicycle_truck.jpg']
    assert sorted(d['class_name'] for d in street['detections']) == ['bicycle', 'car']
    assert street['width'] == 768 and street['height'] == 576


def test_video_with_tracking(tmp_path: Path, model_path: Path, samples_dir: Path) -> None:
    image = cv2.imread(str(samples_dir / 'motorcycle.png'))
    video = tmp_path / 'clip.avi'
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*'MJPG'), 10, (640, 480))
    for step in range(5):
        writer.write(np.ascontiguousarray(image[10:490, step * 10:step * 10 + 640]))
    writer.release()
    result = detect(str(video), '--model', str(model_path), '--track')
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == 5
    # The motorcycle (the best box of each frame) keeps one id; partial boxes the
    # model reports where the crop cuts the motorcycle get ids of their own.
    ids = {max(r['detections'], key=lambda d: d['score'])['track_id'] for r in records}
    assert len(ids) == 1 and ids != {-1}


def test_errors_are_clear(tmp_path: Path, model_path: Path) -> None:
    result = detect(str(tmp_path), '--model', str(tmp_path / 'none.onnx'))
    assert result.returncode == 2 and 'none.onnx does not exist' in result.stderr
    result = detect(str(tmp_path / 'nothing'), '--model', str(model_path))
    assert result.returncode == 2 and 'does not exist' in result.stderr
    assert 'Traceback' not in result.stderr


def test_options_follow_the_detector_parameters(tmp_path: Path, model_path: Path) -> None:
    """Defaults, choices and ranges are the detector node's: one source for both."""
    result = detect(str(tmp_path), '--model', str(model_path), '--confidence', '2')
    assert result.returncode == 2
    assert 'confidence_threshold: 2.0 is above the maximum 1' in result.stderr
    result = detect(str(tmp_path), '--model', str(model_path), '--model-type', 'yolo99')
    assert result.returncode == 2 and 'invalid choice' in result.stderr
    usage = detect('--help').stdout
    assert '(range [0, 1])' in usage and 'one of auto, yolox, yolov5' in usage


def test_counting_lines_on_the_real_clip_at_10_fps(tmp_path: Path, model_path: Path,
                                                   samples_dir: Path) -> None:
    """
    The clip as a 10 fps camera sees it (every third frame, as lossless pictures).

    Counts against the fixture's ground truth (measured: 65 of 66 crossings,
    as in process: see test_road_evaluation.py).
    """
    counts = json.loads(FIXTURE.read_text())['counts']
    capture = cv2.VideoCapture(str(samples_dir / 'highway_bridge_jitter.mp4'))
    video = tmp_path / 'clip10'
    video.mkdir()
    index = 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        if index % 3 == 0:
            cv2.imwrite(str(video / f'frame{index}.png'), frame)  # natural order: by number
        index += 1
    result = detect(str(video), '--model', str(model_path), '--fps', '10', '--lines',
                    counts['lines'], '--zones', 'verge 0.9,0.4 1,0.4 1,1 0.9,1 dwell=5')
    assert result.returncode == 0, result.stderr
    table = {tuple(row.split()[:3]): int(row.split()[3]) for row in result.stderr.splitlines()
             if row.split()[2:3] == ['all']}
    truth = {(line, direction, 'all'): len(ids) for line, ways in counts['crossings'].items()
             for direction, ids in ways.items() if ids}
    assert table.keys() == truth.keys()
    assert all(abs(table[key] - truth[key]) <= 1 for key in truth), table
    assert sum(abs(table[key] - truth[key]) for key in truth) <= 0.03 * sum(truth.values())
    records = [json.loads(line) for line in result.stdout.splitlines()]
    crossings = [c for r in records for c in r['crossings']]
    assert len(crossings) == sum(table.values())  # each frame's crossings add up to the table
    assert len({(c['line'], c['track_id']) for c in crossings}) == len(crossings)
    assert not any(r['events'] for r in records)  # nothing stands on the verge
    bad = detect(str(video), '--model', str(model_path), '--lines', 'bar 0,0.5 1,0.5 up/up')
    assert bad.returncode == 2 and 'two different names' in bad.stderr


# The clip's ground calibration and speed trap, from its lane markings (bench/clip_speeds.py:
# a US broken lane line repeats every 12.192 m, lanes are 3.658 m wide).
CLIP_LINES = 'bar 0,0.5 1,0.5 towards/away; near 0,288 426,288; far 0,157 426,157'
CLIP_GROUND = ('image 153,288 279.5,288 260.4,129 207,129 '
               'road 0,0 3.658,0 3.658,36.576 0,36.576')
CLIP_TRAP = 'lines near far 24.384'


def speed_rows(stderr: str) -> dict:
    """Return {(line, direction, class): (vehicles, p50, p85)} from the speeds table."""
    lines = stderr.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[3:4] == ['vehicles'])
    return {tuple(row.split()[:3]): (int(row.split()[3]), float(row.split()[4]),
                                     float(row.split()[5]))
            for row in lines[start + 1:]
            if len(row.split()) == 6 and row.split()[3].isdigit()}  # not the unmeasured line


def test_speeds_on_the_real_clip_agree_between_two_calibrations(
        model_path: Path, samples_dir: Path) -> None:
    clip = str(samples_dir / 'highway_bridge_jitter.mp4')
    ground = detect(clip, '--model', str(model_path), '--lines', CLIP_LINES,
                    '--speed-calibration', CLIP_GROUND)
    trap = detect(clip, '--model', str(model_path), '--lines', CLIP_LINES,
                  '--speed-calibration', CLIP_TRAP)
    assert ground.returncode == 0 and trap.returncode == 0, ground.stderr + trap.stderr
    by_ground, by_trap = speed_rows(ground.stderr), speed_rows(trap.stderr)
    cars = by_ground[('bar', 'away', 'car')]
    assert cars[0] >= 12 and 85.0 <= cars[1] <= 110.0, cars  # motorway traffic, 99 km/h typical
    # Two measurements that share nothing but the tracks: the trap times each vehicle
    # between two lines; the ground map fits its road positions around the crossing.
    trap_cars = by_trap[('bar', 'away', 'car')]
    assert abs(trap_cars[1] - cars[1]) <= 5.0, (trap_cars, cars)
    records = [json.loads(line) for line in ground.stdout.splitlines()]
    assert len(records) == 570  # one JSON object per frame, as without speeds


def test_a_speed_calibration_is_checked_before_any_frame(model_path: Path) -> None:
    cases = {
        ('--speed-calibration', CLIP_GROUND): 'give --lines',
        ('--lines', 'bar 0,0.5 1,0.5', '--speed-calibration', 'lines bar other 20'):
            'the lines other are not counting lines',
        ('--lines', 'bar 0,0.5 1,0.5', '--speed-calibration', 'image 1,2'):
            'expected image X,Y X,Y X,Y X,Y road',
    }
    for args, message in cases.items():
        result = detect('no-such-video.mp4', '--model', str(model_path), *args)
        assert result.returncode == 2 and message in result.stderr, result.stderr
