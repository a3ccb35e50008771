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

"""A recording whose first statuses were lost: what the system counted before has no moment."""

from __future__ import annotations

import json
from pathlib import Path

from test_field_validation import (
    BOUNDARY_S, cli, counted_frames, FIRST, FPS, key_script, record, scene_crossings, SPLIT)

from vehicle_detection.core.validation.recording import count_statuses, system_counts

LOST_BEFORE = FIRST + 40  # the recorder's counts subscription matched 4 s into the window


def frame_of(stamp: float) -> int:
    return round((stamp - BOUNDARY_S) * FPS) + SPLIT


def test_crossings_before_the_first_recorded_status_are_not_placed_in_the_window(
        tmp_path: Path) -> None:
    truth, crossed = scene_crossings()
    bag = tmp_path / 'window'
    record(bag, truth, lost_before=LOST_BEFORE)
    statuses = count_statuses(str(bag))
    counted = system_counts(statuses)
    later = [c for c in crossed if c[0] >= LOST_BEFORE]
    # Each crossing from the first recorded status on, at its frame; those before it (the
    # baseline's and those of the window's first 4 s) are counted as unplaced, not put there.
    assert [(frame_of(c.stamp), c.direction, c.class_name) for c in counted.crossings] == later
    assert counted.unplaced == len(crossed) - len(later) >= 2
    assert frame_of(counted.unplaced_before or 0.0) == later[0][0]

    # A recording made by a bridge without `counted` places its first totals whole.
    older = system_counts([{key: value for key, value in status.items() if key != 'counted'}
                           for status in statuses])
    assert len(older.crossings) == len(crossed) and not older.unplaced

    (tmp_path / 'keys.txt').write_text(key_script(crossed, len(truth)))
    assert cli('count', str(bag), '--out', str(tmp_path / 'manual.json'), '--script',
               str(tmp_path / 'keys.txt')).returncode == 0
    result = cli('report', str(bag), str(tmp_path / 'manual.json'), '--json',
                 str(tmp_path / 'r.json'))
    report = json.loads((tmp_path / 'r.json').read_text())
    unplaced_in_window = len([c for c in crossed if FIRST <= c[0] < LOST_BEFORE])
    system = sum(row['system'] for row in report['rows'] if row['class_name'] == 'all')
    manual = sum(row['manual'] for row in report['rows'] if row['class_name'] == 'all')
    assert (manual, system) == (len(crossed) - 1, manual - unplaced_in_window), report['rows']
    assert unplaced_in_window >= 1
    assert any(note.startswith(f'{counted.unplaced} crossings the system counted before its '
                               'first recorded status') for note in report['notes']), report
    assert f'note: {counted.unplaced} crossings' in result.stdout, result.stdout


def test_every_status_says_what_its_frame_added() -> None:
    truth, crossed = scene_crossings()
    added = []
    for index, session, crossings in counted_frames(truth):
        rows = session.status()['counted']
        assert sum(row['count'] for row in rows) == len(crossings), index
        added.extend((index, row['direction'], row['class_name'])
                     for row in rows for _ in range(row['count']))
    assert added == crossed
