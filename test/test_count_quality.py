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

"""The data quality of count periods: seconds observed, stalls, dark, glare, collapses."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Sequence

from conftest import require_asset, SAMPLES
import numpy as np
import pytest

from vehicle_detection.core.counting.config import parse_geometry
from vehicle_detection.core.counting.quality import frame_light, QualityLimits
from vehicle_detection.core.counting.session import CountingSession, PeriodCounts
from vehicle_detection.core.evaluation.runs import read_video
from vehicle_detection.core.events.vehicles import Sighting

LINE = 'bar 0,0.5 1,0.5 towards/away'
SIZE = (640, 480)


def car(track: int, y: float) -> Sighting:
    return Sighting(track, 'car', 0.9, (300.0, y - 40.0, 360.0, y))


def run(stamps: Sequence[float], vehicles: Sequence[int] = (), period_s: int = 60,
        light=None) -> List[PeriodCounts]:
    """Feed frames at ``stamps`` (with ``vehicles[i]`` parked cars each); return periods."""
    session = CountingSession(parse_geometry(LINE, ''), period_s)
    closed: List[PeriodCounts] = []
    for index, stamp in enumerate(stamps):
        if light is not None:
            session.quality.light(stamp, *light(index))
        present = vehicles[index] if vehicles else 0
        sightings = [car(n, 100.0 + 30 * n) for n in range(present)]
        closed += session.update(sightings, stamp, SIZE).closed
    return closed + session.flush()


def test_a_period_seen_throughout_is_observed_in_full_and_unflagged() -> None:
    periods = run([i / 10 for i in range(1800)], [2] * 1800)  # 3 min at 10 fps
    quality = [p.quality for p in periods]
    assert [q.flags for q in quality if q] == [(), (), ()]
    assert [round(q.observed_s, 1) for q in quality if q] == [60.0, 60.0, 59.9]
    assert {p.scheme for p in periods} == {'uk6'}


def test_a_stall_is_not_observed_and_a_period_without_frames_is_no_data() -> None:
    # Frames 0-20 s, none until 40 s (the camera stalled and reconnected), then up to 100 s;
    # then none until 200 s: the periods 100-180 s had no frame at all.
    stamps = [i / 10 for i in range(200)] + [40 + i / 10 for i in range(600)] + [200.0]
    periods = run(stamps)
    assert [p.start for p in periods] == [0, 60, 180]  # 120-180: no record, not a zero
    first, second, last = (p.quality for p in periods)
    assert first is not None and second is not None and last is not None
    assert first.flags == ('camera_reconnected', 'stalled')
    assert 39.8 <= first.observed_s <= 40.0  # 0-19.9 s and 40-60 s
    assert second.flags == ('stalled',) and 39.8 <= second.observed_s <= 40.0
    assert last.flags == ('camera_reconnected', 'stalled') and last.observed_s == 0.0


def test_a_collapse_of_detections_is_flagged_against_the_recent_level() -> None:
    stamps = [i / 5 for i in range(5 * 300)]  # 5 min at 5 fps
    vehicles = [3] * (5 * 240) + [0] * (5 * 60)  # the fifth minute sees nothing
    flags = [p.quality.flags for p in run(stamps, vehicles) if p.quality]
    assert flags == [(), (), (), (), ('detections_collapsed',)]
    quiet = [p.quality.flags for p in run(stamps, [0] * len(stamps)) if p.quality]
    assert quiet == [()] * 5  # a quiet road is not a collapse: no usual level to fall from


def test_dark_and_glaring_frames_flag_their_periods() -> None:
    grey = np.full((288, 352, 3), 120, np.uint8)
    night = grey.copy()
    night[:100] = 10  # a black sky: 35 % of the picture
    night[150:180, 100:160] = (255, 120, 60)  # a blue bloom of headlights (BGR)
    assert frame_light(grey) == (0.0, 0.0)
    dark, bloom = frame_light(night)
    assert 0.3 < dark < 0.4 and 0.01 < bloom < 0.03
    lights = {'grey': frame_light(grey), 'night': frame_light(night)}
    stamps = [i / 5 for i in range(5 * 180)]
    periods = run(stamps, light=lambda i: lights['night' if 300 <= i < 600 else 'grey'])
    assert [p.quality.flags for p in periods if p.quality] == [(), ('dark', 'glare'), ()]


def test_the_stall_limit_is_a_setting() -> None:
    session = CountingSession(parse_geometry(LINE, ''), 60, quality=QualityLimits(stall_s=0.5))
    for stamp in (0.0, 1.0, 1.2):
        session.update([], stamp, SIZE)
    quality = session.flush()[0].quality
    assert quality is not None and quality.flags == ('camera_reconnected', 'stalled')
    assert quality.observed_s == pytest.approx(0.2)


CLIPS: Dict[str, bool] = {  # the shared clips, and whether they are night
    'highway_bridge_jitter.mp4': False, 'jamcam/a12_day_2017-07-21_1414.mp4': False,
    'jamcam/a13_day_2017-09-21_1001.mp4': False, 'jamcam/a13_night_2017-09-04_2126.mp4': True}


@pytest.mark.parametrize('clip', list(CLIPS))
def test_the_night_clip_is_flagged_and_the_day_clips_are_not(clip: str) -> None:
    """Every 5-second period of the night clip is dark and glaring; no day one is flagged."""
    path = require_asset(Path(SAMPLES) / clip)
    frames = list(read_video(path))
    lights = [frame_light(frame) for frame in frames]
    periods = run([i / 25.0 for i in range(len(frames))], period_s=5,
                  light=lambda i: lights[i])
    flags = {tuple(p.quality.flags) for p in periods if p.quality}
    assert flags == ({('dark', 'glare')} if CLIPS[clip] else {()}), (clip, flags)
