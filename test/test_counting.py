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

"""Counting lines (pure core) on hand-made tracks and on generated traffic."""

from __future__ import annotations

import collections
from typing import Dict, List, Tuple

import numpy as np
import pytest

from vehicle_detection.core.bridge.config import BRIDGE_PARAMS
from vehicle_detection.core.counting.config import parse_geometry
from vehicle_detection.core.counting.overlay import (
    draw_counts, LINE_COLOUR, parse_status, ZONE_COLOUR)
from vehicle_detection.core.counting.session import CountingSession, PeriodCounts
from vehicle_detection.core.detection.tracker import ByteTracker
from vehicle_detection.core.evaluation.alerts import truth_as_detections
from vehicle_detection.core.evaluation.counts import true_crossings
from vehicle_detection.core.evaluation.scenarios import scenario
from vehicle_detection.core.evaluation.scene import build_truth
from vehicle_detection.core.events.geometry import CountingLine, inside, LineCrossings
from vehicle_detection.core.events.vehicles import ground_point, Sighting
from vehicle_detection.core.params import spec_map

LINE = CountingLine('main', (0.0, 250.0), (640.0, 250.0), ('towards', 'away'))


def box_with_bottom(y: float, x: float = 300.0, height: float = 40.0) -> Tuple[float, ...]:
    return (x, y - height, x + 30.0, y)


def car(track: int, box: Tuple[float, ...], name: str = 'car') -> Sighting:
    return Sighting(track, name, 0.9, box)  # type: ignore[arg-type]


def directions(counter: LineCrossings, bottoms: List[float], track: int = 7) -> List[str]:
    found = []
    for index, y in enumerate(bottoms):
        crossings = counter.update([car(track, box_with_bottom(y))], index * 0.1)
        found += [c.direction for c in crossings]
    return found


def test_a_crossing_is_counted_once_with_its_direction() -> None:
    assert directions(LineCrossings([LINE]), [200, 220, 240, 260, 280, 300]) == ['towards']
    assert directions(LineCrossings([LINE]), [300, 280, 260, 240, 220]) == ['away']
    assert directions(LineCrossings([LINE]), [200, 210, 220]) == []  # never crossed


def test_jitter_on_the_line_and_a_stop_on_it_count_once() -> None:
    jitter = [200, 240, 255, 245, 256, 244, 258, 243, 290, 300]  # the box wobbles on it
    assert directions(LineCrossings([LINE]), jitter) == ['towards']
    stop_and_go = [200, 230, 252] + [252] * 50 + [254, 280, 300]  # a queue stands on it
    assert directions(LineCrossings([LINE]), stop_and_go) == ['towards']
    back_and_forth = [200, 300, 200, 300, 200]  # once per line, whatever it does
    assert directions(LineCrossings([LINE]), back_and_forth) == ['towards']


def test_a_vehicle_beside_the_segment_is_not_counted() -> None:
    short = CountingLine('lane', (0.0, 250.0), (200.0, 250.0))
    assert directions(LineCrossings([short]), [200, 240, 260, 300]) == []  # x = 300 .. 330


def test_geometry_helpers() -> None:
    assert ground_point((10, 20, 30, 60)) == (20.0, 60)
    square = ((0.0, 0.0), (10.0, 0.0), (10.0, 10.0), (0.0, 10.0))
    assert inside(square, (5.0, 5.0)) and not inside(square, (15.0, 5.0))


def scene_counts(name: str, fps: float) -> Tuple[Dict[str, int], Dict[str, int]]:
    """Return (true, counted) crossings per direction of the main line on a generated scene."""
    scene = build_truth(scenario(name, seed=1, fps=fps))
    size = (scene.camera.width, scene.camera.height)
    counter = LineCrossings([LINE])
    tracker = ByteTracker(high_threshold=0.35, new_track_threshold=0.35)
    rng = np.random.default_rng(1)
    counted: Dict[str, int] = collections.Counter()
    for index, frame in enumerate(scene.truth):
        found = tracker.update(truth_as_detections(frame, rng), size, index / fps)
        for crossing in counter.update(found.sightings(), index / fps):
            counted[crossing.direction] += 1
    # The truth: the counting rule on the true paths of the vehicles while visible.
    visible = [[t for t in frame if t.visible >= 0.4] for frame in scene.truth]
    true = {direction: count for (_, direction), count in true_crossings(visible, [LINE]).items()}
    return true, counted


