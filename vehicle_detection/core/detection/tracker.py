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
Multi-object tracking of vehicles: ByteTrack association on Kalman predictions.

Each frame, every track's box is predicted by a constant-velocity Kalman
filter (:mod:`box_filter`), then detections are matched in three passes:

1. high-score detections to every track, on IoU with the predicted boxes
   times the detection's score;
2. low-score detections to the tracks seen in the last frame (ByteTrack: a
   vehicle whose score dips behind an occluder keeps its id);
3. the high-score detections still unmatched to the tracks still unmatched,
   on the distance from the track's path (last seen to predicted centre),
   within a gate set by the filter's uncertainty (it widens while a track
   is lost) and only on the track's course. This re-finds a vehicle after an
   occlusion, and keeps a small, fast vehicle whose boxes no longer overlap
   from one frame to the next (10 fps).

Unmatched tracks wait ``max_lost_s`` seconds (``reid.LOST_WAIT_S``, 2 s; or
until their prediction leaves the picture) before they are dropped; unmatched
high-score detections start new tracks, unless they are a part of a vehicle
already tracked (:mod:`rigs`: a cab and its lorry are one vehicle, one id).
Association is class-agnostic and each track's class is decided by a vote
weighted by score and box size, so a truck scored "bus" for a few frames
(or while small, far away) keeps its id and stays a truck. A side of a box
that lies on the image edge is not used to correct the filter (the vehicle
is cut there, see :mod:`box_filter`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np

from vehicle_detection.core.detection import rigs
from vehicle_detection.core.detection.box_filter import BoxFilter, REFERENCE_FPS
from vehicle_detection.core.detection.detections import Detections
from vehicle_detection.core.events.reid import LOST_WAIT_S

EDGE_MARGIN = 2.0  # pixels: a side this close to the image edge counts as cut
MAX_GATE = 1.5  # box diagonals: how far off its path a re-found vehicle may be
COURSE_COSINE = 0.8  # a re-found track may head at most 37 degrees off its course
ImageSize = Tuple[int, int]  # width, height


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


def greedy_match(affinity: np.ndarray, threshold: float) -> List[Tuple[int, int]]:
    """Match rows to columns by descending ``affinity`` at or above ``threshold``, once each."""
    rows, cols = np.nonzero(affinity >= threshold)
    order = np.argsort(-affinity[rows, cols], kind='stable')
    used_rows, used_cols, pairs = set(), set(), []
    for r, c in zip(rows[order].tolist(), cols[order].tolist()):
        if r not in used_rows and c not in used_cols:
            used_rows.add(r)
            used_cols.add(c)
            pairs.append((r, c))
    return pairs


def path_affinity(dets: np.ndarray, tracks: np.ndarray, last_seen: np.ndarray,
                  gates: np.ndarray) -> np.ndarray:
    """
    Return 1 - distance / gate from each detection to each track's path (else 0).

    A track's path runs from the centre of its last seen box (``last_seen``,
    M x 4) to the centre of its predicted box (``tracks``): perspective slows a
    vehicle driving into the distance in pixels, so it is found short of a
    constant-velocity prediction. ``gates`` (M,) is each track's largest
    allowed distance in pixels. Only boxes of similar shape match: width and
    height each within a factor of two of the box expected at that point of
    the path (a vehicle vanishing into the distance is not continued by a
    bigger one emerging from it).
    """
    if not len(dets) or not len(tracks):
        return np.zeros((len(dets), len(tracks)), np.float32)
    centre_d = (dets[:, :2] + dets[:, 2:]) / 2
    start = (last_seen[:, :2] + last_seen[:, 2:]) / 2
    end = (tracks[:, :2] + tracks[:, 2:]) / 2
    course = end - start  # (M, 2)
    along = np.einsum('nmk,mk->nm', centre_d[:, None] - start[None], course)
    along = np.clip(along / np.maximum((course ** 2).sum(axis=1), 1e-9)[None], 0.0, 1.0)
    nearest = start[None] + along[..., None] * course[None]
    distance = np.linalg.norm(centre_d[:, None] - nearest, axis=2)
    # The size expected where the detection lies along the path.
    size_start = last_seen[:, 2:] - last_seen[:, :2]
    size_end = tracks[:, 2:] - tracks[:, :2]
    size_t = np.maximum(size_start[None] + along[..., None] * (size_end - size_start)[None], 1.0)
    size_d = np.maximum(dets[:, 2:] - dets[:, :2], 1.0)
    ratio = size_d[:, None] / size_t  # width and height ratios (N, M, 2)
    similar = np.all((ratio > 0.5) & (ratio < 2.0), axis=2)
    return np.where(similar, 1.0 - distance / gates[None], 0.0).astype(np.float32)


@dataclass(eq=False)  # identity: tracks are told apart by who they are, not by value
class Track:
    """One tracked vehicle, or a part of one (:mod:`rigs`)."""

    track_id: int  # 0 while not published (held back, or a part of another track's vehicle)
    motion: BoxFilter
    last_box: np.ndarray = field(default_factory=lambda: np.zeros(4, np.float32))
    lost: int = 0  # frames missed in a row
    unseen: float = 0.0  # time since last seen, in reference frames
    votes: Dict[Tuple[int, str], float] = field(default_factory=dict)
    host: Optional['Track'] = None  # the vehicle this track is held back for, or a part of
    part: bool = False
    nested_s: float = 0.0  # seconds nested with its host
    apart_s: float = 0.0  # seconds apart from its host

    @property
    def box(self) -> np.ndarray:
        """Return the filtered (or, while lost, predicted) box."""
        return self.motion.box

    def vote(self, class_id: int, class_name: str, weight: float) -> None:
        """Add one detection's class to the vote, with its weight (score times size)."""
        key = (class_id, class_name)
        self.votes[key] = self.votes.get(key, 0.0) + weight

    def voted(self) -> Tuple[int, str]:
        """Return the class (id, name) the track's detections voted for."""
        return max(self.votes.items(), key=lambda item: item[1])[0]


class ByteTracker:
    """Stable integer ids, and one class per vehicle, across frames."""

    def __init__(self, high_threshold: float = 0.5, low_threshold: float = 0.1,
                 match_iou: float = 0.2, low_match_iou: float = 0.4,
                 new_track_threshold: float = 0.5, max_lost_s: float = LOST_WAIT_S,
                 refind_gate: float = 0.8) -> None:
        self.high_threshold = high_threshold
        self.low_threshold = low_threshold
        self.match_iou = match_iou
        self.low_match_iou = low_match_iou
        self.new_track_threshold = new_track_threshold
        self.max_lost_s = max_lost_s
        self.refind_gate = refind_gate  # least centre gate, in box diagonals
        self.tracks: List[Track] = []
        self._next_id = 1
        self._last_stamp: Optional[float] = None

    def update(self, detections: Detections, image_size: Optional[ImageSize] = None,
               stamp: Optional[float] = None) -> Detections:
        """
        Assign track ids and voted classes to one frame's detections.

        ``image_size`` (width, height) tells which boxes are cut by the image
        edge; ``stamp`` (seconds) when the frame was taken, so that motion is
        predicted over the real interval (without stamps, frames are taken
        to be ``1 / REFERENCE_FPS`` apart). Returns the matched and new
        detections; unmatched low-score ones are dropped.
        """
        steps = self._steps(stamp)
        for track in self.tracks:
            track.motion.predict(steps)
            track.unseen += steps
        # Expired: missed for longer than max_lost_s. A track seen in the last frame is
        # never dropped by a gap in the frames themselves (a stalled camera or detector).
        self.tracks = [t for t in self.tracks
                       if t.lost == 0 or t.unseen <= self.max_lost_s * REFERENCE_FPS]
        predicted = np.array([t.box for t in self.tracks], np.float32).reshape(-1, 4)
        if image_size is not None:  # a vehicle leaving the picture is matched by its visible part
            predicted = _clip(predicted, image_size)
        boxes, scores = detections.boxes, detections.scores
        high = np.flatnonzero(scores >= self.high_threshold)
        low = np.flatnonzero((scores >= self.low_threshold) & (scores < self.high_threshold))
        assigned = np.full(len(detections), -1, np.int64)

        def match(dets: np.ndarray, tracks: List[int], affinity: np.ndarray,
                  threshold: float) -> None:
            for d, t in greedy_match(affinity, threshold):
                assigned[dets[d]] = tracks[t]

        everyone = list(range(len(self.tracks)))
        overlap = iou_matrix(boxes[high], predicted)
        # Fused with the score (ByteTrack's fuse_score): where a vehicle's full
        # box and a weaker box of a part of it both overlap the prediction,
        # the full box continues the track.
        fused = np.where(overlap >= self.match_iou, overlap * scores[high][:, None], 0.0)
        match(high, everyone, fused, 1e-6)
        free = self._unmatched(assigned, lambda t: self.tracks[t].lost == 0)
        match(low, free, iou_matrix(boxes[low], predicted[free]), self.low_match_iou)
        rest = high[assigned[high] < 0]
        free = self._unmatched(assigned, lambda t: True)
        gates = np.array([self._refind_gate(self.tracks[t]) for t in free])
        last_seen = np.array([self.tracks[t].last_box for t in free], np.float32).reshape(-1, 4)
        affinity = path_affinity(boxes[rest], predicted[free], last_seen, gates)
        affinity *= self._same_way(boxes[rest], free)
        match(rest, free, affinity, 1e-6)

        owners: Dict[int, Track] = {}  # detection index -> its track
        for index in np.flatnonzero(assigned >= 0):
            track = self.tracks[assigned[index]]
            self._correct(track, boxes[index], image_size)
            track.vote(int(detections.class_ids[index]), detections.class_names[index],
                       _weight(boxes[index], scores[index]))
            owners[int(index)] = track
        matched = set(owners.values())
        for track in self.tracks:
            if track not in matched:
                track.lost += 1
        self.tracks = [t for t in self.tracks
                       if not (t.lost and _outside(t.box, image_size))]
        # Larger boxes first: of a rig's boxes found in one frame, the whole is published.
        newborn = [i for i in high[assigned[high] < 0] if scores[i] >= self.new_track_threshold]
        for index in sorted(newborn, key=lambda i: -_weight(boxes[i], 1.0)):
            track = Track(0, BoxFilter(boxes[index].astype(np.float64)),
                          boxes[index].astype(np.float32))
            track.vote(int(detections.class_ids[index]), detections.class_names[index],
                       _weight(boxes[index], scores[index]))
            track.host = rigs.host_for(boxes[index], self.tracks)
            if track.host is None:
                track.track_id, self._next_id = self._next_id, self._next_id + 1
            self.tracks.append(track)
            owners[int(index)] = track
        self._next_id = rigs.settle(self.tracks, steps / REFERENCE_FPS, self._next_id)
        # One detection per vehicle: its largest box, its id, the class that box's track
        # voted for.
        ids = np.full(len(detections), -1, np.int64)
        class_ids, names = detections.class_ids.copy(), list(detections.class_names)
        for chosen, (vehicle, track) in rigs.report(owners, boxes, self.tracks).items():
            ids[chosen] = vehicle.track_id
            class_ids[chosen], names[chosen] = track.voted()
        return Detections(boxes, scores, class_ids, names, ids).select(ids >= 0)

    def reset(self) -> None:
        """Forget every track (e.g. when the source changes)."""
        self.tracks = []
        self._last_stamp = None

    def _steps(self, stamp: Optional[float]) -> float:
        """Return the time since the last frame in reference frames (1 without stamps)."""
        last, self._last_stamp = self._last_stamp, stamp
        if stamp is None or last is None or stamp <= last:
            return 1.0  # no stamps, the first frame, or time went back (a replay looped)
        return (stamp - last) * REFERENCE_FPS

    def _refind_gate(self, track: Track) -> float:
        """
        Return how far (pixels) a detection's centre may lie from the track's prediction.

        At least ``refind_gate`` box diagonals (a fast vehicle just seen), or
        three standard deviations of the predicted centre: the filter's
        uncertainty grows while the track is lost, so the gate widens with
        the time unseen and with the speed's uncertainty; but never past
        ``MAX_GATE`` diagonals from the path (the filter's noise allows
        for more acceleration than a vehicle has).
        """
        width, height = np.maximum(track.box[2:] - track.box[:2], 1.0)
        diagonal = float(np.hypot(width, height))
        sigma = float(np.sqrt(track.motion.centre_variance()))
        return min(max(self.refind_gate * diagonal, 3.0 * sigma), MAX_GATE * diagonal)

    def _same_way(self, dets: np.ndarray, tracks: List[int]) -> np.ndarray:
        """
        Return 0 where a detection lies off a moving track's course, else 1 (N, M).

        Where vehicles vanish into the distance others emerge from it: a lost
        track driving away must not be continued by a vehicle coming the
        other way (or from the next lane), so for a track that moved more
        than a third of its box since it was last seen, the step from its
        last seen box to the detection must head within 37 degrees of the
        way it was going (OC-SORT's direction consistency). Short steps
        are noise, and a standing track has no course: a parked car is found
        again where it stood, a queued one after it moved off.
        """
        ok = np.ones((len(dets), len(tracks)), np.float32)
        for column, t in enumerate(tracks):
            track = self.tracks[t]
            velocity = track.motion.velocity.reshape(2, 2).mean(axis=0)  # centre, px/frame
            course = velocity * track.unseen  # expected travel since the last sighting
            diagonal = max(1.0, float(np.hypot(*(track.last_box[2:] - track.last_box[:2]))))
            if np.hypot(*course) <= diagonal / 3:
                continue
            last = (track.last_box[:2] + track.last_box[2:]) / 2
            step = (dets[:, :2] + dets[:, 2:]) / 2 - last
            length = np.hypot(step[:, 0], step[:, 1])
            cosine = step @ course / np.maximum(length * np.hypot(*course), 1e-9)
            ok[(length > diagonal / 3) & (cosine < COURSE_COSINE), column] = 0.0
        return ok

    def _unmatched(self, assigned: np.ndarray, wanted) -> List[int]:
        taken = set(assigned[assigned >= 0].tolist())
        return [t for t in range(len(self.tracks)) if t not in taken and wanted(t)]

    @staticmethod
    def _correct(track: Track, box: np.ndarray, image_size: Optional[ImageSize]) -> None:
        observed = np.ones(4, bool)
        if image_size is not None:
            width, height = image_size
            observed = np.array([box[0] > EDGE_MARGIN, box[1] > EDGE_MARGIN,
                                 box[2] < width - EDGE_MARGIN, box[3] < height - EDGE_MARGIN])
        track.motion.update(box.astype(np.float64), observed)
        track.last_box = box.astype(np.float32)
        track.lost = 0
        track.unseen = 0.0


def _clip(boxes: np.ndarray, image_size: ImageSize) -> np.ndarray:
    width, height = image_size
    out = boxes.copy()
    out[:, [0, 2]] = np.clip(out[:, [0, 2]], 0, width)  # (fancy indexing copies: assign)
    out[:, [1, 3]] = np.clip(out[:, [1, 3]], 0, height)
    return out


def _outside(box: np.ndarray, image_size: Optional[ImageSize]) -> bool:
    """Tell whether a predicted box has left the picture entirely."""
    if image_size is None:
        return False
    width, height = image_size
    return bool(box[2] <= 0 or box[3] <= 0 or box[0] >= width or box[1] >= height)


def _weight(box: np.ndarray, score: float) -> float:
    """Return a detection's weight in its track's class vote: its score times its area."""
    return float(score) * max(float(np.prod(box[2:] - box[:2])), 1.0)
