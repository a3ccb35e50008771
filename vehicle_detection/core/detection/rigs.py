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
One vehicle per vehicle: the boxes of a rig's parts are not vehicles of their own.

A detector often finds one vehicle as two boxes or more: an articulated
lorry as its cab and as the whole, a car as its front and its rear, a
pickup towing a trailer as a car, a trailer and a "truck". Boxes are one
vehicle when one lies mostly within the other (:data:`NESTED`), covers a
good share of it (:data:`SHARE`: a vehicle far ahead of a near lorry is a
small box within the lorry's) and does not reach below it (a vehicle's
nearest point, its lowest in the picture, belongs to the whole: a separate
vehicle in front of a lorry reaches below the lorry's box), and they stay
so for :data:`TOGETHER_S`. Vehicles that only pass
close do not: beside each other their boxes lie side by side, one hidden
behind another shows only what lies outside the nearer one's box, and an
overtaker's box slides out of the other's.

It is decided in the tracker, so that ``/detections`` carries one id per
vehicle and every consumer (the alert policy, the counter, a user's own
node) sees one vehicle:

- a new track nested with a published vehicle is *held back* (not
  reported); once it has stayed nested for :data:`TOGETHER_S` it is a
  *part* of that vehicle, and stays tracked so that its boxes start no
  track of their own;
- a vehicle is reported once per frame, under the id published first: its
  largest box of the frame (the whole, when it was found), with the class
  its boxes voted for together (a lorry, not the "car" of its cab);
- a held-back track apart from its vehicle for :data:`APART_S`, or a part
  apart for :data:`PART_APART_S`, is a vehicle of its own and is published
  then; when a vehicle's first track is missed while a part of it is seen,
  the part carries the vehicle (and its id) on.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, Optional, Protocol, Sequence, Tuple, TypeVar

import numpy as np

NESTED = 0.8  # share of the smaller box that lies within the larger
BELOW = 0.1  # of the larger box's height (2 px at least): how far the smaller may reach
#                below it
MARGIN = 0.04  # of the larger box's size: how much boxes of one vehicle wobble
SHARE = 0.1  # of the larger box's area: the least a part covers (a cab, a car's front)
TOGETHER_S = 0.3  # seconds nested before a held-back track is a part of its vehicle
APART_S = 0.3  # seconds apart before a held-back track is a vehicle of its own
PART_APART_S = 1.0  # seconds apart before a part is (it was a vehicle driving along)


class RigTrack(Protocol):
    """What this module needs of a track."""

    track_id: int  # 0: not published
    last_box: np.ndarray
    lost: int
    host: Any  # the vehicle's first track (of its own type) it is held back for or a part of
    part: bool
    nested_s: float
    apart_s: float


R = TypeVar('R', bound=RigTrack)


def nested(part: np.ndarray, whole: np.ndarray) -> bool:
    """Tell whether box ``part`` lies within box ``whole`` as a part of one vehicle."""
    part_area, whole_area = _area(part), _area(whole)
    if not SHARE * whole_area <= part_area <= whole_area:
        return False
    # The whole box grown by what a detector's boxes wobble (a pixel at least).
    margin = np.maximum(MARGIN * (whole[2:] - whole[:2]), 1.0)
    grown = np.concatenate([whole[:2] - margin, whole[2:] + margin])
    inner = np.minimum(part[2:], grown[2:]) - np.maximum(part[:2], grown[:2])
    return bool(np.all(inner > 0)) and float(np.prod(inner)) >= NESTED * part_area \
        and part[3] <= whole[3] + max(BELOW * (whole[3] - whole[1]), 2.0)


def one_vehicle(a: np.ndarray, b: np.ndarray) -> bool:
    """Tell whether two boxes lie as the parts of one vehicle (either within the other)."""
    return nested(a, b) or nested(b, a)


def host_for(box: np.ndarray, tracks: Sequence[R]) -> Optional[R]:
    """Return the published vehicle seen in this frame that ``box`` is nested with, if any."""
    for track in tracks:
        if track.track_id > 0 and track.host is None and _seen(track, tracks) \
                and _nested_in(box, track, tracks):
            return track
    return None


def settle(tracks: Sequence[R], seconds: float, next_id: int) -> int:
    """
    Merge, publish or release the held-back tracks and parts after a frame.

    ``seconds`` is the time since the last frame; ``next_id`` the next free
    track id. Returns the next free id after those given out here.
    """
    for vehicle in [t for t in tracks if t.host is None and t.track_id > 0 and t.lost]:
        seen = [t for t in tracks if t.host is vehicle and t.part and t.lost == 0]
        if seen:  # its first track was missed, a part seen: the part carries the vehicle on
            _promote(max(seen, key=lambda t: _area(t.last_box)), vehicle, tracks)
    alive = {id(track) for track in tracks}
    for track in tracks:
        host = track.host
        if host is None:
            continue
        if id(host) not in alive:  # the vehicle's first track was dropped
            next_id = _orphaned(track, host, tracks, next_id)
            continue
        if track.lost or not _seen(host, tracks, leave_out=track):
            continue  # one of them unseen in this frame: nothing to judge
        if _nested_in(track.last_box, host, tracks, leave_out=track):
            track.nested_s, track.apart_s = track.nested_s + seconds, 0.0
        elif _seen(host, tracks, held=False, leave_out=track):  # held-back tracks never part it
            track.nested_s, track.apart_s = 0.0, track.apart_s + seconds
        if track.apart_s >= (PART_APART_S if track.part else APART_S):
            track.host, track.part, track.nested_s, track.apart_s = None, False, 0.0, 0.0
            track.track_id, next_id = next_id, next_id + 1  # a vehicle of its own after all
        elif track.nested_s >= TOGETHER_S:
            track.part = True
    return next_id


def report(owners: Dict[int, R], boxes: np.ndarray, tracks: Sequence[R]
           ) -> Dict[int, Tuple[R, R]]:
    """
    Return, of this frame's detections, the one to report per vehicle: index -> (vehicle, track).

    Each vehicle (a published track with its parts) is reported by its
    largest box of the frame, under its id; the track returned with it is the
    one whose class the vehicle has: its largest (the whole's, also in a
    frame where only a part was found). Held-back tracks are not reported,
    nor parts seen apart from the vehicle.
    """
    chosen: Dict[int, Tuple[float, int, R, R]] = {}
    for index, track in owners.items():
        # A part seen apart from its vehicle in this frame does not show the vehicle.
        vehicle = track if track.host is None \
            else track.host if track.part and not track.apart_s else None
        if vehicle is None or vehicle.track_id <= 0:
            continue
        size = _area(boxes[index])
        if id(vehicle) not in chosen or size > chosen[id(vehicle)][0]:
            chosen[id(vehicle)] = (size, index, vehicle, track)
    return {index: (vehicle, _largest(vehicle, tracks))
            for _, index, vehicle, _ in chosen.values()}


def _largest(vehicle: R, tracks: Iterable[R]) -> R:
    """Return the track of a vehicle (itself or a part) with the largest box: the whole."""
    members = [t for t in tracks if t is vehicle or (t.host is vehicle and t.part)]
    return max([vehicle, *members], key=lambda t: _area(t.last_box))


def _promote(part: R, vehicle: R, tracks: Sequence[R]) -> None:
    """Make ``part`` the first track of ``vehicle``'s vehicle, under its id."""
    part.track_id, vehicle.track_id = vehicle.track_id, 0
    for track in tracks:
        if track.host is vehicle:
            track.host = part
    part.host, part.part, part.nested_s, part.apart_s = None, False, 0.0, 0.0
    vehicle.host, vehicle.part, vehicle.nested_s, vehicle.apart_s = part, True, 0.0, 0.0


def _orphaned(track: R, host: R, tracks: Sequence[R], next_id: int) -> int:
    """Give a track whose vehicle's first track was dropped its place; return the next id."""
    heir = track.part
    track.host, track.part, track.nested_s, track.apart_s = None, False, 0.0, 0.0
    if heir:  # the first part carries the vehicle's id on, the others follow it
        track.track_id = host.track_id
        for other in tracks:
            if other.host is host and other is not track:
                other.host = track
        return next_id
    track.track_id = next_id
    return next_id + 1


def _seen(vehicle: R, tracks: Sequence[R], held: bool = True,
          leave_out: Optional[R] = None) -> bool:
    """Tell whether a vehicle was seen in this frame (by a track of it; ``held``: or for it)."""
    return (vehicle.lost == 0 and vehicle is not leave_out) or any(
        t.host is vehicle and t.lost == 0 and (held or t.part) and t is not leave_out
        for t in tracks)


def _nested_in(box: np.ndarray, vehicle: R, tracks: Sequence[R],
               leave_out: Optional[R] = None) -> bool:
    """
    Tell whether ``box`` lies as a part with one of a vehicle's boxes seen in this frame.

    Its parts and the tracks held back for it count: of a rig entering the
    picture, the first box may be a part, and the whole held back for it.
    Each box on its own, never their union: two vehicles wrongly joined would
    otherwise swallow every box between them.
    """
    return any(one_vehicle(box, t.last_box) for t in tracks
               if t is not leave_out and t.lost == 0 and (t is vehicle or t.host is vehicle))


def _area(box: np.ndarray) -> float:
    return float(np.prod(np.maximum(box[2:] - box[:2], 0.0)))
