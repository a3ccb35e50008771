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
Field validation without ROS: a recording of a generated scene, its manual count, the report.

The scene's vehicles (their true boxes, as tracks) go through the bridge's
counting session frame by frame; every status it would publish on
``traffic_counts`` is written beside the frames, as ``validate record``
writes them. The "manual" count is a key script made from the scene's
ground truth: the frame where each vehicle crosses, its direction and class.
The commands are run as the operator runs them.
"""

from __future__ import annotations

import collections
import csv
import json
from pathlib import Path
import subprocess
import sys
from typing import Dict, Iterator, List, Tuple

import numpy as np
import pytest

from vehicle_detection.core.counting.config import parse_geometry
from vehicle_detection.core.counting.session import CountingSession
from vehicle_detection.core.evaluation.scenarios import scenario
from vehicle_detection.core.evaluation.scene import build_truth, Truth
from vehicle_detection.core.events.geometry import CountingLine, Crossing, side_of
from vehicle_detection.core.events.vehicles import Sighting
from vehicle_detection.core.system.bag_tools import make_bag
from vehicle_detection.core.validation.recording import (
    count_statuses, RecordingWriter, system_crossings)

CLI = str(Path(sys.prefix) / 'bin' / 'vehicle-detection')
LINES = 'low 0,0.75 1,0.75 towards/away'
FPS = 10.0
BOUNDARY_S = 1_900_000 * 900  # a 15-minute boundary (2024-03-09 16:00 UTC)
FIRST = 30  # the window starts at this frame of the scene: a crossing (frame 22) before it
SPLIT = 137  # the boundary falls at this frame, between crossings (frames 128 and 145)
KEYS = {('towards', 'car'): '1', ('towards', 'truck'): '2', ('away', 'car'): 'q',
        ('away', 'truck'): 'w'}  # the default keys of the recording's scheme (coco)

Crossed = Tuple[int, str, str]  # frame, direction, class


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CLI, 'validate', *args], capture_output=True, text=True,
                          timeout=60)


def stamp_ns(frame: int) -> int:
    return round((BOUNDARY_S + (frame - SPLIT) / FPS) * 1e9)


def true_crossing_frames(truth: List[List[Truth]], line: CountingLine) -> List[Crossed]:
    """Return each vehicle's crossing: the frame its ground point reaches its last side."""
    paths: Dict[int, List[Tuple[int, int, str]]] = collections.defaultdict(list)
    for index, frame in enumerate(truth):
        for vehicle in frame:
            if vehicle.box[3] - vehicle.box[1] >= 8:  # true_crossings' rule
                paths[vehicle.vehicle_id].append((index, side_of(line, vehicle.box),
                                                  vehicle.kind))
    crossed = []
    for path in paths.values():
        before, after = path[0][1], path[-1][1]
        if before is not None and after and before != after:
            arrival = max(i for i, (_, side, _) in enumerate(path) if side != after) + 1
            crossed.append((path[arrival][0], line.directions[0 if after > 0 else 1],
                            path[0][2]))
    return sorted(crossed)


def scene_crossings() -> Tuple[List[List[Truth]], List[Crossed]]:
    """Return the parking scene's vehicles (at least 0.4 visible) and true crossings."""
    built = build_truth(scenario('parking', fps=FPS))
    visible = [[t for t in frame if t.visible >= 0.4] for frame in built.truth]
    line = parse_geometry(LINES, '').in_pixels(640, 360)[0][0]
    return visible, true_crossing_frames(visible, line)


@pytest.fixture(scope='module')
def scene() -> Tuple[List[List[Truth]], List[Crossed]]:
    return scene_crossings()


def counted_frames(truth: List[List[Truth]], missed: Tuple[str, ...] = ()
                   ) -> Iterator[Tuple[int, CountingSession, List[Crossing]]]:
    """Count the scene frame by frame as the bridge's session does: (index, session, crossings)."""
    # The detector's labels (coco): the manual count's default classes (validate count).
    session = CountingSession(parse_geometry(LINES, ''), scheme='coco')
    for index, frame in enumerate(truth):
        seen = [Sighting(t.vehicle_id, t.kind, 0.9, t.box) for t in frame
                if t.kind not in missed]
        yield index, session, session.update(seen, stamp_ns(index) / 1e9, (640, 360)).crossings


