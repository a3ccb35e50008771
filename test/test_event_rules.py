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

"""The event rules (pure core): zone dwell, wrong way, re-identification, the registry."""

from __future__ import annotations

import collections
from typing import List, Sequence

import numpy as np
import pytest

from vehicle_detection.core.bridge.config import BridgeSettings
from vehicle_detection.core.counting.config import parse_geometry
from vehicle_detection.core.detection.tracker import ByteTracker
from vehicle_detection.core.evaluation.alerts import match_alert, run_policy, truth_as_detections
from vehicle_detection.core.evaluation.scenarios import scenario
from vehicle_detection.core.evaluation.scene import build_truth, Scene
from vehicle_detection.core.events.dwell import DwellSettings, ZoneDwellRule
from vehicle_detection.core.events.event import FrameInfo, VehicleEvent
from vehicle_detection.core.events.geometry import side_of
from vehicle_detection.core.events.policy import AlertPolicy
from vehicle_detection.core.events.reid import LastSeen, same_vehicle
from vehicle_detection.core.events.rules import build_rules, configure_rules, RULES
from vehicle_detection.core.events.vehicles import Box, Sighting
from vehicle_detection.core.events.wrong_way import WrongWayRule, WrongWaySettings
from vehicle_detection.core.params import slice_of
from vehicle_detection.wire import ALERT_KINDS

SIZE = (640, 360)
# The generated scenes' carriageways: coming towards the camera left of the middle.
CARRIAGEWAYS = ('coming 0,250 320,250 towards/away oneway=towards; '
                'going 320,250 640,250 towards/away oneway=away')


def car(track: int, box: Sequence[float], score: float = 0.9, name: str = 'car') -> Sighting:
    return Sighting(track, name, score, (box[0], box[1], box[2], box[3]))


def with_bottom(y: float, x: float = 300.0, height: float = 40.0) -> Box:
    return (x, y - height, x + 30.0, y)


def feed(rule, frames: Sequence[List[Sighting]], fps: float = 10.0) -> List[VehicleEvent]:
    """Feed one list of sightings per frame; frame keys are indices."""
    return [event for index, sightings in enumerate(frames)
            for event in rule.update(sightings, FrameInfo(index / fps, index, SIZE))]


def dwell_rule(zones: str) -> ZoneDwellRule:
    return ZoneDwellRule(slice_of(DwellSettings, BridgeSettings(counting_zones=zones)))


def wrong_way_rule(lines: str) -> WrongWayRule:
    return WrongWayRule(slice_of(WrongWaySettings, BridgeSettings(counting_lines=lines)))


# -- stopped vehicles ----------------------------------------------------------------------
BAY = 'shoulder 250,200 400,200 400,300 250,300 dwell=5'


def test_a_parked_vehicle_in_a_zone_raises_one_stopped_event() -> None:
    frames = []
    for index in range(200):  # 20 s parked at 10 fps; a car passes through meanwhile
        frame = [car(3, with_bottom(260.0))]
        if 30 <= index < 40:
            frame.append(car(4, with_bottom(200.0 + 10 * (index - 30), x=320.0)))
        frames.append(frame)
    events = feed(dwell_rule(BAY), frames)
    assert [(e.kind, e.places, e.sighting.track_id) for e in events] == [
        ('stopped_vehicle', {'zone': 'shoulder'}, 3)]
    assert events[0].stamp == pytest.approx(5.0) and events[0].frame == 50 and events[0].still


def test_a_parked_car_re_found_under_a_new_id_raises_no_second_event() -> None:
    """Hidden for 4 s by passing lorries, the car comes back as a new track."""
    frames = [[] if 100 <= index < 140 else [car(3 if index < 100 else 9, with_bottom(260.0))]
              for index in range(300)]  # 30 s at 10 fps; unseen from 10 to 14 s
    assert [(e.sighting.track_id, e.frame) for e in feed(dwell_rule(BAY), frames)] == [(3, 50)]
    # A car that left the bay (seen leaving) hands nothing to the next one parking there.
    frames = [[car(1, with_bottom(260.0 + max(0, index - 20) * 10))] for index in range(40)]
    frames += [[car(2, with_bottom(260.0))] for _ in range(40, 160)]
    assert [(e.sighting.track_id, e.frame) for e in feed(dwell_rule(BAY), frames)] == [(2, 90)]


