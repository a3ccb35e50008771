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
Tracking and alert benchmark on moving traffic: generated scenes and a real clip.

Every scene runs through the real detector (YOLOX-Nano, ONNX Runtime), the
tracker and the alert policy with the configuration's defaults, at the
source rate and at the default camera rate (10 fps: every third frame).
Prints per scene and rate py-motmetrics' MOTA, IDF1 and ID switches
(against boxes at least 8 px high and 40 % visible; IoU >= 0.5), and the
alert figures a user counts: alert recall, duplicates and alerts with no
vehicle per 100 vehicles, and bytes sent per alert (alert JSON + snapshot,
alerts of one frame sharing one snapshot), and traffic counts against the
truth (generated scenes: a line across the road and a slanted one; the clip:
the four lines of its fixture): vehicles counted / true crossings, and the
wrong-way alerts raised with each carriageway's direction set (the clips'
traffic: none of it drives the wrong way; also the JamCam day clips). Then
the event figures on generated scenes with ideal detections (``event_figures.py``:
rigs, close passes, wrong-way drivers, seeds 0-2) and the false wrong-way
alerts over ``--wrong-way-vehicles`` vehicles of normal traffic. Targets:
recall >= 0.98, duplicates <= 1, no vehicle <= 1 per 100 vehicles, counts
within 2 %, every wrong-way driver alerted and at most one false wrong-way
alert per 10 000 vehicles. On the generated scenes also the speed error
distribution (:mod:`vehicle_detection.core.evaluation.speeds`: the scene
camera's exact calibration, speeds against the generator's exact ones, 10 s
periods; targets >= 90 % of counted vehicles within 5 km/h, each period's
p85 within 3 km/h) and the bytes of a count record with speeds and per
vehicle. Last line: JSON.

Then (with the clips) the vehicle classes in the uk6 scheme against the class truth of
every shared clip (a confusion matrix per clip), each clip's quality flags, and the night
clip counted with and without the night measures (``class_figures.py``; ``--classes``
runs only that part).

    python bench/tracking.py [--scenes motorway,queue,parking,mixed] [--no-clip]
        [--wrong-way-vehicles 10000] [--steps 1,3] [--classes]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple
import uuid

import class_figures
import event_figures
import motmetrics
import numpy as np

from vehicle_detection.core.bridge.budget import SnapshotPlan
from vehicle_detection.core.bridge.config import BridgeSettings
from vehicle_detection.core.bridge.snapshot import encode_snapshot
from vehicle_detection.core.counting.config import Geometry, parse_geometry
from vehicle_detection.core.detection.detector import Detector, DetectorSettings
from vehicle_detection.core.detection.tracker import iou_matrix
from vehicle_detection.core.evaluation.counts import counted_crossings, true_crossings
from vehicle_detection.core.evaluation.render import load_sprites, render_frames
from vehicle_detection.core.evaluation.runs import evaluate, load_clip_truth, read_video, Run
from vehicle_detection.core.evaluation.scenarios import scenario
from vehicle_detection.core.evaluation.scene import build_truth, Scene, Truth, visible_vehicles
from vehicle_detection.core.evaluation.speeds import speed_figures
from vehicle_detection.wire import Alert

REPO = Path(__file__).resolve().parents[1]
CLIP_TRUTH = REPO / 'test' / 'fixtures' / 'highway_bridge_jitter.truth.json'
JAMCAM = REPO / 'test' / 'fixtures' / 'jamcam_carriageways.json'
CAMERA_FPS = 10.0
ZERO_ID = str(uuid.UUID(int=0))
SCENE_LINES = 'main 0,250 640,250 towards/away; slant 0,0.6 1,0.75 towards/away'
SPEED_PERIOD_S = 10  # short periods: three per 30 s scene, each with its p85