def record(out: Path, truth: List[List[Truth]], missed: Tuple[str, ...] = (),
           lost_before: int = 0) -> None:
    """
    Write the window as `validate record` does, counted by the bridge's session.

    The statuses of frames before ``lost_before`` are not recorded (a recorder matched late).
    """
    picture = np.full((36, 64, 3), 90, np.uint8)  # small: the report needs only stamps
    with RecordingWriter(str(out)) as writer:
        for index, session, crossings in counted_frames(truth, missed):
            if crossings and index >= lost_before:
                status = {'device_id': 'edge-1', 'camera_id': 'cam', **session.status()}
                writer.status(stamp_ns(index), json.dumps(status))  # as the bridge publishes
            if index >= FIRST:
                writer.frame(stamp_ns(index), picture)


def crossings_held(crossed: List[Crossed], stamps: List[int],
                   start_ns: int) -> List[Tuple[int, str, str, int]]:
    """Return the crossings between the first and last recorded frame, with their moments."""
    frame_ns = round(1e9 / FPS)
    moments = ((frame, direction, kind, start_ns + frame * frame_ns)
               for frame, direction, kind in crossed)
    return [held for held in moments if stamps[0] <= held[3] <= stamps[-1]]


def key_script_for(crossed: List[Crossed], stamps: List[int], start_ns: int) -> str:
    """
    Return the keys an operator presses on a recording of the scene (frames at ``stamps``).

    Each true crossing is marked on the recorded frame of its moment (or the
    next one recorded); crossings outside the recording are not seen.
    """
    frame_ns = round(1e9 / FPS)
    lines = []
    for _frame, direction, kind, moment in crossings_held(crossed, stamps, start_ns):
        index = next(i for i, stamp in enumerate(stamps) if stamp >= moment - frame_ns // 2)
        lines.append(f'goto:{index} {KEYS[(direction, kind)]}  # {direction} {kind}')
    return '\n'.join([*lines, f'goto:{len(stamps) - 1}', 'x']) + '\n'


def key_script(crossed: List[Crossed], frames: int) -> str:
    """Return the keys for the recording :func:`record` makes (frames FIRST on)."""
    stamps = [stamp_ns(index) for index in range(FIRST, frames)]
    return key_script_for(crossed, stamps, stamp_ns(0))


def by_direction(rows: List[dict], interval: int) -> Dict[str, Tuple[int, int, str]]:
    starts = sorted({row['interval_start'] for row in rows})
    return {row['direction']: (row['manual'], row['system'], row['verdict']) for row in rows
            if row['interval_start'] == starts[interval] and row['class_name'] == 'all'}


def test_recorded_statuses_give_the_systems_crossings_at_their_frames(
        tmp_path: Path, scene) -> None:
    truth, crossed = scene
    record(tmp_path / 'window', truth)
    found = system_crossings(count_statuses(str(tmp_path / 'window')))
    # Every crossing of the scene, the one before the window included (the baseline).
    assert [(round((c.stamp - BOUNDARY_S) * FPS) + SPLIT, c.direction, c.class_name)
            for c in found] == crossed
    assert len(crossed) == 18 and crossed[0][0] < FIRST <= crossed[1][0]


def test_a_manual_count_from_the_truth_is_accepted_per_interval(tmp_path: Path, scene) -> None:
    truth, crossed = scene
    bag, manual = tmp_path / 'window', tmp_path / 'manual.json'
    record(bag, truth)
    (tmp_path / 'keys.txt').write_text(key_script(crossed, len(truth)))
    counted = cli('count', str(bag), '--out', str(manual), '--script',
                  str(tmp_path / 'keys.txt'))
    assert counted.returncode == 0, counted.stderr
    assert 'counted 17 vehicles on low' in counted.stdout, counted.stdout

    result = cli('report', str(bag), str(manual), '--csv', str(tmp_path / 'r.csv'),
                 '--json', str(tmp_path / 'r.json'))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().endswith('ACCEPT'), result.stdout
    report = json.loads((tmp_path / 'r.json').read_text())
    assert report['accepted'] and report['limit_pct'] == 5.0
    # The window starts 10.7 s before 16:00 and ends 11.2 s after: two intervals, in part.
    assert by_direction(report['rows'], 0) == {'towards': (3, 3, 'accept'),
                                               'away': (5, 5, 'accept')}
    assert by_direction(report['rows'], 1) == {'towards': (5, 5, 'accept'),
                                               'away': (4, 4, 'accept')}
    rows = list(csv.DictReader((tmp_path / 'r.csv').open()))
    assert [row['interval_start'] for row in rows[:1]] == ['2024-03-09T15:45:00.000Z']
    assert {row['covered_s'] for row in rows} == {'10.7', '11.2'}
    trucks = [r for r in rows if r['class_name'] == 'truck' and r['direction'] == 'away']
    assert [(r['manual'], r['system'], r['verdict']) for r in trucks] == [
        ('2', '2', ''), ('2', '2', '')]


def test_a_system_that_misses_lorries_is_rejected(tmp_path: Path, scene, capsys) -> None:
    truth, crossed = scene
    bag, manual = tmp_path / 'window', tmp_path / 'manual.json'
    record(bag, truth, missed=('truck',))
    (tmp_path / 'keys.txt').write_text(key_script(crossed, len(truth)))
    assert cli('count', str(bag), '--out', str(manual), '--script',
               str(tmp_path / 'keys.txt')).returncode == 0
    result = cli('report', str(bag), str(manual), '--json', str(tmp_path / 'r.json'))
    assert result.returncode == 1, result.stdout + result.stderr
    assert 'REJECT (4 of 4 rows)' in result.stdout, result.stdout
    rows = json.loads((tmp_path / 'r.json').read_text())['rows']
    assert by_direction(rows, 0) == {'towards': (3, 2, 'reject'), 'away': (5, 3, 'reject')}
    first_away = [r for r in rows if r['direction'] == 'away' and r['class_name'] == 'all']
    assert first_away[0]['error_pct'] == -40.0 and first_away[0]['difference'] == -2
    # A looser limit accepts what is within it; --per-class judges the class rows too
    # (in process: the command's own code, without its start-up).
    from vehicle_detection.cli.main import main
    assert main(['validate', 'report', str(bag), str(manual), '--limit', '50']) == 0
    assert capsys.readouterr().out.strip().endswith('ACCEPT')
    assert main(['validate', 'report', str(bag), str(manual), '--limit', '50',
                 '--per-class']) == 1
    # 2 intervals x 2 directions x (the coco scheme's 5 classes + all): 24 rows
    assert 'REJECT (4 of 24 rows)' in capsys.readouterr().out


def test_counting_in_the_terminal_goes_on_where_it_stopped(tmp_path: Path, scene) -> None:
    truth, _ = scene
    bag, manual, picture = tmp_path / 'window', tmp_path / 'manual.json', tmp_path / 'now.jpg'
    record(bag, truth)
    typed = subprocess.run(  # Enter alone: the next frame
        [CLI, 'validate', 'count', str(bag), '--out', str(manual), '--script', '-',
         '--frame-file', str(picture)], input='\n\n2 q\nz\nbogus\n. ,\nx\n', text=True,
        capture_output=True, timeout=60)
    assert typed.returncode == 0, typed.stderr
    said = typed.stderr.splitlines()
    assert said[0].startswith('marks: 1=towards/car  2=towards/truck'), said
    assert said[2] == 'frame 0/219 2024-03-09T15:59:49.300Z | nothing counted', said
    assert said[5] == ('frame 2/219 2024-03-09T15:59:49.500Z marked here: towards truck, away '
                       'car | away/car=1 towards/truck=1 | +1 away car (frame 2)'), said
    assert said[6].endswith('| towards/truck=1 | -1 away car (frame 2)'), said
    assert "key 'bogus' does nothing" in said[7] and said[8].endswith('frame 2/219'), said
    assert cv2_size(picture) == (36, 64)  # the recorded frame, annotated
    # Again: it opens the saved count at the furthest frame seen and goes on.
    again = subprocess.run([CLI, 'validate', 'count', str(bag), '--out', str(manual),
                            '--script', '-'], input='q\nx\n', text=True,
                           capture_output=True, timeout=60)
    assert again.returncode == 0, again.stderr
    saved = json.loads(manual.read_text())
    assert [(m['frame'], m['direction'], m['class_name']) for m in saved['marks']] == [
        (2, 'towards', 'truck'), (12, 'away', 'car')] and saved['reached_frame'] == 12


def cv2_size(path: Path) -> Tuple[int, int]:
    import cv2
    return cv2.imread(str(path)).shape[:2]


def test_bad_input_gets_a_clear_error_and_keeps_the_count(tmp_path: Path, scene, capsys) -> None:
    from vehicle_detection.cli.main import main
    truth, _ = scene
    bag, manual = tmp_path / 'window', tmp_path / 'manual.json'
    record(bag, truth)
    (tmp_path / 'keys.txt').write_text('goto:5 1\n# a comment\nn 2 k\n')
    assert main(['validate', 'count', str(bag), '--out', str(manual), '--script',
                 str(tmp_path / 'keys.txt')]) == 2
    assert "keys.txt, line 3: key 'k' does nothing" in capsys.readouterr().err
    saved = json.loads(manual.read_text())  # what came before the bad key is kept
    assert [(m['frame'], m['class_name']) for m in saved['marks']] == [(5, 'car'), (6, 'truck')]

    other = tmp_path / 'other'
    make_bag('', str(other), FPS, start_ns=stamp_ns(0),
             frames=iter([np.zeros((36, 64, 3), np.uint8)] * 3))
    cases = [
        (['report', str(bag), str(manual), '--limit', '150'], '--limit is a percentage'),
        (['report', str(other), str(manual)], 'holds no counts of the system'),
        (['report', str(bag), str(tmp_path / 'keys.txt')], 'cannot read a manual count'),
        (['count', str(other), '--out', str(tmp_path / 'o.json'), '--script', '-'],
         'give --line NAME and --directions FIRST/SECOND'),
        (['count', str(other), '--out', str(manual), '--directions', 'towards/away',
          '--script', '-'], 'counts another recording (220 frames'),
        (['count', str(bag), '--out', str(manual), '--line', 'high'],
         '--line high: the recording has lines low'),
        (['count', str(bag), '--out', str(tmp_path / 'n.json'), '--key', 'n=away/van'],
         "'n' is the key to next frame"),
        (['count', str(bag), '--out', str(tmp_path / 'n.json'), '--key', 'v=up/van'],
         "the direction must be one of the line's: towards, away"),
        (['count', str(bag), '--out', str(tmp_path / 'n.json'), '--classes', ''],
         '1 to 9 classes have a key each'),
        (['record', str(bag)], 'already exists'),  # refused before anything starts
        (['record', str(tmp_path / 'new'), '--quality', '0'], '--quality 0: 1 to 100'),
        (['record', str(tmp_path / 'new'), '--counts-wait', '-1'],
         'and --counts-wait must not be negative'),
        (['record', str(tmp_path / 'no' / 'new')], 'its folder does not exist'),
    ]
    for args, said in cases:
        assert main(['validate', *args]) == 2, args
        assert said in capsys.readouterr().err, args
    # A bag without the system's counts can still be counted, its line named.
    (tmp_path / 'one.txt').write_text('n 1 x')
    assert main(['validate', 'count', str(other), '--out', str(tmp_path / 'o.json'),
                 '--directions', 'in/out', '--line', 'gate', '--script',
                 str(tmp_path / 'one.txt')]) == 0
    assert json.loads((tmp_path / 'o.json').read_text())['marks'][0]['direction'] == 'in'


def test_an_interval_without_manual_vehicles_and_a_half_done_count() -> None:
    from vehicle_detection.core.validation.manual import ManualCount, MarkedCrossing
    from vehicle_detection.core.validation.recording import Crossing
    from vehicle_detection.core.validation.report import build_report, report_table
    stamps = [stamp_ns(index) for index in range(300)]  # 30 s around the boundary
    manual = ManualCount('bag', '/camera/image_raw/compressed', 'low', ('towards', 'away'),
                         ['car'], stamps, [MarkedCrossing(150, stamps[150], 'away', 'car')],
                         reached=200)
    system = [Crossing(stamps[150] / 1e9, 'low', 'away', 'car'),
              Crossing(stamps[160] / 1e9, 'low', 'towards', 'van'),  # none by hand: n/a
              Crossing(stamps[250] / 1e9, 'low', 'away', 'car'),  # past the count: left out
              Crossing(stamps[151] / 1e9, 'high', 'away', 'car')]  # another line
    report = build_report(manual, system)
    rows = {(r.start - BOUNDARY_S, r.direction, r.class_name): (r.manual, r.system, r.error_pct,
                                                                r.verdict) for r in report.rows}
    assert rows == {(0, 'towards', 'car'): (0, 0, 0.0, ''),
                    (0, 'towards', 'van'): (0, 1, None, ''),
                    (0, 'towards', 'all'): (0, 1, None, 'reject'),
                    (0, 'away', 'car'): (1, 1, 0.0, ''), (0, 'away', 'all'): (1, 1, 0.0, 'accept'),
                    (-900, 'towards', 'car'): (0, 0, 0.0, ''),
                    (-900, 'towards', 'all'): (0, 0, 0.0, 'accept'),
                    (-900, 'away', 'car'): (0, 0, 0.0, ''),
                    (-900, 'away', 'all'): (0, 0, 0.0, 'accept')}
    table = report_table(report)
    assert 'note: the manual count reaches frame 200 of 299' in table
    assert table.strip().endswith('REJECT (1 of 4 rows)') and ' n/a ' in table
