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
Vehicle classes, quality flags and night counting on the shared clips.

For ``tracking.py`` (its ``--classes`` part), or alone:

    python bench/class_figures.py [--samples ../shared/samples]

Each clip of ``test/fixtures/vehicle_classes.truth.json`` runs through the
real detector, the tracker and a counting session in the ``uk6`` scheme at
the clip's rate. Printed per clip: vehicles per class, truth against
counted; the class confusion of the counted vehicles matched to true ones
(same line, crossing within 1 s: rows truth, columns counted; ``missed`` and
``extra`` for the unmatched); and the quality flags of its 5-second periods.
Aims: heavy vehicles (bus, lorries) within +-1 of truth per clip, no bus
where there is none, light vehicles (car, van, motorcycle) matched >= 95 %
in their own class. Then the night clip counted four ways: as the system
runs, with contrast enhancement (CLAHE on the lightness) before the
detector, with a lower threshold whose tracks count only once seen in 3
frames, both, with the frame darkened (gamma 2: glare shrinks), and that
with the lower threshold. Last line: JSON.
"""

from __future__ import annotations

import argparse
import collections
import json
from pathlib import Path
from typing import Callable, Counter, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from vehicle_detection.core.counting.config import parse_geometry
from vehicle_detection.core.counting.quality import frame_light
from vehicle_detection.core.counting.schemes import UK6_CLASSES
from vehicle_detection.core.counting.session import CountingSession
from vehicle_detection.core.detection.detector import Detector, DetectorSettings
from vehicle_detection.core.evaluation.runs import read_video

REPO = Path(__file__).resolve().parents[1]
TRUTH = REPO / 'test' / 'fixtures' / 'vehicle_classes.truth.json'
NIGHT = 'jamcam/a13_night_2017-09-04_2126.mp4'
HEAVY = ('bus', 'rigid_lorry', 'articulated_lorry')
LIGHT = ('motorcycle', 'car', 'van')
Crossed = Tuple[int, str, str, str]  # frame, line, direction, class
Enhance = Optional[Callable[[np.ndarray], np.ndarray]]


GAMMA_2 = (np.linspace(0.0, 1.0, 256) ** 2.0 * 255.0).astype(np.uint8)


def darken(frame: np.ndarray) -> np.ndarray:
    """Return a frame darkened by a gamma of 2: glare blooms shrink, lamps stay bright."""
    return cv2.LUT(frame, GAMMA_2)


def clahe(frame: np.ndarray) -> np.ndarray:
    """Return a frame with its lightness contrast-enhanced (CLAHE, 8x8 tiles, clip 2)."""
    lab = cv2.cvtColor(frame, cv2.COLOR_BGR2LAB)
    lab[..., 0] = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8)).apply(lab[..., 0])
    return cv2.cvtColor(lab, cv2.COLOR_LAB2BGR)


def count_clip(detector: Detector, frames: Sequence[np.ndarray], fps: float, lines: str,
               enhance: Enhance = None, min_hits: int = 1) -> Tuple[List[Crossed], List[str]]:
    """
    Count a clip in uk6; return its crossings and its 5-second periods' quality flags.

    ``enhance``: applied to each frame before the detector; ``min_hits``: a
    track counts once the tracker has seen it in that many frames.
    """
    if detector.tracker is not None:
        detector.tracker.reset()
    session = CountingSession(parse_geometry(lines, ''), 5)
    size = (frames[0].shape[1], frames[0].shape[0])
    hits: Counter[int] = collections.Counter()
    crossed: List[Crossed] = []
    flags: List[str] = []
    for index, frame in enumerate(frames):
        stamp = index / fps
        session.quality.light(stamp, *frame_light(frame))
        sightings = detector.detect(enhance(frame) if enhance else frame, stamp)[0].sightings()
        hits.update(s.track_id for s in sightings)
        confirmed = [s for s in sightings if hits[s.track_id] >= min_hits]
        counted = session.update(confirmed, stamp, size)
        crossed += [(index, c.line, c.direction, session.classify(c)) for c in counted.crossings]
        flags += [' '.join(p.quality.flags) or 'ok' for p in counted.closed if p.quality]
    flags += [' '.join(p.quality.flags) or 'ok' for p in session.flush() if p.quality]
    return crossed, flags


def confusion(truth: Sequence[Crossed], counted: Sequence[Crossed], fps: float
              ) -> Dict[str, Counter[str]]:
    """Match counted to true vehicles (same line, within 1 s, nearest first); tabulate."""
    pairs = sorted((abs(t[0] - c[0]), i, j) for i, t in enumerate(truth)
                   for j, c in enumerate(counted) if t[1] == c[1] and abs(t[0] - c[0]) <= fps)
    matrix: Dict[str, Counter[str]] = collections.defaultdict(collections.Counter)
    used_truth, used_counted = set(), set()
    for _, i, j in pairs:
        if i not in used_truth and j not in used_counted:
            used_truth.add(i)
            used_counted.add(j)
            matrix[truth[i][3]][counted[j][3]] += 1
    for i, vehicle in enumerate(truth):
        if i not in used_truth:
            matrix[vehicle[3]]['missed'] += 1
    for j, vehicle in enumerate(counted):
        if j not in used_counted:
            matrix['extra'][vehicle[3]] += 1
    return matrix


def class_report(name: str, truth: Sequence[Crossed], counted: Sequence[Crossed],
                 fps: float, flags: Sequence[str]) -> Dict[str, object]:
    """Print and return one clip's classes against truth, its confusion and its flags."""
    true_classes = collections.Counter(v[3] for v in truth)
    counted_classes = collections.Counter(v[3] for v in counted)
    matrix = confusion(truth, counted, fps)
    light_true = sum(true_classes[c] for c in LIGHT)
    light_right = sum(matrix[c][c] for c in LIGHT)
    light_matched = sum(matrix[c][k] for c in LIGHT for k in matrix[c] if k != 'missed')
    row: Dict[str, object] = {
        'clip': name, 'truth': dict(true_classes), 'counted': dict(counted_classes),
        'heavy_truth': sum(true_classes[c] for c in HEAVY),
        'heavy_counted': sum(counted_classes[c] for c in HEAVY),
        'bus_truth': true_classes['bus'], 'bus_counted': counted_classes['bus'],
        'light_truth': light_true, 'light_matched': light_matched,
        'light_right_share': round(light_right / max(1, light_matched), 3),
        'confusion': {k: dict(v) for k, v in matrix.items()}, 'quality': list(flags)}
    columns = [c for c in UK6_CLASSES if any(m[c] for m in matrix.values())] + ['missed']
    print(f"{name}: heavy {row['heavy_counted']}/{row['heavy_truth']} (counted/true), bus "
          f"{row['bus_counted']}/{row['bus_truth']}, light vehicles matched in their class "
          f"{light_right}/{light_matched} ({row['light_right_share']:.0%}), quality "
          f"{', '.join(flags)}")
    print('  ' + 'truth \\ counted'.ljust(18) + ''.join(c[:11].rjust(12) for c in columns))
    for true_class in [c for c in UK6_CLASSES if c in matrix] + ['extra']:
        print('  ' + true_class.ljust(18) +
              ''.join(str(matrix[true_class][c]).rjust(12) for c in columns), flush=True)
    return row


