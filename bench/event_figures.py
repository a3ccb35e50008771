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
Event figures of ``bench/tracking.py``: rigs, close passes and wrong-way drivers.

On generated scenes with ideal detections (``truth_as_detections``: jittered
boxes, a rig's parts found beside it), the tracker, the alert policy, the
counter and the wrong-way rule as the bridge runs them; and the wrong-way
rule on the real clips with their traffic's direction set.
"""

from __future__ import annotations

import collections
from typing import Dict, List, Sequence, Tuple

import numpy as np

from vehicle_detection.core.bridge.config import BridgeSettings
from vehicle_detection.core.counting.config import parse_geometry
from vehicle_detection.core.detection.detections import Detections
from vehicle_detection.core.detection.tracker import ByteTracker
from vehicle_detection.core.evaluation.alerts import (
    match_alert, run_policy, score_alerts, truth_as_detections)
from vehicle_detection.core.evaluation.counts import counted_crossings, true_crossings
from vehicle_detection.core.evaluation.runs import default_policy
from vehicle_detection.core.evaluation.scenarios import scenario
from vehicle_detection.core.evaluation.scene import build_truth, CLASS_OF, Scene, visible_vehicles
from vehicle_detection.core.events.event import FrameInfo
from vehicle_detection.core.events.geometry import side_of
from vehicle_detection.core.events.wrong_way import WrongWayRule, WrongWaySettings
from vehicle_detection.core.params import slice_of

SIZE = (640, 360)
CARRIAGEWAYS = ('coming 0,250 320,250 towards/away oneway=towards; '
                'going 320,250 640,250 towards/away oneway=away')


def wrong_way_rule(lines: str) -> WrongWayRule:
    """Return the wrong-way rule on ``lines`` with the bridge's defaults."""
    return WrongWayRule(slice_of(WrongWaySettings, BridgeSettings(counting_lines=lines)))


def tracked(scene: Scene, seed: int) -> List[Detections]:
    """Track a scene's ideal detections as the detector node does."""
    tracker = ByteTracker(high_threshold=0.35, new_track_threshold=0.35)
    rng = np.random.default_rng(seed)
    return [tracker.update(truth_as_detections(truth, rng), SIZE, index / scene.fps)
            for index, truth in enumerate(scene.truth)]


def wrong_way_truth(scene: Scene) -> set:
    """Return the vehicles whose true path crosses a carriageway's line against its way."""
    lines = parse_geometry(CARRIAGEWAYS, '').in_pixels(*SIZE)[0]
    first, last = {}, {}
    for frame in scene.truth:
        for truth in frame:
            if truth.visible >= 0.4 and truth.box[3] - truth.box[1] >= 8:
                first.setdefault(truth.vehicle_id, truth)
                last[truth.vehicle_id] = truth
    found = set()
    for vehicle, start in first.items():
        for line in lines:
            before, after = side_of(line, start.box), side_of(line, last[vehicle].box)
            if before is not None and after and before != after \
                    and line.directions[0 if after > 0 else 1] != line.oneway:
                found.add(vehicle)
    return found


def scene_figures(name: str, fps: float, seeds: Sequence[int]) -> Dict[str, float]:
    """Return alert, class, count and wrong-way figures of a scene over some seeds."""
    vehicles = alerted = duplicates = no_vehicle = wrong_class = 0
    count_errors = crossings = wrong_true = wrong_alerted = wrong_false = 0
    for seed in seeds:
        scene = build_truth(scenario(name, seed=seed, fps=fps))
        frames = tracked(scene, seed)
        alerts = run_policy(frames, fps, default_policy())
        score = score_alerts(alerts, scene.truth, visible_vehicles(scene))
        vehicles, alerted = vehicles + score.vehicles, alerted + score.alerted
        duplicates, no_vehicle = duplicates + score.duplicates, no_vehicle + score.no_vehicle
        kinds = {v.vehicle_id: v.kind for v in scene.vehicles}
        for alert in alerts:
            vehicle = match_alert(alert, scene.truth[alert.frame])
            wrong_class += vehicle >= 0 and alert.sighting.bbox[3] - alert.sighting.bbox[1] >= 24 \
                and alert.sighting.class_name != CLASS_OF[kinds[vehicle]]
        errors, true = _count_errors(scene, frames)
        count_errors, crossings = count_errors + errors, crossings + true
        expected = wrong_way_truth(scene)
        events = run_policy(frames, fps, wrong_way_rule(CARRIAGEWAYS), SIZE)
        hits = collections.Counter(match_alert(e, scene.truth[e.frame]) for e in events)
        wrong_true += len(expected)
        wrong_alerted += sum(1 for v in expected if hits.get(v))
        wrong_false += sum(n for v, n in hits.items() if v not in expected) \
            + sum(n - 1 for v, n in hits.items() if v in expected and n > 1)
    return {'scene': name, 'fps': fps, 'vehicles': vehicles,
            'alert_recall': round(alerted / max(1, vehicles), 4),
            'duplicates_per_100': round(100 * duplicates / max(1, vehicles), 2),
            'no_vehicle_per_100': round(100 * no_vehicle / max(1, vehicles), 2),
            'wrong_class': wrong_class, 'count_errors': count_errors, 'crossings': crossings,
            'wrong_way_drivers': wrong_true, 'wrong_way_alerted': wrong_alerted,
            'wrong_way_false': wrong_false}


def _count_errors(scene: Scene, frames: Sequence[Detections]) -> Tuple[int, int]:
    geometry = parse_geometry('main 0,250 640,250 towards/away', '')
    visible = [[t for t in frame if t.visible >= 0.4] for frame in scene.truth]
    true = true_crossings(visible, geometry.in_pixels(*SIZE)[0])
    counted = counted_crossings(frames, [i / scene.fps for i in range(len(frames))], geometry,
                                SIZE)
    return sum(abs(counted[k] - true[k]) for k in set(true) | set(counted)), sum(true.values())


def false_wrong_way(min_vehicles: int, fps: float) -> Dict[str, float]:
    """Run normal traffic (nobody against the way) until ``min_vehicles`` were seen."""
    names = ('motorway', 'queue', 'mixed', 'rigs', 'close', 'parking')
    vehicles = alerts = seed = 0
    while vehicles < min_vehicles:
        for name in names:
            scene = build_truth(scenario(name, seed=100 + seed, fps=fps))
            vehicles += len(visible_vehicles(scene))
            alerts += len(run_policy(tracked(scene, seed), fps, wrong_way_rule(CARRIAGEWAYS),
                                     SIZE))
        seed += 1
    return {'fps': fps, 'vehicles': vehicles, 'false_wrong_way': alerts,
            'per_10000': round(10000 * alerts / vehicles, 2)}


def clip_wrong_way(tracked_frames: Sequence[Detections], stamps: Sequence[float],
                   lines: str, size: Tuple[int, int]) -> int:
    """Return the wrong-way alerts the rule raises on a real clip's tracked frames."""
    rule = wrong_way_rule(lines)
    return sum(len(rule.update(d.sightings(), FrameInfo(stamp, index, size)))
               for index, (d, stamp) in enumerate(zip(tracked_frames, stamps)))