@pytest.mark.parametrize('fps', [10.0, 30.0])
def test_counts_per_direction_on_generated_traffic(fps: float) -> None:
    """
    Measured: 10 fps towards 120 of 121, away 152 of 152; 30 fps 121/121, 152/152.

    The one missed at 10 fps is a car hidden by a lorry while it crosses (its
    track ends before the line and a new one begins after it); at 30 fps a car
    clears the line in the scene's last frames while the truth's last visible
    box is still on it (counted one early, offsetting the hidden one).
    """
    true: Dict[str, int] = collections.Counter()
    counted: Dict[str, int] = collections.Counter()
    for name in ('motorway', 'queue', 'parking', 'mixed'):
        scene_true, scene_counted = scene_counts(name, fps)
        true.update(scene_true)
        counted.update(scene_counted)
        for direction in ('towards', 'away'):  # within one vehicle on every scene
            assert abs(scene_counted[direction] - scene_true.get(direction, 0)) <= 1, (
                name, scene_true, scene_counted)
    for direction in ('towards', 'away'):
        assert abs(counted[direction] - true[direction]) <= 0.03 * true[direction], (
            direction, true, counted)


def test_lines_and_zones_are_parsed_in_pixels_or_fractions() -> None:
    geometry = parse_geometry('bar 0,0.5 1,0.5 towards/away; ramp 410,300 600,300',
                              'shoulder 0.8,0.5 1,0.5 1,1 0.8,1 dwell=30')
    lines, zones = geometry.in_pixels(640, 360)
    assert lines == [CountingLine('bar', (0.0, 180.0), (640.0, 180.0), ('towards', 'away')),
                     CountingLine('ramp', (410.0, 300.0), (600.0, 300.0), ('right', 'left'))]
    assert zones[0].polygon[0] == (512.0, 180.0) and zones[0].dwell_limit_s == 30.0
    assert not parse_geometry('', ' ; ')