def parking_bays(scene: Scene) -> str:
    """Return a zone (5 s dwell) around where each parked car of the parking scene stands."""
    parked = {t.vehicle_id: t.box for t in scene.truth[0] if t.vehicle_id in (1, 2)}
    return '; '.join(f'bay{v} {b[0] - 20:.0f},{b[3] - 20:.0f} {b[2] + 20:.0f},{b[3] - 20:.0f} '
                     f'{b[2] + 20:.0f},{b[3] + 20:.0f} {b[0] - 20:.0f},{b[3] + 20:.0f} dwell=5'
                     for v, b in sorted(parked.items()))


def tracked(scene: Scene, seed: int = 1) -> list:
    """Track ideal detections of a scene (jittered boxes, rig parts found too)."""
    tracker = ByteTracker(high_threshold=0.35, new_track_threshold=0.35)
    rng = np.random.default_rng(seed)
    return [tracker.update(truth_as_detections(frame, rng), SIZE, index / scene.fps)
            for index, frame in enumerate(scene.truth)]


@pytest.mark.parametrize('fps', [10.0, 30.0])
def test_each_parked_car_of_the_parking_scene_raises_one_event(fps: float) -> None:
    """Two parked cars, each hidden three times by passing lorries; traffic passes the bays."""
    scene = build_truth(scenario('parking', seed=1, fps=fps))
    events = run_policy(tracked(scene), fps, dwell_rule(parking_bays(scene)), SIZE)
    assert sorted(e.places['zone'] for e in events) == ['bay1', 'bay2']
    assert all(e.stamp >= 5.0 for e in events)


# -- wrong-way drivers ---------------------------------------------------------------------
NORTH = 'north 0,250 640,250 towards/away oneway=away'  # traffic drives up the picture


def drive(bottoms: Sequence[float], track: int = 7, score: float = 0.9) -> List[List[Sighting]]:
    return [[car(track, with_bottom(y), score)] for y in bottoms]


def test_a_car_against_a_oneway_line_raises_one_wrong_way_alert_within_2_s() -> None:
    down = [150.0 + 12 * i for i in range(20)]  # towards the camera, 12 px a frame
    events = feed(wrong_way_rule(NORTH), drive(down))
    assert [(e.kind, e.places, e.sighting.track_id, e.sighting.class_name) for e in events] == [
        ('wrong_way', {'line': 'north', 'direction': 'towards'}, 7, 'car')]
    crossed_at = next(i for i, y in enumerate(down) if y - 250.0 > 0.25 * 40) / 10.0
    assert 0.0 < events[0].stamp - crossed_at <= 2.0
    assert events[0].sighting.bbox == with_bottom(down[events[0].frame])  # its own frame
    assert feed(wrong_way_rule(NORTH), drive(down[::-1])) == []  # the allowed way
    assert feed(wrong_way_rule(NORTH.replace(' oneway=away', '')), drive(down)) == []


def test_no_wrong_way_alert_for_a_box_that_jumps_back_or_was_never_a_vehicle() -> None:
    # A rig driving up: the part above the line was reported, then its whole box below
    # it (the jump back), which then drives on up the right way.
    jump = [230.0, 226.0, 222.0, 275.0, 270.0, 265.0, 259.0, 253.0, 247.0, 240.0, 230.0]
    assert feed(wrong_way_rule(NORTH), drive(jump)) == []
    weak = [150.0 + 12 * i for i in range(20)]  # never scored like a vehicle
    assert feed(wrong_way_rule(NORTH), drive(weak, score=0.3)) == []
    found_on_the_line = [252.0, 262.0, 274.0, 286.0, 298.0]  # where it came from is a guess
    assert feed(wrong_way_rule(NORTH), drive(found_on_the_line)) == []
    # An id passed on: a small far car, then a lorry's box past the line driving on.
    passed_on = [[car(7, (300.0, 100.0, 320.0, 116.0 + i))] for i in range(4)] + [
        [car(7, (250.0, 200.0 + 15 * i, 350.0, 300.0 + 15 * i))] for i in range(4)]
    assert feed(wrong_way_rule(NORTH), passed_on) == []


def wrong_way_truth(scene: Scene, lines) -> set:
    """Return the vehicles whose true path crosses a line against its one way."""
    first, last = {}, {}
    for frame in scene.truth:
        for truth in frame:
            if truth.visible >= 0.4 and truth.box[3] - truth.box[1] >= 8:
                first.setdefault(truth.vehicle_id, truth)
                last[truth.vehicle_id] = truth
    crossing = set()
    for vehicle, start in first.items():
        for line in lines:
            before, after = side_of(line, start.box), side_of(line, last[vehicle].box)
            if before is not None and after and before != after \
                    and line.directions[0 if after > 0 else 1] != line.oneway:
                crossing.add(vehicle)
    return crossing


