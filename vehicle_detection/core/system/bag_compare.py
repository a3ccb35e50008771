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
Compare the detections of a replay with a reference, frame by frame (no ROS).

Both are JSON lines, one frame a line, with its ``detections`` (``class_name``
and ``bbox`` [x1, y1, x2, y2] in pixels). A replay (``bag play --record``)
names each frame by its ``stamp_ns``, its ``frame`` (position in the bag) and
``time_s`` (seconds since the bag's first image); ``vehicle-detection
detect`` output names it by ``frame`` (in the video or folder) and ``time_s``
(frame over the video's rate). Frames are joined by the first rule that
joins any:

1. the same ``stamp_ns`` (replays of one bag);
2. the same moment of the recording, ``time_s``: each replayed frame meets
   the reference frame nearest in time, within half the reference's frame
   gap (two bags made from one clip; a 10 fps replay against ``detect`` of
   every frame of the 30 fps video: every third frame is compared);
3. the same ``frame`` number;
4. the order of the lines, when both have as many (one lost frame would
   shift every pair after it).

No frame joined is a failure, not a perfect or a zero score.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
import itertools
import json
import statistics
from typing import Any, Dict, List, Optional, Sequence, Tuple

from vehicle_detection.core.events.vehicles import iou

Boxes = List[Dict[str, Any]]


@dataclass(frozen=True)
class FrameRecord:
    """One frame's detections and what names the frame."""

    detections: Boxes
    stamp_ns: Optional[int] = None
    frame: Optional[int] = None
    time_s: Optional[float] = None


@dataclass(frozen=True)
class Comparison:
    """Matches between a replay's detections and a reference."""

    true_positives: int
    false_positives: int
    false_negatives: int
    frames: int  # frames compared
    joined_by: str = 'stamp'
    unmatched_run_frames: int = 0  # replayed frames without a reference frame

    @property
    def precision(self) -> float:
        """Share of the replay's boxes that match the reference."""
        found = self.true_positives + self.false_positives
        return self.true_positives / found if found else 1.0

    @property
    def recall(self) -> float:
        """Share of the reference's boxes found by the replay."""
        wanted = self.true_positives + self.false_negatives
        return self.true_positives / wanted if wanted else 1.0


class NoCommonFrames(ValueError):
    """The two files share no frame under any rule: nothing can be compared."""


def _optional(record: Dict[str, Any], name: str, kind: type) -> Any:
    return kind(record[name]) if record.get(name) is not None else None


def load_records(path: str) -> List[FrameRecord]:
    """Read detection JSON lines (a replay's or ``detect``'s) in file order."""
    records: List[FrameRecord] = []
    with open(path, encoding='utf-8') as stream:
        for number, line in enumerate(stream, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                detections = list(record['detections'])
                for box in detections:
                    box['class_name'], box['bbox'] = str(box['class_name']), [
                        float(v) for v in box['bbox']]
                records.append(FrameRecord(detections, _optional(record, 'stamp_ns', int),
                                           _optional(record, 'frame', int),
                                           _optional(record, 'time_s', float)))
            except (ValueError, KeyError, TypeError, AttributeError) as error:
                raise ValueError(f'{path}:{number}: not a detection record ({error})') from error
    return records


def join_frames(run: Sequence[FrameRecord], reference: Sequence[FrameRecord]
                ) -> Tuple[List[Tuple[Boxes, Boxes]], str, int]:
    """
    Pair the frames of ``run`` and ``reference`` by the first rule that pairs any.

    Returns (pairs of detections, the rule's name, replayed frames left
    without a partner). By stamp, a frame on one side only is paired with no
    detections (the same bag: every frame should be on both sides).
    """
    stamps = {r.stamp_ns: r.detections for r in reference if r.stamp_ns is not None}
    ours = {r.stamp_ns: r.detections for r in run if r.stamp_ns is not None}
    if set(stamps) & set(ours):
        return [(ours.get(s, []), stamps.get(s, [])) for s in sorted(set(stamps) | set(ours))
                ], 'stamp', len(set(ours) - set(stamps))
    timed = sorted((r.time_s, r.detections) for r in reference if r.time_s is not None)
    if timed and any(r.time_s is not None for r in run):
        times = [t for t, _ in timed]
        gaps = [b - a for a, b in itertools.pairwise(times) if b > a]
        tolerance = max(statistics.median(gaps) / 2 if gaps else 0.05, 1e-3)
        pairs, alone = [], 0
        for record in run:
            moment = record.time_s
            if moment is None:
                alone += 1
                continue
            index = bisect.bisect_left(times, moment)
            near = min((i for i in (index - 1, index) if 0 <= i < len(times)),
                       key=lambda i: abs(times[i] - moment))
            if abs(times[near] - moment) <= tolerance:
                pairs.append((record.detections, timed[near][1]))
            else:
                alone += 1
        if pairs:
            return pairs, 'time since the start of the recording', alone
    numbered = {r.frame: r.detections for r in reference if r.frame is not None}
    if numbered and all(r.frame is not None for r in run):
        pairs = [(r.detections, numbered[r.frame]) for r in run if r.frame in numbered]
        if pairs:
            return pairs, 'frame number', len(run) - len(pairs)
    if len(run) != len(reference):
        return [], 'order', len(run)  # a frame lost on one side shifts all after it
    return [(a.detections, b.detections) for a, b in zip(run, reference)], 'order', 0


def compare(run: Sequence[FrameRecord], reference: Sequence[FrameRecord],
            threshold: float = 0.5) -> Comparison:
    """Join the frames, then match boxes of the same class (greedy, best IoU first)."""
    pairs, rule, alone = join_frames(run, reference)
    if not pairs:
        raise NoCommonFrames(f'no common frames: {len(run)} replayed, {len(reference)} in the '
                             'reference, none joined by stamp, time, frame number or order '
                             '(their counts differ)')
    tp = fp = fn = 0
    for found, wanted in pairs:
        matched = match_boxes(found, wanted, threshold)
        tp += matched
        fp += len(found) - matched
        fn += len(wanted) - matched
    return Comparison(tp, fp, fn, len(pairs), rule, alone)


def match_boxes(found: Boxes, wanted: Boxes, threshold: float) -> int:
    """Return how many boxes of ``found`` match one of ``wanted`` (same class, IoU)."""
    pairs = sorted(((iou(tuple(a['bbox']), tuple(b['bbox'])), i, j)
                    for i, a in enumerate(found) for j, b in enumerate(wanted)
                    if a['class_name'] == b['class_name']), reverse=True)
    used_found, used_wanted = set(), set()
    for overlap, i, j in pairs:
        if overlap >= threshold and i not in used_found and j not in used_wanted:
            used_found.add(i)
            used_wanted.add(j)
    return len(used_found)


def write_record(stream: Any, stamp_ns: int, detections: Boxes,
                 frame: Optional[int] = None, time_s: Optional[float] = None) -> None:
    """Append one replayed frame's detections as a JSON line."""
    record: Dict[str, Any] = {'stamp_ns': stamp_ns}
    if frame is not None:
        record['frame'] = frame
    if time_s is not None:
        record['time_s'] = round(time_s, 6)
    record['detections'] = detections
    stream.write(json.dumps(record) + '\n')
