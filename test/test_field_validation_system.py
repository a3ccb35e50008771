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

"""
Field validation on the running system: record a window, count it from the truth, report.

A generated scene (the parking one, drawn with the vehicle pictures) is
played as a 10 fps bag (its last 16 s, at half speed) into
``vehicle-detection run --replay`` with a counting line, while
``vehicle-detection validate record`` records the window; the "manual"
count is a key script made from the scene's ground truth for the frames the
recording holds; ``validate report`` must accept it. Then the detector is
made to miss vehicles (its confidence threshold raised while it runs) over
a second window, which the report must reject.
"""

from __future__ import annotations

import json
from pathlib import Path
import re
import subprocess
from typing import List

import pytest
from test_field_validation import (
    BOUNDARY_S, CLI, cli, crossings_held, FPS, key_script_for, LINES, scene_crossings, SPLIT)

from vehicle_detection.core.evaluation.render import load_sprites, render_frames
from vehicle_detection.core.evaluation.scenarios import scenario
from vehicle_detection.core.evaluation.scene import build_truth
from vehicle_detection.core.system.bag_tools import make_bag
from vehicle_detection.core.validation.recording import frame_times, image_topic
from waiting import Watched

REPO = Path(__file__).resolve().parents[1]
CONFIG = str(REPO / 'config' / 'config.yaml')
LATER_S = 3600  # the second window: an hour on (the tracker's time goes forward)


def set_confidence(context, value: float) -> None:
    """Set the running detector's confidence threshold, as `ros2 param set` does."""
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.parameter import Parameter
    from rclpy.parameter_client import AsyncParameterClient

    node = Node('validation_test', context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    try:
        client = AsyncParameterClient(node, 'detector_node')
        assert client.wait_for_services(timeout_sec=20.0)
        future = client.set_parameters([Parameter('confidence_threshold', value=value)])
        executor.spin_until_future_complete(future, timeout_sec=20.0)
        assert future.done() and all(r.successful for r in future.result().results)
    finally:
        executor.shutdown()
        node.destroy_node()


def record_window(bag: Path, out: Path, env: dict, offset_s: float, frames: int = 0,
                  rate: float = 1.0) -> List[int]:
    """
    Record while the bag plays (from ``offset_s``); return the recorded frames' stamps.

    The recorder stops after ``frames`` frames, or (0) at Ctrl-C after the bag.
    """
    with Watched([CLI, 'validate', 'record', str(out), '--settle', '3', '--frames',
                  str(frames)], env) as recorder:
        recorder.err.wait_for('recording', timeout=30)
        # Two subscribers to wait for, the detector and the recorder: the window then holds
        # the frames from the offset on, however late DDS matches the recorder.
        played = subprocess.run([CLI, 'bag', 'play', str(bag), '--start-offset',
                                 str(offset_s), '--rate', str(rate), '--subscribers', '2'],
                                capture_output=True, text=True, timeout=120, env=env)
        assert played.returncode == 0 and 'warning' not in played.stderr, played.stderr
        # Ctrl-C (0 frames) ends the window; its last counts are awaited.
        said = recorder.interrupt(30) if not frames else recorder.finish(30)
        assert recorder.returncode == 0, recorder.stderr()
        assert re.match(r'recorded \d+ frames over [\d.]+ s and \d+ counts statuses to ',
                        said), said
    return [stamp for _time, stamp in frame_times(str(out), image_topic(str(out))[0])]


@pytest.mark.ros
def test_a_window_recorded_on_the_running_system_is_accepted_then_rejected(
        samples_dir: Path, model_path: Path, tmp_path: Path, ros_env: dict,
        ros_context) -> None:
    scene = build_truth(scenario('parking', fps=FPS))
    frames = list(render_frames(scene, load_sprites(samples_dir)))
    start_ns = round((BOUNDARY_S - SPLIT / FPS) * 1e9)
    later_ns = start_ns + LATER_S * 10**9
    for name, start in (('scene', start_ns), ('later', later_ns)):
        assert make_bag('', str(tmp_path / name), FPS, start_ns=start,
                        frames=iter(frames)) == len(frames)
    _truth, crossed = scene_crossings()
    with Watched([CLI, 'run', '--replay', '--config', CONFIG, '--model', str(model_path),
                  '--quiet', '--set', f'cloud_bridge_node.data_dir={tmp_path / "edge"}',
                  '--set', 'cloud_bridge_node.enabled=false',
                  '--set', f'cloud_bridge_node.counting_lines={LINES}'], ros_env) as system:
        system.err.wait_for('detector ready')
        # From 9 s (frame 90, between crossings), at half speed: the detector sees every
        # frame even on a loaded machine (a frame it drops can lose a vehicle: -20 % seen).
        stamps = record_window(tmp_path / 'scene', tmp_path / 'window', ros_env, 9.0,
                               rate=0.5)
        set_confidence(ros_context, 0.95)  # the system now misses vehicles
        later = record_window(tmp_path / 'later', tmp_path / 'missed', ros_env, 10.0, 100)
        system.interrupt(60)
        assert system.returncode == 0, system.stderr()

    # The manual count: the true crossings on the frames the recording holds.
    (tmp_path / 'keys.txt').write_text(key_script_for(crossed, stamps, start_ns))
    counted = cli('count', str(tmp_path / 'window'), '--out', str(tmp_path / 'manual.json'),
                  '--script', str(tmp_path / 'keys.txt'))
    assert counted.returncode == 0, counted.stderr
    result = cli('report', str(tmp_path / 'window'), str(tmp_path / 'manual.json'),
                 '--json', str(tmp_path / 'report.json'))
    report = json.loads((tmp_path / 'report.json').read_text())
    totals = [(r['interval_start'], r['direction'], r['manual'], r['system'])
              for r in report['rows'] if r['class_name'] == 'all']
    assert result.returncode == 0 and report['accepted'], result.stdout
    assert len(totals) == 4 and sum(manual for *_, manual, _ in totals) == 13, totals

    (tmp_path / 'later.txt').write_text(key_script_for(crossed, later, later_ns))
    assert cli('count', str(tmp_path / 'missed'), '--out', str(tmp_path / 'missed.json'),
               '--script', str(tmp_path / 'later.txt')).returncode == 0
    result = cli('report', str(tmp_path / 'missed'), str(tmp_path / 'missed.json'),
                 '--json', str(tmp_path / 'missed_report.json'))
    rows = json.loads((tmp_path / 'missed_report.json').read_text())['rows']
    assert result.returncode == 1 and 'REJECT' in result.stdout, result.stdout
    assert len(later) == 100  # --frames: the recorder stopped by itself
    totals = [(r['manual'], r['system']) for r in rows if r['class_name'] == 'all']
    # The recorder's subscription may be matched a moment after the detector's (DDS
    # discovery on a loaded machine): the window is the frames it holds, wherever it began.
    # Any 100 frames of the scene from 10 s on hold at least 7 crossings.
    held = len(crossings_held(crossed, later, later_ns))
    assert held >= 7 and sum(m for m, _ in totals) == held, (totals, held)
    assert sum(s for _, s in totals) < held, totals