def directions(crossed: Sequence[Crossed]) -> Dict[str, int]:
    """Return the vehicles per line and direction."""
    return dict(collections.Counter(f'{v[1]} {v[2]}' for v in crossed))


def night_figures(detector: Detector, samples: Path, clip: Dict) -> List[Dict[str, object]]:
    """Count the night clip as the system runs and with each night measure."""
    frames = list(read_video(samples / NIGHT))
    truth = directions([tuple(v) for v in clip['vehicles']])  # type: ignore[misc]
    rows = []
    base = detector.confidence
    for name, enhance, threshold, hits in (
            ('as is', None, base, 1), ('CLAHE', clahe, base, 1),
            ('threshold 0.15, 3 hits', None, 0.15, 3),
            ('CLAHE + threshold 0.15, 3 hits', clahe, 0.15, 3),
            ('gamma 2', darken, base, 1), ('gamma 2 + threshold 0.15, 3 hits', darken, 0.15, 3)):
        detector.set_thresholds(threshold, detector.iou)
        crossed, _ = count_clip(detector, frames, clip['fps'], clip['lines'], enhance, hits)
        counted = directions(crossed)
        row = {'night': name, 'truth': truth, 'counted': counted,
               'errors': sum(abs(counted.get(k, 0) - truth.get(k, 0))
                             for k in set(truth) | set(counted))}
        print(f'night clip, {name}: counted {counted} (truth {truth}), '
              f"{row['errors']} off", flush=True)
        rows.append(row)
    detector.set_thresholds(base, detector.iou)
    return rows


def all_figures(detector: Detector, samples: Path) -> Dict[str, object]:
    """Run every clip of the truth file and the night measures; return the figures."""
    clips = json.loads(TRUTH.read_text())['clips']
    rows = []
    for name, clip in clips.items():
        frames = list(read_video(samples / name))
        crossed, flags = count_clip(detector, frames, clip['fps'], clip['lines'])
        truth = [tuple(v) for v in clip['vehicles']]
        rows.append(class_report(name, truth, crossed, clip['fps'], flags))  # type: ignore
    return {'classes': rows, 'night': night_figures(detector, samples, clips[NIGHT])}


def main() -> None:
    """Print the class, quality and night figures of the shared clips; last line JSON."""
    parser = argparse.ArgumentParser(description='vehicle classes and night counting')
    parser.add_argument('--model', default=str(REPO.parent / 'shared/models/yolox_nano.onnx'))
    parser.add_argument('--samples', default=str(REPO.parent / 'shared/samples'))
    args = parser.parse_args()
    detector = Detector(DetectorSettings(args.model, backend='onnxruntime'))
    print(json.dumps(all_figures(detector, Path(args.samples))))


if __name__ == '__main__':
    main()