def mot_figures(run: Run, truth: Sequence[List[Truth]]) -> Dict[str, float]:
    """Return MOTA, IDF1 and ID switches from py-motmetrics."""
    accumulator = motmetrics.MOTAccumulator(auto_id=True)
    for detections, index in zip(run.tracked, run.frame_indices):
        objects = [t for t in truth[index] if t.visible >= 0.4 and t.box[3] - t.box[1] >= 8]
        gt = np.array([t.box for t in objects], np.float32).reshape(-1, 4)
        distance = 1.0 - iou_matrix(gt, detections.boxes)
        distance[distance > 0.5] = np.nan  # no match below IoU 0.5
        accumulator.update([t.vehicle_id for t in objects], detections.track_ids.tolist(),
                           distance)
    metrics = motmetrics.metrics.create()
    summary = metrics.compute(accumulator, metrics=['mota', 'idf1', 'num_switches'], name='run')
    return {'mota': round(float(summary['mota'].iloc[0]), 4),
            'idf1': round(float(summary['idf1'].iloc[0]), 4),
            'id_switches': int(summary['num_switches'].iloc[0])}


def bytes_per_alert(run: Run, frames: Sequence[np.ndarray]) -> Dict[str, float]:
    """Return bytes per alert with and without snapshots shared per frame."""
    settings = BridgeSettings()
    plan = SnapshotPlan(True, 1.0, settings.snapshot_quality)
    sizes: Dict[object, int] = {}
    body = 0
    for alert in run.alerts:
        frame = frames[alert.frame]
        if alert.frame not in sizes:
            jpeg = encode_snapshot(frame, settings.snapshot_max_width,
                                   settings.snapshot_quality, 1 << 22, plan)
            sizes[alert.frame] = len(jpeg)
        body += len(json.dumps(Alert(ZERO_ID, 'edge-1', 'cam0', '2026-11-24T10:00:00.000000Z',
                                     alert.sighting.track_id, alert.sighting.class_name,
                                     alert.sighting.confidence, alert.sighting.bbox,
                                     frame.shape[1], frame.shape[0]).to_json()))
    count = max(1, len(run.alerts))
    shared = body + sum(sizes.values())
    unshared = body + sum(sizes[a.frame] for a in run.alerts)
    return {'bytes_per_alert': round(shared / count), 'bytes_per_alert_unshared':
            round(unshared / count)}


def count_figures(run: Run, truth: Sequence[List[Truth]], fps: float, geometry: Geometry,
                  size: Tuple[int, int]) -> Dict[str, int]:
    """Return vehicles counted and true crossings over every line and direction."""
    visible = [[t for t in frame if t.visible >= 0.4] for frame in truth]
    true = true_crossings(visible, geometry.in_pixels(*size)[0])
    counted = counted_crossings(run.tracked, [i / fps for i in run.frame_indices], geometry,
                                size)
    return {'true_crossings': sum(true.values()), 'counted': sum(counted.values()),
            'count_errors': sum(abs(counted[k] - true[k]) for k in set(true) | set(counted))}


def speed_report(scene: Scene, run: Run, lines: str) -> Dict[str, object]:
    """Return and print the speed errors of a generated scene (its exact calibration)."""
    figures = speed_figures(scene, run.tracked, [i / scene.fps for i in run.frame_indices],
                            run.frame_indices, parse_geometry(lines, ''), SPEED_PERIOD_S)
    row = figures.as_dict()
    print(f"{'':>10} speeds: {row['measured']} measured, {row['unmeasured']} not  within "
          f"5 km/h {row['within_5_kmh']:.1%} (target >= 90 %)  |error| p50 "
          f"{row['error_p50_kmh']} p95 {row['error_p95_kmh']} km/h  bias {row['bias_kmh']}  "
          f"p85 of {row['p85_periods']} periods x directions within 3 km/h "
          f"{row['p85_within_3_kmh']:.0%} (worst {row['p85_worst_kmh']})  bytes per record "
          f"{row['record_bytes']} -> {row['record_bytes_speeds']} with speeds, "
          f"{row['bytes_per_vehicle']} per vehicle with count_vehicles", flush=True)
    return {'speeds': row}


