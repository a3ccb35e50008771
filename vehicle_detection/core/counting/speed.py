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
Vehicle speeds from their tracks over the calibrated road.

Each tracked vehicle's ground point (the bottom centre of its box, where it
touches the road) is followed frame by frame; a box cut by the image edge
is left out (its bottom is the edge, not the vehicle). A counted vehicle's
speed is measured around its crossing:

- with a homography (four calibrated points): a constant-velocity fit of
  its road positions (metres) over :data:`WINDOW_S` either side of the
  crossing, each position weighted by how many metres a pixel spans there
  (far away a pixel is metres, near the camera centimetres), the worst
  outlier dropped once (a box that jumped, e.g. a rig seen as a part);
- with two lines a known distance apart: that distance over the time
  between the ground point's crossings of the two lines, each interpolated
  between the frames either side (a vehicle at 100 km/h moves 2.8 m
  between frames at 10 fps).

A crossing waits for the frames after it (at most :data:`WAIT_S`; in a
speed trap until the vehicle reached the other line, at most
:data:`TRAP_WAIT_S`; never for a track unseen for :data:`GONE_S`), so the
count of a period closes up to that much later than the period.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
import math
from typing import Any, Deque, Dict, List, Optional, Sequence, Tuple

import numpy as np

from vehicle_detection.core.counting.calibration import Calibration, GroundMap
from vehicle_detection.core.events.geometry import CountingLine, signed_distance
from vehicle_detection.core.events.vehicles import ground_point, Point, Sighting
from vehicle_detection.wire_speeds import MAX_SPEED_KMH

WINDOW_S = 1.0  # seconds of track either side of a crossing the fit uses
MIN_SPAN_S = 0.3  # the least time the fitted positions must span
MIN_SAMPLES = 3
MIN_BOX_PX = 8.0  # a box's height counts as this at least in a position's error
EDGE_PX = 2.0  # a box side this close to the image edge is cut there...
EDGE_SHARE = 0.03  # ...or this share of the image (a cut box's edge wobbles too)
HISTORY_S = 30.0  # of a track kept: a trap's lines may be far apart at walking pace
WAIT_S = 2.0  # a crossing waits this long at most for the frames after it...
TRAP_WAIT_S = 10.0  # ...or, in a speed trap, for the vehicle to reach the other line
GONE_S = 1.0  # a track unseen this long is not waited for
MS_TO_KMH = 3.6
Sample = Tuple[float, Point, float]  # stamp, ground point (pixels), box height (pixels)


@dataclass
class Pending:
    """A counted crossing whose speed is being measured."""

    track_id: int
    stamp: float  # when it crossed
    payload: Any  # what the caller needs back with the speed


@dataclass
class _Track:
    samples: Deque[Sample] = field(default_factory=collections.deque)
    last_seen: float = 0.0


