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
A constant-velocity Kalman filter of one box, one side at a time.

The state is the four sides ``x1, y1, x2, y2``, each with its velocity, as
four independent two-state filters. Filtering the sides (rather than centre
and size, as SORT does) lets a side be left unobserved: a box cut by the
image edge says nothing about the side that lies on the edge, so that side
keeps its own prediction while the others are corrected. A vehicle leaving
the picture keeps its full size and speed (its outer side runs on past the
edge); one entering grows as it is uncovered, as its boxes do.

Noise scales with the box height (as in ByteTrack): a near, large vehicle
moves more pixels per frame than a far, small one. Time is counted in frames
of a reference rate (30 fps, ByteTrack's tuning): a camera at 10 fps predicts
three reference frames ahead per frame, with the uncertainty of three.
"""

from __future__ import annotations

import numpy as np

REFERENCE_FPS = 30.0  # velocities are in pixels per frame at this rate
POSITION_NOISE = 1.0 / 20  # of the box height, per reference frame (ByteTrack's)
VELOCITY_NOISE = 1.0 / 160  # of the box height, per reference frame (ByteTrack's)
MEASUREMENT_NOISE = 1.0 / 20  # of the box height
MIN_SCALE = 4.0  # pixels: keeps the noise of tiny boxes above zero


class BoxFilter:
    """Position and velocity of the four sides of one box."""

    def __init__(self, box: np.ndarray) -> None:
        scale = _scale(box)
        self.mean = np.zeros((4, 2), np.float64)  # per side: position, velocity
        self.mean[:, 0] = box
        self.cov = np.zeros((4, 2, 2), np.float64)
        self.cov[:, 0, 0] = (2 * MEASUREMENT_NOISE * scale) ** 2
        # The first velocity is unknown: wide enough to take a fast vehicle's first step.
        self.cov[:, 1, 1] = (10 * VELOCITY_NOISE * scale) ** 2

    @property
    def box(self) -> np.ndarray:
        """Return the current box ``[x1, y1, x2, y2]`` (float32)."""
        return self.mean[:, 0].astype(np.float32)

    @property
    def velocity(self) -> np.ndarray:
        """Return the sides' velocities in pixels per reference frame."""
        return self.mean[:, 1].astype(np.float32)

    def centre_variance(self) -> float:
        """Return the variance (px^2) of the centre's position, both axes together."""
        variance = self.cov[:, 0, 0]  # per side; the sides are independent
        return float((variance[0] + variance[2]) / 4 + (variance[1] + variance[3]) / 4)

    def predict(self, steps: float = 1.0) -> None:
        """Advance ``steps`` frames of the reference rate (fractions allowed)."""
        scale = _scale(self.mean[:, 0])
        self.mean[:, 0] += steps * self.mean[:, 1]
        p = self.cov
        # F P F^T for F = [[1, steps], [0, 1]], side by side; the noise grows
        # with the time elapsed, so a 10 fps camera is no less sure than 30 fps.
        p00 = p[:, 0, 0] + steps * (p[:, 0, 1] + p[:, 1, 0]) + steps * steps * p[:, 1, 1]
        p01 = p[:, 0, 1] + steps * p[:, 1, 1]
        p[:, 0, 0] = p00 + steps * (POSITION_NOISE * scale) ** 2
        p[:, 0, 1] = p[:, 1, 0] = p01
        p[:, 1, 1] += steps * (VELOCITY_NOISE * scale) ** 2

    def update(self, box: np.ndarray, observed: np.ndarray) -> None:
        """Correct the sides where ``observed`` (bool, 4) is true with ``box``."""
        r = (MEASUREMENT_NOISE * _scale(box)) ** 2
        for side in np.flatnonzero(observed):
            p = self.cov[side]
            innovation = float(box[side]) - self.mean[side, 0]
            gain = p[:, 0] / (p[0, 0] + r)
            self.mean[side] += gain * innovation
            self.cov[side] = p - np.outer(gain, p[0, :])


def _scale(box: np.ndarray) -> float:
    return max(float(box[3] - box[1]), MIN_SCALE)
