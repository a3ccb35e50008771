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

"""ByteTrack-style tracker on hand-made box sequences."""

from __future__ import annotations

from typing import List, Sequence

import numpy as np
import pytest

from vehicle_detection.core.detection.detections import Detections
from vehicle_detection.core.detection.tracker import ByteTracker, greedy_match, iou_matrix
from vehicle_detection.core.evaluation.scene import Camera, SIZES


def frame(boxes: Sequence[Sequence[float]], scores: Sequence[float],
          names: Sequence[str] = ()) -> Detections:
    """Build one frame of detections."""
    names = list(names) or ['car'] * len(boxes)
    return Detections(np.array(boxes, np.float32).reshape(-1, 4),
                      np.array(scores, np.float32), np.full(len(boxes), 2, np.int64),
                      names, np.full(len(boxes), -1, np.int64))


def box_at(x: float, y: float = 100, w: float = 60, h: float = 40) -> List[float]:
    """Return a box with its top-left corner at (x, y)."""
    return [x, y, x + w, y + h]


def test_iou_and_matching() -> None:
    a = np.array([box_at(0, 0, 10, 10)], np.float32)
    b = np.array([box_at(5, 0, 10, 10), box_at(100, 0, 10, 10)], np.float32)
    np.testing.assert_allclose(iou_matrix(a, b), [[50 / 150, 0]])
    assert greedy_match(np.array([[0.9, 0.8], [0.85, 0.1]]), 0.3) == [(0, 0)]
    assert greedy_match(np.zeros((0, 3)), 0.3) == []


def test_two_vehicles_crossing_keep_their_ids() -> None:
    tracker = ByteTracker()
    history = {'east': [], 'west': []}
    for t in range(40):
        east, west = box_at(10 + 12 * t, 100), box_at(490 - 12 * t, 110)
        out = tracker.update(frame([east, west], [0.9, 0.85]))
        ids = dict(zip(out.boxes[:, 1].round().tolist(), out.track_ids.tolist()))  # by lane
        history['east'].append(ids[100])
        history['west'].append(ids[110])
    assert len(set(history['east'])) == 1 and len(set(history['west'])) == 1
    assert history['east'][0] != history['west'][0]


def test_occlusion_gap_keeps_the_id() -> None:
    tracker = ByteTracker(max_lost_s=10 / 30)
    ids = []
    for t in range(30):
        box = box_at(20 + 10 * t)
        occluded = 12 <= t < 18  # six frames behind a bus
        out = tracker.update(frame([] if occluded else [box], [] if occluded else [0.9]))
        if not occluded:
            ids.extend(out.track_ids.tolist())
    assert len(ids) == 24 and len(set(ids)) == 1


def test_low_score_frames_continue_a_track() -> None:
    tracker = ByteTracker()
    scores = [0.9] * 5 + [0.2] * 5 + [0.9] * 5  # score dips, e.g. partly hidden
    ids = [tracker.update(frame([box_at(50 + 5 * t)], [s])).track_ids.tolist()
           for t, s in enumerate(scores)]
    assert all(len(i) == 1 for i in ids) and len({i[0] for i in ids}) == 1
    # A lone low-score box never starts a track.
    assert len(ByteTracker().update(frame([box_at(0)], [0.2]))) == 0


def test_parked_vehicle_one_id_and_lost_tracks_expire() -> None:
    tracker = ByteTracker(max_lost_s=5 / 30)
    jitter = np.random.default_rng(0).normal(0, 1.0, (200, 4))
    ids = {int(tracker.update(frame([np.add(box_at(300), jitter[t])], [0.8])).track_ids[0])
           for t in range(200)}
    assert ids == {1}
    for _ in range(6):
        tracker.update(frame([], []))
    assert tracker.tracks == []
    assert tracker.update(frame([box_at(300)], [0.8])).track_ids.tolist() == [2]


def test_class_flicker_keeps_the_id() -> None:
    tracker = ByteTracker()
    ids = [tracker.update(frame([box_at(100 + 3 * t)], [0.8],
                                ['car' if t % 2 else 'truck'])).track_ids[0] for t in range(10)]
    assert len(set(ids)) == 1


def road_box(lateral: float, distance: float) -> List[float]:
    """Return a car's box on the generated scenes' road camera."""
    return list(Camera().box(lateral, distance, SIZES['car']))


def test_vehicle_vanishing_into_the_distance_is_not_continued_by_one_emerging() -> None:
    tracker = ByteTracker(high_threshold=0.35, new_track_threshold=0.35)
    fps, ids = 30.0, {'away': set(), 'towards': set()}
    for index in range(90):
        t = index / fps
        away_d, towards_d = 15 + 25 * t, 75 - 25 * (t - 1.5)
        boxes, kinds = [], []
        if away_d < 45:  # then too small to be detected
            boxes.append(road_box(2.3, away_d))
            kinds.append('away')
        if t >= 1.5:  # emerges from where the other vanished
            boxes.append(road_box(-2.3, towards_d))
            kinds.append('towards')
        out = tracker.update(frame(boxes, [0.6] * len(boxes)), (640, 360), t)
        for kind, track_id in zip(kinds, out.track_ids.tolist()):
            ids[kind].add(track_id)
    assert len(ids['away']) == 1 and len(ids['towards']) == 1
    assert ids['away'] != ids['towards']