def report(name: str, fps: float, run: Run, truth: Sequence[List[Truth]],
           frames: Sequence[np.ndarray], source_fps: float, lines: str,
           oneway: str, scene: Optional[Scene] = None) -> Dict[str, object]:
    """Print and return one scene's figures at one rate (``oneway``: carriageway lines)."""
    processed = [frames[i] for i in run.frame_indices]
    size = (frames[0].shape[1], frames[0].shape[0])
    stamps = [i / source_fps for i in run.frame_indices]
    row: Dict[str, object] = {'scene': name, 'fps': round(fps, 2), **run.score.as_dict(),
                              **mot_figures(run, truth), **bytes_per_alert(run, processed),
                              **count_figures(run, truth, source_fps,
                                              parse_geometry(lines, ''), size),
                              'wrong_way': event_figures.clip_wrong_way(
                                  run.tracked, stamps, oneway, size)}
    print(f"{name:>10} {fps:5.1f} fps: vehicles {row['vehicles']:3}  alerts {row['alerts']:3}  "
          f"recall {row['alert_recall']:.3f}  dup/100 {row['duplicates_per_100']:5.2f}  "
          f"none/100 {row['no_vehicle_per_100']:5.2f}  MOTA {row['mota']:.3f}  "
          f"IDF1 {row['idf1']:.3f}  IDsw {row['id_switches']:3}  "
          f"B/alert {row['bytes_per_alert']} ({row['bytes_per_alert_unshared']} unshared)  "
          f"counted {row['counted']}/{row['true_crossings']} ({row['count_errors']} off)  "
          f"wrong way {row['wrong_way']}", flush=True)
    if scene is not None:
        row.update(speed_report(scene, run, lines))
    return row


