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
Measured speeds against a generated scene's exact ones.

A scene's camera gives its calibration exactly: four road points (metres
across and along the road) and where they appear in the picture. The
tracker's output is counted by a :class:`CountingSession` with that
calibration, as the bridge does; each counted vehicle is matched to the
scene's vehicle whose box in that frame overlaps its box most, and its
measured speed compared with that vehicle's exact speed at the crossing.
Each period's 85th percentile (from the record's bins, as the server
computes it) is compared with that of the exact speeds of the vehicles
counted in it, binned and taken the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
import json
import math
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from vehicle_detection.core.counting.calibration import Calibration, parse_calibration
from vehicle_detection.core.counting.session import (
    CountingSession, PeriodCounts, vehicle_offset)
from vehicle_detection.core.detection.detections import Detections
from vehicle_detection.core.evaluation.scene import Camera, Scene
from vehicle_detection.core.events.geometry import Geometry
from vehicle_detection.core.events.vehicles import iou
from vehicle_detection.wire import CountRecord
from vehicle_detection.wire_speeds import merge_bins, percentile, speed_bin

ROAD_POINTS = ((-8.0, 18.0), (8.0, 18.0), (8.0, 60.0), (-8.0, 60.0))  # metres: across, along
ZERO_ID = '00000000-0000-0000-0000-000000000000'
WITHIN_KMH = 5.0  # a vehicle's speed is right within this
P85_WITHIN_KMH = 3.0  # a period's 85th percentile is right within this


def scene_calibration(camera: Camera) -> Calibration:
    """Return the calibration of a scene's camera: four road points and their pixels."""
    pixels = [(camera.width / 2 + camera.focal * (across - camera.centre_offset) / along,
               camera.horizon + camera.focal * camera.mount_height / along)
              for across, along in ROAD_POINTS]
    text = ('image ' + ' '.join(f'{x:.4f},{y:.4f}' for x, y in pixels) + ' road '
            + ' '.join(f'{a:g},{b:g}' for a, b in ROAD_POINTS))
    calibration = parse_calibration(text)
    assert calibration is not None
    return calibration


@dataclass(frozen=True)
class SpeedFigures:
    """Speed errors of one run: per counted vehicle and per period's p85."""

    errors: Tuple[float, ...]  # measured - exact, km/h, per counted vehicle with a speed
    unmeasured: int  # counted vehicles without a speed
    unmatched: int  # counted vehicles no scene vehicle matched
    p85_errors: Tuple[float, ...]  # per period and line/direction: measured - exact p85
    record_bytes: Tuple[float, float, float] = (0.0, 0.0, 0.0)  # JSON per record: counts
    #   only, with speeds; and per vehicle with count_vehicles

    def as_dict(self) -> Dict[str, object]:
        """Return the figures bench/tracking.py prints."""
        errors = np.abs(np.array(self.errors)) if self.errors else np.zeros(0)
        counted = len(self.errors) + self.unmeasured
        return {
            'measured': len(self.errors), 'unmeasured': self.unmeasured,
            'unmatched': self.unmatched,
            'within_5_kmh': round(float(np.sum(errors <= WITHIN_KMH)) / max(1, counted), 4),
            'error_p50_kmh': round(float(np.percentile(errors, 50)), 2) if counted else None,
            'error_p95_kmh': round(float(np.percentile(errors, 95)), 2) if counted else None,
            'bias_kmh': round(float(np.mean(self.errors)), 2) if self.errors else None,
            'p85_periods': len(self.p85_errors),
            'p85_within_3_kmh': round(sum(abs(e) <= P85_WITHIN_KMH for e in self.p85_errors)
                                      / max(1, len(self.p85_errors)), 4),
            'p85_worst_kmh': round(max((abs(e) for e in self.p85_errors), default=0.0), 2),
            'record_bytes': round(self.record_bytes[0]),
            'record_bytes_speeds': round(self.record_bytes[1]),
            'bytes_per_vehicle': round(self.record_bytes[2], 1)}


def record_bytes(periods: Sequence[PeriodCounts]) -> Tuple[float, float, float]:
    """Return mean JSON bytes of a count record without and with speeds, and per vehicle."""
    def size(period: PeriodCounts, speeds: bool, vehicles: bool) -> int:
        record = CountRecord(ZERO_ID, 'edge-1', 'cam0', '2026-11-24T10:00:00.000000Z',
                             period.period_s, period.rows(), False,
                             (period.speed_rows() or None) if speeds else None,
                             (period.vehicles or None) if vehicles else None)
        return len(json.dumps(record.to_json()))
    if not periods:
        return (0.0, 0.0, 0.0)
    plain = sum(size(p, False, False) for p in periods)
    speeds = sum(size(p, True, False) for p in periods)
    vehicles = sum(size(p, True, True) for p in periods) - speeds
    return (plain / len(periods), speeds / len(periods),
            vehicles / max(1, sum(len(p.vehicles) for p in periods)))


