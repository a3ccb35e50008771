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
ByteTrack-style multi-object tracking on IoU, in NumPy.

Each frame: tracks move by their estimated velocity; high-score detections
are matched to all tracks first, then low-score detections to the tracks still
unmatched (so a vehicle whose score dips behind an occluder keeps its id);
unmatched tracks wait ``max_lost`` frames before they are dropped; unmatched
high-score detections start new tracks. Association is class-agnostic, so a
vehicle that flickers between "car" and "truck" keeps one id.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Tuple

import numpy as np

from vehicle_detection.core.detection.detections import Detections


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Return the IoU of every box of ``a`` (N, 4) with every box of ``b`` (M, 4)."""
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)), np.float32)
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(bottom_right - top_left, 0, None), axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def greedy_match(iou: np.ndarray, threshold: float) -> List[Tuple[int, int]]:
    """Match rows to columns by descending IoU above ``threshold``, each used once."""
    rows, cols = np.nonzero(iou >= threshold)
    order = np.argsort(-iou[rows, cols], kind='stable')
    used_rows, used_cols, pairs = set(), set(), []
    for r, c in zip(rows[order].tolist(), cols[order].tolist()):
        if r not in used_rows and c not in used_cols:
            used_rows.add(r)
            used_cols.add(c)
            pairs.append((r, c))
    return pairs


@dataclass
class Track:
    """One tracked object."""

    track_id: int
    box: np.ndarray
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(4, np.float32))
    hits: int = 1
    lost: int = 0

    def predict(self) -> None:
        """Move the box by one frame of velocity."""
        self.box = self.box + self.velocity

    def update(self, box: np.ndarray) -> None:
        """Take the matched detection's box and smooth the velocity."""
        # self.box was predicted (lost + 1) frames ahead of the last real box.
        step = (box - self.box) / (1 + self.lost) + self.velocity
        self.velocity = 0.5 * self.velocity + 0.5 * step
        self.box = box.astype(np.float32)
        self.hits += 1
        self.lost = 0


class ByteTracker:
    """Stable integer ids for detections across frames."""

    def __init__(self, high_threshold: float = 0.5, low_threshold: float = 0.1,
                 match_iou: float = 0.2, low_match_iou: float = 0.4,
                 new_track_threshold: float = 0.5, max_lost: int = 30) -> None:
        self.high_threshold = high_threshold
        self.low_threshold = low_threshold
        self.match_iou = match_iou
        self.low_match_iou = low_match_iou
        self.new_track_threshold = new_track_threshold
        self.max_lost = max_lost
        self.tracks: List[Track] = []
        self._next_id = 1

    def update(self, detections: Detections) -> Detections:
        """Assign track ids; return matched and new detections (unmatched low ones dropped)."""
        for track in self.tracks:
            track.predict()
        scores = detections.scores
        high = np.flatnonzero(scores >= self.high_threshold)
        low = np.flatnonzero((scores >= self.low_threshold) & (scores < self.high_threshold))
        track_boxes = np.array([t.box for t in self.tracks], np.float32).reshape(-1, 4)
        assigned = np.full(len(detections), -1, np.int64)

        first = greedy_match(iou_matrix(detections.boxes[high], track_boxes), self.match_iou)
        matched_tracks = {t for _, t in first}
        for d, t in first:
            assigned[high[d]] = t
        # Second pass: low-score boxes may only continue tracks seen in the last frame.
        remaining = [t for t in range(len(self.tracks))
                     if t not in matched_tracks and self.tracks[t].lost == 0]
        second = greedy_match(iou_matrix(detections.boxes[low], track_boxes[remaining]),
                              self.low_match_iou)
        for d, r in second:
            assigned[low[d]] = remaining[r]
            matched_tracks.add(remaining[r])

        ids = np.full(len(detections), -1, np.int64)
        for index in np.flatnonzero(assigned >= 0):
            track = self.tracks[assigned[index]]
            track.update(detections.boxes[index])
            ids[index] = track.track_id
        for t, track in enumerate(self.tracks):
            if t not in matched_tracks:
                track.lost += 1
        self.tracks = [t for t in self.tracks if t.lost <= self.max_lost]
        for index in high[assigned[high] < 0]:
            if scores[index] >= self.new_track_threshold:
                box = detections.boxes[index].astype(np.float32)
                self.tracks.append(Track(self._next_id, box))
                ids[index] = self._next_id
                self._next_id += 1
        keep = ids >= 0
        result = detections.select(keep)
        result.track_ids = ids[keep]
        return result

    def reset(self) -> None:
        """Forget every track (e.g. when the source changes)."""
        self.tracks = []