def main() -> None:
    """Run every scene at both rates, print a table and one JSON line."""
    parser = argparse.ArgumentParser(description='tracking and alert benchmark')
    parser.add_argument('--model', default=str(REPO.parent / 'shared/models/yolox_nano.onnx'))
    parser.add_argument('--samples', default=str(REPO.parent / 'shared/samples'))
    parser.add_argument('--scenes', default='motorway,queue,parking,mixed')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--no-clip', action='store_true', help='skip the real clips')
    parser.add_argument('--steps', default='1,3',
                        help='frame steps of the generated scenes (3: 10 fps)')
    parser.add_argument('--wrong-way-vehicles', type=int, default=10000,
                        help='vehicles of normal traffic for the false wrong-way alerts')
    parser.add_argument('--classes', action='store_true',
                        help='only the classes, quality flags and night figures of the clips')
    args = parser.parse_args()
    if args.wrong_way_vehicles < 1:
        parser.error('--wrong-way-vehicles must be at least 1')
    detector = Detector(DetectorSettings(args.model, backend='onnxruntime'))
    if args.classes:
        print(json.dumps(class_figures.all_figures(detector, Path(args.samples))))
        return
    sprites = load_sprites(Path(args.samples))
    rows = []
    for name in args.scenes.split(','):
        scene = build_truth(scenario(name, args.seed, fps=30.0))
        frames = list(render_frames(scene, sprites))
        expected = visible_vehicles(scene)
        for step in (int(s) for s in args.steps.split(',')):
            run = evaluate(detector, frames, scene.truth, expected, scene.fps, step)
            rows.append(report(name, scene.fps / step, run, scene.truth, frames, scene.fps,
                               SCENE_LINES, event_figures.CARRIAGEWAYS, scene))
    if not args.no_clip:
        clip = load_clip_truth(CLIP_TRUTH)
        clip_lines = json.loads(CLIP_TRUTH.read_text())['counts']['lines']
        frames = list(read_video(Path(args.samples) / clip.clip))
        for step in (1, 3):
            run = evaluate(detector, frames, clip.frames, clip.expected, clip.fps, step)
            rows.append(report('clip', clip.fps / step, run, clip.frames, frames, clip.fps,
                               clip_lines, clip_lines.replace('towards/away',
                                                              'towards/away oneway=away')))
        jamcam = jamcam_wrong_way(detector, Path(args.samples) / 'jamcam')
        classes = class_figures.all_figures(detector, Path(args.samples))
    totals = _totals(rows)
    print(f"all: recall {totals['alert_recall']:.3f} (target >= 0.97), duplicates/100 "
          f"{totals['duplicates_per_100']:.2f} (<= 2), no vehicle/100 "
          f"{totals['no_vehicle_per_100']:.2f} (<= 1)")
    for fps in sorted({round(float(r['fps'])) for r in rows}):  # type: ignore[arg-type]
        at = [r for r in rows if round(float(r['fps'])) == fps]  # type: ignore[arg-type]
        errors = sum(int(r['count_errors']) for r in at)  # type: ignore[call-overload]
        true = sum(int(r['true_crossings']) for r in at)  # type: ignore[call-overload]
        print(f'counts at {fps} fps: {errors} off of {true} crossings '
              f'({errors / max(1, true):.1%}; target <= 2 %)')
    events = [event_figures.scene_figures(name, fps, (0, 1, 2))
              for name in ('rigs', 'close', 'wrong_way') for fps in (10.0, 30.0)]
    for row in events:
        print('ideal detections', json.dumps(row), flush=True)
    false_alarms = [event_figures.false_wrong_way(args.wrong_way_vehicles, 10.0),
                    event_figures.false_wrong_way(args.wrong_way_vehicles // 3, 30.0)]
    for row in false_alarms:
        print(f"false wrong-way alerts at {row['fps']:g} fps: {row['false_wrong_way']} in "
              f"{row['vehicles']} vehicles ({row['per_10000']} per 10 000; target <= 1)",
              flush=True)
    print(json.dumps({'rows': rows, 'totals': totals, 'events': events,
                      'false_wrong_way': false_alarms,
                      'jamcam_wrong_way': [] if args.no_clip else jamcam,
                      'classes': {} if args.no_clip else classes}))


def jamcam_wrong_way(detector: Detector, folder: Path) -> List[Dict[str, object]]:
    """Run the day JamCam clips at 25 fps and 10 fps; return their wrong-way alerts."""
    found: List[Dict[str, object]] = []
    for clip, lines in json.loads(JAMCAM.read_text())['clips'].items():
        frames = list(read_video(folder / clip))
        size = (frames[0].shape[1], frames[0].shape[0])
        for rate in (25.0, 10.0):  # a camera capped at 10 fps takes every 2.5th frame
            picks = [i for i in range(len(frames))
                     if int(i * rate / 25.0) != int((i - 1) * rate / 25.0)]
            if detector.tracker is not None:
                detector.tracker.reset()
            tracked = [detector.detect(frames[i], i / 25.0)[0] for i in picks]
            alerts = event_figures.clip_wrong_way(tracked, [i / 25.0 for i in picks], lines,
                                                  size)
            found.append({'clip': clip, 'fps': rate, 'wrong_way': alerts})
            print(f'{clip} {rate:g} fps: wrong-way alerts {alerts}', flush=True)
    return found


def _totals(rows: List[Dict[str, object]]) -> Dict[str, float]:
    vehicles = sum(int(r['vehicles']) for r in rows)  # type: ignore[call-overload]
    alerted = sum(float(r['alert_recall']) * int(r['vehicles']) for r in rows)  # type: ignore
    dup = sum(float(r['duplicates_per_100']) * int(r['vehicles']) for r in rows)  # type: ignore
    none = sum(float(r['no_vehicle_per_100']) * int(r['vehicles']) for r in rows)  # type: ignore
    return {'vehicles': vehicles, 'alert_recall': round(alerted / vehicles, 4),
            'duplicates_per_100': round(dup / vehicles, 2),
            'no_vehicle_per_100': round(none / vehicles, 2)}


if __name__ == '__main__':
    main()