@pytest.mark.parametrize('fps', [10.0, 30.0])
def test_receding_vehicle_found_again_short_of_its_prediction(fps: float) -> None:
    """Perspective slows it in pixels while hidden: it is found on its path, not beyond."""
    tracker = ByteTracker(high_threshold=0.35, new_track_threshold=0.35)
    ids = []
    for index in range(round(2.5 * fps)):
        t = index / fps
        hidden = 0.8 <= t < 1.6  # behind a lorry
        box = road_box(2.3, 8 + 20 * t)
        out = tracker.update(frame([] if hidden else [box], [] if hidden else [0.7]),
                             (640, 360), t)
        ids.extend(out.track_ids.tolist())
    assert len(set(ids)) == 1


def test_lost_tracks_expire_after_a_time_not_a_frame_count() -> None:
    def ids_after(fps: float, unseen_until: float) -> List[int]:
        """Seen for 5 frames, missed in every frame until ``unseen_until``, seen again."""
        tracker = ByteTracker(max_lost_s=2.0)
        ids = [int(tracker.update(frame([box_at(300)], [0.8]), None, i / fps).track_ids[0])
               for i in range(5)]
        for index in range(5, int(unseen_until * fps)):
            tracker.update(frame([], []), None, index / fps)
        return ids + tracker.update(frame([box_at(300)], [0.8]), None,
                                    unseen_until).track_ids.tolist()

    for fps in (10.0, 30.0):
        ids = ids_after(fps, 3.0)  # missed for 2.6 s
        assert ids[-1] != ids[0], fps
        assert len(set(ids_after(fps, 1.5))) == 1, fps  # missed for 1.1 s


def test_a_gap_in_the_frames_does_not_end_a_track() -> None:
    """A stalled camera or detector: no frame for 3 s, the vehicle was not missed in any."""
    tracker = ByteTracker(max_lost_s=2.0)
    ids = [int(tracker.update(frame([box_at(300)], [0.8]), None, t).track_ids[0])
           for t in (0.0, 0.1, 0.2, 3.2, 3.3)]
    assert set(ids) == {1}


def test_the_full_box_continues_a_track_rather_than_a_part_of_it() -> None:
    tracker = ByteTracker()
    for _ in range(5):
        tracker.update(frame([box_at(100, 100, 60, 80)], [0.8]))
    # The vehicle's full box (lower) and a weaker box of its roof, which
    # overlaps the prediction more.
    out = tracker.update(frame([box_at(100, 120, 60, 80), box_at(100, 100, 60, 60)],
                               [0.8, 0.45]))
    assert out.track_ids.tolist() == [1]
    assert out.boxes[0].tolist() == box_at(100, 120, 60, 80)


def clipped(box: List[float], width: float = 640, height: float = 360) -> List[float]:
    """Return the part of ``box`` inside the picture (what a detector boxes)."""
    return [max(box[0], 0.0), max(box[1], 0.0), min(box[2], width), min(box[3], height)]


@pytest.mark.parametrize('fps', [10.0, 30.0])
def test_vehicles_cut_by_the_frame_edge_keep_one_id(fps: float) -> None:
    """One drives out at the bottom (its box cut ever more), one comes in from there."""
    tracker = ByteTracker(high_threshold=0.35, new_track_threshold=0.35)
    ids = {'leaving': set(), 'entering': set()}
    for index in range(round(3 * fps)):
        t = index / fps
        boxes = {'leaving': road_box(-2.3, 30 - 12 * t), 'entering': road_box(2.3, 3 + 10 * t)}
        seen = {k: clipped(b) for k, b in boxes.items() if b[1] < 360 and b[3] - b[1] > 2}
        seen = {k: b for k, b in seen.items() if b[3] - b[1] >= 10}
        out = tracker.update(frame(list(seen.values()), [0.7] * len(seen)), (640, 360), t)
        for kind, track_id in zip(seen, out.track_ids.tolist()):
            ids[kind].add(track_id)
    assert len(ids['leaving']) == 1 and len(ids['entering']) == 1, ids
    assert ids['leaving'] != ids['entering']


@pytest.mark.parametrize('fps', [10.0, 30.0])
def test_followers_in_a_lane_and_an_overtaker_keep_their_ids(fps: float) -> None:
    """Three cars a second apart in one lane; a faster one overtakes them in the next lane."""
    tracker = ByteTracker(high_threshold=0.35, new_track_threshold=0.35)
    cars = {f'follower{i}': (-2.3, 110.0 + 25.0 * i, 25.0) for i in range(3)}
    cars['overtaker'] = (-5.9, 160.0, 40.0)  # lateral, start distance, speed towards us
    ids: dict = {name: set() for name in cars}
    for index in range(round(5 * fps)):
        t = index / fps
        seen = {}
        for name, (lateral, start, speed) in cars.items():
            distance = start - speed * t
            box = clipped(road_box(lateral, distance)) if 6 < distance < 100 else None
            if box and box[3] - box[1] >= 10:
                seen[name] = box
        out = tracker.update(frame(list(seen.values()), [0.7] * len(seen)), (640, 360), t)
        for name, track_id in zip(seen, out.track_ids.tolist()):
            ids[name].add(track_id)
    assert all(len(found) == 1 for found in ids.values()), ids
    assert len({next(iter(found)) for found in ids.values()}) == 4