@pytest.mark.parametrize('fps', [10.0, 30.0])
def test_every_generated_wrong_way_driver_is_alerted_once_and_no_one_else(fps: float) -> None:
    """Measured: 13 of 13 at both rates, none else (bench/tracking.py: 10 000 vehicles)."""
    for name in ('wrong_way', 'rigs', 'close'):
        scene = build_truth(scenario(name, seed=0, fps=fps))
        lines = parse_geometry(CARRIAGEWAYS, '').in_pixels(*SIZE)[0]
        expected = wrong_way_truth(scene, lines)
        assert expected <= {v.vehicle_id for v in scene.vehicles if v.wrong_way}
        events = run_policy(tracked(scene), fps, wrong_way_rule(CARRIAGEWAYS), SIZE)
        alerted = collections.Counter(match_alert(e, scene.truth[e.frame]) for e in events)
        assert set(alerted) == expected and set(alerted.values()) <= {1}, (name, alerted)
        assert (name == 'wrong_way') == bool(expected)


def test_oneway_lines_are_parsed_and_checked() -> None:
    line = parse_geometry('north 0,0.5 1,0.5 towards/away oneway=away', '').lines[0][0]
    assert (line.directions, line.oneway) == (('towards', 'away'), 'away')
    assert parse_geometry('n oneway=left 0,1 9,1', '').lines[0][0].oneway == 'left'
    for text, reason in (('n 0,0 1,1 towards/away oneway=up', 'must name one of its'),
                         ('n 0,0 1,1 oneway=away', 'right or left'),
                         ('n 0,0 1,1 a/b oneway=a oneway=b', 'one oneway= at most')):
        with pytest.raises(ValueError, match=reason):
            parse_geometry(text, '')


# -- one re-identification rule -------------------------------------------------------------
def seen_at(box: Box, stamp: float, path: Sequence[Box] = ()) -> LastSeen:
    seen = LastSeen(box, stamp)
    seen.path.extend((stamp, b) for b in (path or [box]))
    return seen


def test_the_re_identification_rule() -> None:
    here = (100.0, 100.0, 160.0, 140.0)
    moving = seen_at(here, 10.0, [(40.0, 100.0, 100.0, 140.0), here])  # heading right
    assert same_vehicle(moving, (110.0, 100.0, 170.0, 140.0), 11.0)  # lost a moment
    assert not same_vehicle(moving, here, 10.0)  # the same frame: another vehicle
    assert not same_vehicle(moving, here, 12.5)  # lost too long for a moving vehicle
    assert not same_vehicle(moving, here, 11.0, heading=(-30.0, 0.0))  # comes the other way
    parked = seen_at(here, 10.0)
    assert same_vehicle(parked, here, 50.0)  # a parked car hidden 40 s
    assert not same_vehicle(parked, here, 50.0, standing=False)
    assert not same_vehicle(parked, here, 80.0)  # beyond the place memory (60 s)


# -- the registry ----------------------------------------------------------------------------
def test_every_rule_takes_its_slice_of_the_settings_and_emits_a_wire_kind() -> None:
    settings = BridgeSettings(min_track_hits=5, counting_lines=NORTH, counting_zones=BAY)
    rules = build_rules(settings)
    assert [type(rule) for rule in rules] == list(RULES)
    policy = rules[0]
    assert isinstance(policy, AlertPolicy) and policy.settings.min_track_hits == 5
    configure_rules(rules, BridgeSettings(min_track_hits=2, snapshot_window=0.0))
    assert policy.settings.min_track_hits == 2
    kinds = {'vehicle'}
    down = [150.0 + 12 * i for i in range(30)]
    for rule in build_rules(BridgeSettings(counting_lines=NORTH, counting_zones=BAY)):
        frames = drive(down) + [[car(9, with_bottom(260.0))] for _ in range(80)]
        kinds |= {event.kind for event in feed(rule, frames)}
    assert kinds == set(ALERT_KINDS)
    with pytest.raises(ValueError, match='names its zone'):
        VehicleEvent('stopped_vehicle', car(1, with_bottom(1.0)), 0.0, 0)