class SpeedMeter:
    """Follows tracked vehicles' ground points; measures a counted vehicle's speed."""

    def __init__(self, calibration: Calibration, size: Tuple[int, int],
                 lines: Sequence[CountingLine] = ()) -> None:
        self.calibration = calibration
        self.size = size
        self.ground: Optional[GroundMap] = calibration.ground(*size) \
            if calibration.is_homography else None
        by_name = {line.name: line for line in lines}
        self.trap: Optional[Tuple[CountingLine, CountingLine]] = None
        if not calibration.is_homography and all(n in by_name for n in calibration.lines):
            self.trap = (by_name[calibration.lines[0]], by_name[calibration.lines[1]])
        self.pending: List[Pending] = []
        self._tracks: Dict[int, _Track] = {}

    def see(self, sightings: Sequence[Sighting], stamp: float) -> None:
        """Note one frame's tracked vehicles (before its crossings are held)."""
        for sighting in sightings:
            if sighting.track_id < 0 or self._cut(sighting.bbox):
                continue
            track = self._tracks.setdefault(sighting.track_id, _Track())
            track.samples.append((stamp, ground_point(sighting.bbox),
                                  sighting.bbox[3] - sighting.bbox[1]))
            track.last_seen = stamp
            while track.samples and track.samples[0][0] < stamp - HISTORY_S:
                track.samples.popleft()
        self._tracks = {k: v for k, v in self._tracks.items()
                        if stamp - v.last_seen <= HISTORY_S}

    def hold(self, track_id: int, stamp: float, payload: Any) -> None:
        """Measure the speed of a vehicle that crossed a line at ``stamp``, once it can be."""
        self.pending.append(Pending(track_id, stamp, payload))

    def resolve(self, stamp: float, force: bool = False) -> List[Tuple[Pending, Optional[float]]]:
        """Return the held crossings measured by now (``force``: all), with their km/h."""
        done, waiting = [], []
        wait_s = WAIT_S if self.ground is not None else TRAP_WAIT_S
        for held in self.pending:
            track = self._tracks.get(held.track_id)
            if self.ground is not None:  # the fit's window after the crossing is seen
                ready = track is not None and track.last_seen >= held.stamp + WINDOW_S
            else:  # both lines crossed
                ready = self.speed(held.track_id, held.stamp) is not None
            gone = stamp - (track.last_seen if track is not None else held.stamp) > GONE_S
            if force or ready or gone or stamp >= held.stamp + wait_s:
                done.append((held, self.speed(held.track_id, held.stamp)))
            else:
                waiting.append(held)
        self.pending = waiting
        return done

    def speed(self, track_id: int, stamp: float) -> Optional[float]:
        """Return how fast a track drove around ``stamp`` (km/h), None if it cannot be told."""
        track = self._tracks.get(track_id)
        speed = None
        if track is not None and self.ground is not None:
            speed = fitted_speed(self.ground, [s for s in track.samples
                                               if abs(s[0] - stamp) <= WINDOW_S])
        elif track is not None and self.trap is not None:
            speed = trap_speed(self.trap, self.calibration.distance_m, list(track.samples))
        # Faster than any vehicle: a measuring error (a box that jumped), not a speed.
        return speed if speed is not None and speed <= MAX_SPEED_KMH else None

    def current_speed(self, track_id: int, stamp: float) -> Optional[float]:
        """Return a track's speed over its last frames up to ``stamp`` (for an alert)."""
        return self.speed(track_id, stamp - WINDOW_S) if self.ground is not None \
            else self.speed(track_id, stamp)

    def _cut(self, box: Tuple[float, float, float, float]) -> bool:
        width, height = self.size
        margin_x, margin_y = max(EDGE_PX, EDGE_SHARE * width), max(EDGE_PX, EDGE_SHARE * height)
        return box[3] >= height - margin_y or box[0] <= margin_x or box[2] >= width - margin_x


def fitted_speed(ground: GroundMap, samples: Sequence[Sample]) -> Optional[float]:
    """
    Return the speed (km/h) of a constant-velocity fit of road positions, None if too few.

    Weighted least squares: a detector's box edges wobble by a share of the
    box's size, so a position's error is about its box height (pixels) times
    the metres a pixel spans there; each weighs 1 / that^2. The sample
    farthest off the fit (in box heights) is dropped once when it is far off.
    """
    rows = []
    for stamp, point, height in samples:
        road, scale = ground.to_road(point), ground.metres_per_pixel(point)
        if road is not None and math.isfinite(scale) and scale > 0:
            rows.append((stamp, road[0], road[1], scale * max(height, MIN_BOX_PX)))
    for attempt in range(2):
        if len(rows) < MIN_SAMPLES or rows[-1][0] - rows[0][0] < MIN_SPAN_S:
            return None
        data = np.array(rows)
        t = data[:, 0] - data[:, 0].mean()
        root_w = 1.0 / data[:, 3]  # sqrt of the weight
        design = np.stack([np.ones_like(t), t], axis=1)
        fit, *_ = np.linalg.lstsq(design * root_w[:, None], data[:, 1:3] * root_w[:, None],
                                  rcond=None)
        vx, vy = fit[1]
        off = np.hypot(*(data[:, 1:3] - design @ fit).T) * root_w  # in box heights
        worst = int(np.argmax(off))
        if attempt == 1 or off[worst] <= max(0.1, 3.0 * float(np.median(off))):
            break
        rows.pop(worst)
    return float(math.hypot(vx, vy) * MS_TO_KMH)


def crossing_time(line: CountingLine, samples: Sequence[Sample]) -> Optional[float]:
    """Return when the ground points went over ``line``, interpolated; None if they did not."""
    previous: Optional[Tuple[float, float]] = None
    for stamp, point, _ in samples:
        distance = signed_distance(line, point)
        if distance is None:
            previous = None
            continue
        if previous is not None and (previous[1] < 0) != (distance < 0):
            share = previous[1] / (previous[1] - distance)
            return previous[0] + share * (stamp - previous[0])
        previous = (stamp, distance)
    return None


def trap_speed(trap: Tuple[CountingLine, CountingLine], distance_m: float,
               samples: Sequence[Sample]) -> Optional[float]:
    """Return distance / time between a track's crossings of the two lines (km/h), or None."""
    first, second = (crossing_time(line, samples) for line in trap)
    if first is None or second is None or abs(second - first) < 1e-3:
        return None
    return distance_m / abs(second - first) * MS_TO_KMH