def exact_speed(scene: Scene, vehicle_id: int, stamp: float) -> Optional[float]:
    """Return a scene vehicle's exact speed (km/h) at ``stamp``, None when it is absent."""
    vehicle = next(v for v in scene.vehicles if v.vehicle_id == vehicle_id)
    step = 0.01
    before, after = vehicle.position(stamp - step), vehicle.position(stamp + step)
    if before is None or after is None:
        return None
    return abs(after - before) / (2 * step) * 3.6


def speed_figures(scene: Scene, tracked: Sequence[Detections], stamps: Sequence[float],
                  frame_indices: Sequence[int], geometry: Geometry, period_s: int = 10
                  ) -> SpeedFigures:
    """Count the tracker's output with the scene's calibration; score its speeds."""
    size = (scene.camera.width, scene.camera.height)
    session = CountingSession(geometry, period_s, scene_calibration(scene.camera),
                              per_vehicle=True)
    at_stamp = dict(zip((round(s, 6) for s in stamps), frame_indices))
    # period, row key -> the exact km/h of the vehicles that crossed there in that frame
    # (two vehicles may cross one line one way in one frame: the rows cannot tell them apart)
    exact: Dict[Tuple[int, str, str, str, float], List[float]] = {}
    unmatched = 0
    periods = []
    for detections, stamp in zip(tracked, stamps):
        counted = session.update(detections.sightings(), stamp, size)
        periods += counted.closed
        for crossing in counted.crossings:
            index = at_stamp.get(round(crossing.stamp, 6))
            truths = scene.truth[index] if index is not None else []
            best = max(truths, key=lambda t: iou(t.box, crossing.sighting.bbox), default=None)
            speed = exact_speed(scene, best.vehicle_id, crossing.stamp) \
                if best is not None and iou(best.box, crossing.sighting.bbox) >= 0.3 else None
            if speed is None:
                unmatched += 1
                continue
            index = math.floor(stamp / period_s)  # as the session files it
            offset = vehicle_offset(crossing.stamp - index * period_s, period_s)
            exact.setdefault((index, crossing.line, crossing.direction, crossing.class_name,
                              offset), []).append(speed)
    periods += session.flush()
    errors: List[float] = []
    unmeasured = 0
    p85_errors = []
    for period in periods:
        index = int(period.start // period_s)
        per_way: Dict[Tuple[str, str], List[float]] = {}
        for offset, line, way, class_name, measured in period.vehicles:
            candidates = exact.get((index, line, way, class_name, offset))
            if not candidates:
                continue  # a counted vehicle no scene vehicle matched (counted above)
            # Of vehicles that crossed in the same frame, the one nearest in speed.
            true = candidates.pop(min(range(len(candidates)), key=lambda i: abs(
                candidates[i] - measured) if measured is not None else 0.0))
            per_way.setdefault((line, way), []).append(true)
            if measured is None:
                unmeasured += 1
            else:
                errors.append(measured - true)
        for (line, way), bins in _bins_per_direction(period).items():
            speeds = per_way.get((line, way), [])
            measured_p85 = percentile(bins, 0.85)
            # The exact p85 by the same definition (from 2 km/h bins, as the server gives
            # it): what differs is the measuring, not how a percentile of a few is taken.
            exact_p85 = percentile(merge_bins([{speed_bin(v): 1} for v in speeds]), 0.85)
            if len(speeds) >= 3 and measured_p85 is not None and exact_p85 is not None:
                p85_errors.append(measured_p85 - exact_p85)
    return SpeedFigures(tuple(errors), unmeasured, unmatched, tuple(p85_errors),
                        record_bytes(periods))


def _bins_per_direction(period: PeriodCounts) -> Dict[Tuple[str, str], Dict[int, int]]:
    grouped: Dict[Tuple[str, str], List[Dict[int, int]]] = {}
    for (line, way, _), bins in period.speeds.items():
        grouped.setdefault((line, way), []).append(bins)
    return {key: merge_bins(value) for key, value in grouped.items()}