@pytest.mark.parametrize('lines, zones, reason', [
    ('bar 0,0.5', '', 'expected NAME X1,Y1 X2,Y2'),
    ('0,0 1,1', '', 'a name comes first'),
    ('bar 0,0.5 0,0.5', '', 'the same'),
    ('bar 0,0.5 1,0.5 up/up', '', 'two different names'),
    ('bar 0,x 1,0.5', '', 'is not a point'),
    ('bar -1,0 1,0.5', '', 'is not a point'),
    ('bar nan,0 1,0.5', '', 'is not a point'),
    ('../etc 0,0 1,1', '', 'a name comes first'),
    ('', 'z 0,0 1,0', '3 to 64 points'),
    ('', 'z ' + ' '.join(f'{i},{i % 2}' for i in range(65)), '3 to 64 points'),
    (';'.join(f'l{i} 0,0 1,1' for i in range(33)), '', 'at most 32 lines'),
    ('', 'z 0,0 1,0 2,0', 'no area'),
    ('', 'z 0,0 1,0 1,1 dwell=-3', 'dwell must be'),
    ('', 'z 0,0 1,0 1,1 dwell=soon', 'dwell must be'),
    ('a 0,0 1,1', 'a 0,0 1,0 1,1', 'used twice'),
    # Fractions and pixels in one entry: a typo, not a line 1.2 pixels long.
    ('bar 0,0.5 1.2,0.5', '', r"line 'bar 0,0.5 1.2,0.5': mixes fractions of the image "
                              r'\(0.5\) and pixels \(1.2\)'),
    ('', 'z 0.1,0.1 500,0 500,300', "zone 'z 0.1,0.1 500,0 500,300': mixes fractions"),
])
def test_bad_lines_and_zones_say_what_is_wrong(lines: str, zones: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_geometry(lines, zones)


def test_lines_and_zones_outside_the_image_are_named_with_its_size() -> None:
    geometry = parse_geometry('out 0,500 426,500; edge 0,320 426,320; half 200,100 600,100; '
                              'road 0,0.5 1,0.5', 'far 500,500 600,500 600,600; '
                              'whole 0,0 1,0 1,1 0,1; around 0,0 900,0 900,900 0,900')
    assert geometry.outside_image(426, 320) == [
        "line 'out' (0,500 426,500) lies outside the 426x320 image: it can never count",
        "line 'half' (200,100 600,100) reaches outside the 426x320 image: only its part "
        'inside counts',
        "zone 'far' (500,500 600,500 600,600) lies outside the 426x320 image: no vehicle can "
        'ever be in it',
        "zone 'around' (0,0 900,0 900,900 0,900) reaches outside the 426x320 image"]
    # The same pixels fit a larger image; fractions fit every image.
    assert geometry.outside_image(1920, 1080) == []
    assert parse_geometry('road 0,0.5 1,0.5', 'z 0,0 1,0 1,1').outside_image(10, 10) == []


def test_bad_lines_are_refused_as_parameters() -> None:
    specs = spec_map(BRIDGE_PARAMS)
    assert 'counting_lines: ' in (specs['counting_lines'].validate('bar 0,0.5') or '')
    assert specs['counting_zones'].validate('z 0,0 1,0 1,1 dwell=5') is None


def test_periods_are_aligned_to_the_clock_and_sent_also_when_empty() -> None:
    session = CountingSession(parse_geometry('main 0,250 640,250 towards/away', ''), 60)
    closed: List[PeriodCounts] = []
    start = 1_700_000_030.0  # half a minute past a minute
    for index in range(40 * 10):  # 40 s at 10 fps; one car crosses at 5 s and one at 35 s
        stamp = start + index / 10
        tracked = []
        for track, at in ((1, 5.0), (2, 35.0)):
            y = 250.0 + 100.0 * (stamp - start - at)
            if 200 <= y <= 300:
                tracked.append(car(track, box_with_bottom(y)))
        closed += session.update(tracked, stamp, (640, 360)).closed
    closed += session.flush()
    assert [(p.start, p.period_s, p.counts) for p in closed] == [
        (1_699_999_980, 60, {('main', 'towards', 'car'): 1}),
        (1_700_000_040, 60, {('main', 'towards', 'car'): 1})]
    assert session.flush() == []
    status = session.status()
    assert status['total'] == [{'line': 'main', 'direction': 'towards', 'class_name': 'car',
                                'count': 2}]
    assert status['lines'][0]['a'] == [0.0, 250.0]
    quiet = CountingSession(parse_geometry('main 0,250 640,250', ''), 60)
    quiet.update([], start, (640, 360))
    assert [p.counts for p in quiet.flush()] == [{}]  # a period without traffic still goes


def test_a_vehicle_re_found_after_its_count_is_not_counted_again() -> None:
    """Counted, it stops just past the line; its track is lost and a new one begins there."""
    counter = LineCrossings([LINE])
    found = []
    bottoms = [(7, y) for y in (200, 230, 260, 275)] + [(7, 275)] * 5 \
        + [(8, y) for y in (258, 255, 275, 300, 330)]  # new id, box jitters back into the band
    for index, (track, y) in enumerate(bottoms):
        crossings = counter.update([car(track, box_with_bottom(y))], index * 0.1)
        found += [(c.track_id, c.direction) for c in crossings]
    assert found == [(7, 'towards')]
    # A vehicle first seen on the line (found late) counts when it leaves it.
    assert directions(LineCrossings([LINE]), [252, 248, 262, 290]) == ['towards']


def test_the_overlay_draws_lines_and_zones_and_ignores_malformed_status() -> None:
    session = CountingSession(parse_geometry('bar 0,0.5 1,0.5 towards/away',
                                             'bay 0.7,0.1 0.9,0.1 0.9,0.3 0.7,0.3 dwell=5'))
    session.update([], 0.0, (320, 240))
    canvas = draw_counts(np.zeros((240, 320, 3), np.uint8), session.status())
    assert np.all(canvas[120, 250:310] == LINE_COLOUR)  # the line, right of its label
    assert np.all(canvas[24:72, 224] == ZONE_COLOUR)  # the zone's left edge
    hostile = ['[]', 'null', '{"lines": 3}', '{"lines": [{"a": [1e308, 0], "b": [0, 0], '
               '"directions": ["a", "b"]}]}', '{"zones": [{"polygon": [[0, 0], "x", [1]]}]}',
               '{"lines": [{"a": [0, 0], "b": [9, 9], "directions": ["a"]}]}',
               '{"total": [{"count": "many"}], "lines": [{"a": [0, 0], "b": [9, 9], '
               '"directions": [1, 2], "name": {"x": 1}}]}', 'not json']
    for text in hostile:
        status = parse_status(text)
        if status is not None:
            draw_counts(np.zeros((24, 32, 3), np.uint8), status)


def test_the_overlay_shows_the_way_a_oneway_line_allows() -> None:
    def arrowhead_rows(oneway: str) -> Tuple[int, int]:
        line = {'name': 'n', 'a': [0, 120], 'b': [320, 120], 'directions': ['towards', 'away'],
                'oneway': oneway}
        canvas = draw_counts(np.zeros((240, 320, 3), np.uint8), {'lines': [line]})
        width = [int(np.all(canvas[y, 140:180] == LINE_COLOUR, axis=1).sum()) for y in (95, 145)]
        return width[0], width[1]

    up, down = arrowhead_rows('away')  # 'away' is the line's left side: up the picture
    assert up > down
    up, down = arrowhead_rows('towards')
    assert down > up


def test_a_track_lost_within_the_band_past_the_line_counts_once_given_up() -> None:
    """A lorry near the camera, its band wide, is lost just past the line: counted 2 s later."""
    counter = LineCrossings([LINE])
    bottoms = [200.0, 215.0, 230.0, 245.0, 262.0]  # 120 px high: the band is +-30 px
    found = []
    for index in range(60):
        seen = [car(5, box_with_bottom(bottoms[index], height=120.0))] if index < 5 else []
        found += [(c.direction, c.stamp) for c in counter.update(seen, index * 0.1)]
    assert found == [('towards', pytest.approx(0.4))]  # its last sighting, once given up
    # Lost within the band but short of the line itself: not counted.
    counter = LineCrossings([LINE])
    found = [c for index in range(60) for c in counter.update(
        [car(6, box_with_bottom(bottoms[index] - 15, height=120.0))] if index < 5 else [],
        index * 0.1)]
    assert found == []
