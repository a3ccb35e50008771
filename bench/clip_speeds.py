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
Vehicle speeds on the shared road clip (``highway_bridge_jitter.mp4``), and how they are checked.

The clip is a US highway (three lanes, all traffic driving away). Its
calibration comes from the lane markings, assuming US standard markings
(MUTCD): the broken line between the left and the middle lane repeats every
40 ft = 12.19 m (10 ft dash, 30 ft gap), lanes are 12 ft = 3.66 m wide. The
tops of four consecutive dashes of that line were found in the picture
(a median frame, white blobs) at rows 129, 157, 202 and 288 (426x320
pixels); they fit one flat road seen by a camera without roll: in 1/(row -
horizon) their steps are equal to 2 % (the horizon, row 16.5, from where
the two lane lines meet). The calibration takes the first and last of them
(36.58 m apart) and the middle line's points on the same rows one lane to
the right (points on one row lie at one depth for a camera without roll; a
yaw only shears the along-road axis across the road, which leaves a speed
along the road unchanged).

Checks printed: the two dash tops the calibration did not use, mapped to
the road (12.19 and 24.38 m expected); then each counted vehicle's speed
measured two ways from the same tracked boxes, the homography's fit and a
speed trap of two counting lines on rows 288 and 157 (24.38 m apart by the
dashes, the time between the crossings), at 10 fps and at the clip's 30 fps.
Last line: JSON.

    python bench/clip_speeds.py
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Dict, List

import numpy as np

from vehicle_detection.core.counting.calibration import parse_calibration
from vehicle_detection.core.counting.config import parse_geometry
from vehicle_detection.core.counting.session import CountingSession
from vehicle_detection.core.detection.detector import Detector, DetectorSettings
from vehicle_detection.core.evaluation.runs import read_video

REPO = Path(__file__).resolve().parents[1]
PERIOD_M = 12.192  # 40 ft: one dash and one gap of a US broken lane line
LANE_M = 3.658  # 12 ft
CALIBRATION = (f'image 153,288 279.5,288 260.4,129 207,129 road 0,0 {LANE_M},0 {LANE_M},'
               f'{3 * PERIOD_M:.3f} 0,{3 * PERIOD_M:.3f}')
UNUSED_DASHES = {(179.0, 202.0): PERIOD_M, (195.0, 157.0): 2 * PERIOD_M}  # pixel -> metres
LINES = 'bar 0,0.5 1,0.5 towards/away; near 0,288 426,288; far 0,157 426,157'
TRAP = f'lines near far {2 * PERIOD_M:.3f}'


def measure(detector: Detector, frames: List[np.ndarray], fps: float, step: int,
            calibration: str) -> Dict[float, float]:
    """Return each counted vehicle's speed (km/h) by when it crossed line ``far`` (s)."""
    if detector.tracker is not None:
        detector.tracker.reset()
    size = (frames[0].shape[1], frames[0].shape[0])
    session = CountingSession(parse_geometry(LINES, ''), 600, parse_calibration(calibration),
                              per_vehicle=True)
    for index in range(0, len(frames), step):
        stamp = index / fps
        session.update(detector.detect(frames[index], stamp)[0].sightings(), stamp, size)
    return {offset: speed for period in session.flush()
            for offset, line, _, _, speed in period.vehicles
            if line == 'far' and speed is not None}


def main() -> None:
    """Print the calibration check and the speeds measured both ways, then JSON."""
    parser = argparse.ArgumentParser(description='speeds on the shared road clip')
    parser.add_argument('--model', default=str(REPO.parent / 'shared/models/yolox_nano.onnx'))
    parser.add_argument('--clip', default=str(REPO.parent /
                                              'shared/samples/highway_bridge_jitter.mp4'))
    args = parser.parse_args()
    calibration = parse_calibration(CALIBRATION)
    assert calibration is not None
    ground = calibration.ground(426, 320)
    checks = []
    for pixel, metres in UNUSED_DASHES.items():
        road = ground.to_road(pixel)
        assert road is not None
        checks.append({'pixel': pixel, 'expected_m': round(metres, 2),
                       'mapped_m': round(road[1], 2)})
        print(f'dash top at {pixel}: {road[1]:.2f} m from the nearest one (lane markings '
              f'say {metres:.2f} m)')
    detector = Detector(DetectorSettings(args.model, backend='onnxruntime'))
    frames = list(read_video(Path(args.clip)))
    fps = 29.97
    rows = []
    for step in (3, 1):
        fitted = measure(detector, frames, fps, step, CALIBRATION)
        trapped = measure(detector, frames, fps, step, TRAP)
        both = sorted(set(fitted) & set(trapped))
        differences = [fitted[t] - trapped[t] for t in both]
        print(f'{fps / step:.0f} fps: {len(fitted)} vehicles measured on line far, '
              f'{len(trapped)} by the trap; speeds (crossing time s: fit / trap, km/h): '
              + ', '.join(f'{t:.1f}: {fitted[t]:.0f}/{trapped[t]:.0f}' for t in both))
        if differences:
            print(f'   fit - trap: mean {np.mean(differences):+.1f}, |.| max '
                  f'{np.max(np.abs(differences)):.1f} km/h; median speed '
                  f'{np.median(list(fitted.values())):.1f} km/h')
        rows.append({'fps': round(fps / step, 2), 'fitted': {str(k): v for k, v in fitted.items()},
                     'trap': {str(k): v for k, v in trapped.items()},
                     'fit_minus_trap_mean': round(float(np.mean(differences)), 2)
                     if differences else None})
    print(json.dumps({'calibration': CALIBRATION, 'dash_checks': checks, 'rows': rows}))


if __name__ == '__main__':
    main()
