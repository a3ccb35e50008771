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

"""The real detector, tracker and alert policy on a rendered scene and on the real clip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_event_rules import dwell_rule, parking_bays, wrong_way_rule

from vehicle_detection.core.counting.config import parse_geometry
from vehicle_detection.core.detection.detector import Detector, DetectorSettings
from vehicle_detection.core.evaluation.alerts import run_policy
from vehicle_detection.core.evaluation.counts import counted_crossings, true_crossings
from vehicle_detection.core.evaluation.render import load_sprites, render_frames
from vehicle_detection.core.evaluation.runs import evaluate, load_clip_truth, read_video
from vehicle_detection.core.evaluation.scenarios import scenario
from vehicle_detection.core.evaluation.scene import build_truth, visible_vehicles
from vehicle_detection.core.events.vehicles import iou

FIXTURE = Path(__file__).parent / 'fixtures' / 'highway_bridge_jitter.truth.json'
JAMCAM = Path(__file__).parent / 'fixtures' / 'jamcam_carriageways.json'


@pytest.fixture
def detector(model_path: Path) -> Detector:
    return Detector(DetectorSettings(str(model_path), backend='onnxruntime'))


def test_real_clip_at_the_camera_rate(detector: Detector, samples_dir: Path) -> None:
    """Every vehicle alerted once, the pickup towing a trailer too; nobody the wrong way."""
    clip = load_clip_truth(FIXTURE)
    assert len(clip.expected) == 18  # the fixture as committed
    frames = list(read_video(samples_dir / clip.clip))
    assert len(frames) == len(clip.frames)
    run = evaluate(detector, frames, clip.frames, clip.expected, clip.fps, step=3)
    score = run.score
    assert score.recall >= 0.94, score.as_dict()  # measured 1.0
    # Measured 0: before, the pickup and its trailer (a "truck") alerted apart.
    assert score.duplicates == 0 and score.no_vehicle == 0, score.as_dict()
    all_away = json.loads(FIXTURE.read_text())['counts']['lines'].replace(
        'towards/away', 'towards/away oneway=away')  # all its traffic drives away
    wrong_way = run_policy(run.tracked, clip.fps / 3, wrong_way_rule(all_away), (426, 320))
    assert wrong_way == []


@pytest.mark.parametrize('clip', sorted(json.loads(JAMCAM.read_text())['clips']))
def test_no_wrong_way_alert_on_the_jamcam_day_clips(
        detector: Detector, samples_dir: Path, clip: str) -> None:
    """Both carriageways with their traffic's direction, at about the camera rate (8 fps)."""
    lines = json.loads(JAMCAM.read_text())['clips'][clip]
    frames = list(read_video(samples_dir / 'jamcam' / clip))[::3]  # 25 fps: about 8 fps
    assert detector.tracker is not None
    detector.tracker.reset()
    tracked = [detector.detect(frame, index * 3 / 25.0)[0] for index, frame in enumerate(frames)]
    assert sum(len(d) for d in tracked) > 100  # traffic on both carriageways
    assert run_policy(tracked, 25.0 / 3, wrong_way_rule(lines), (352, 288)) == []


def test_rendered_parking_scene(detector: Detector, samples_dir: Path) -> None:
    scene = build_truth(scenario('parking', fps=10.0))
    frames = list(render_frames(scene, load_sprites(samples_dir)))
    run = evaluate(detector, frames, scene.truth, visible_vehicles(scene), scene.fps)
    assert run.score.recall >= 0.85 and run.score.no_vehicle == 0, run.score.as_dict()
    # Each parked car is hidden by passing lorries three times and alerts once.
    for vehicle in (1, 2):
        truth_box = next(t.box for t in scene.truth[0] if t.vehicle_id == vehicle)
        assert sum(iou(a.sighting.bbox, truth_box) > 0.5 for a in run.alerts) == 1


@pytest.mark.parametrize('step', [3, 1])  # the 10 fps camera default, and every frame
def test_counts_on_the_real_clip(detector: Detector, samples_dir: Path, step: int) -> None:
    """
    Measured: 65 of 66 crossings at 10 fps, 66 of 66 at 30 fps.

    At 10 fps a car whose track is lost for 0.8 s just as it crosses 'low'
    comes back as a new track beyond the line; the pickup towing a trailer
    (also found as a "truck") is one vehicle and counts once.
    """
    clip = load_clip_truth(FIXTURE)
    counts = json.loads(FIXTURE.read_text())['counts']
    geometry = parse_geometry(counts['lines'], '')
    lines, _ = geometry.in_pixels(426, 320)
    truth = {(line, direction): len(ids) for line, ways in counts['crossings'].items()
             for direction, ids in ways.items() if ids}
    assert true_crossings(clip.frames, lines) == truth  # the fixture follows its rule
    frames = list(read_video(samples_dir / clip.clip))
    run = evaluate(detector, frames, clip.frames, clip.expected, clip.fps, step=step)
    counted = counted_crossings(run.tracked, [i / clip.fps for i in run.frame_indices],
                                geometry, (426, 320))
    for key, expected in truth.items():  # every line within one vehicle
        assert abs(counted[key] - expected) <= 1, (key, dict(counted))
    assert set(counted) <= set(truth)  # nothing counted the wrong way
    off = sum(abs(counted[key] - expected) for key, expected in truth.items())
    assert off <= 0.03 * sum(truth.values()), dict(counted)  # 3 % over every line


def test_stopped_vehicle_events_on_the_rendered_parking_scene(detector: Detector,
                                                              samples_dir: Path) -> None:
    """The real detector on the drawn scene: one event per parked car, none for traffic."""
    scene = build_truth(scenario('parking', seed=1, fps=10.0))
    frames = list(render_frames(scene, load_sprites(samples_dir)))
    run = evaluate(detector, frames, scene.truth, visible_vehicles(scene), scene.fps)
    events = run_policy(run.tracked, scene.fps, dwell_rule(parking_bays(scene)), (640, 360))
    assert sorted(e.places['zone'] for e in events) == ['bay1', 'bay2']
