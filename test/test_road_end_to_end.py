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
End to end on moving traffic: a generated scene and the real clip, through the system.

Both are made into bags at the default camera rate (10 fps), played with
``vehicle-detection bag play`` into ``vehicle-detection run --replay`` and the
real cloud server; the alerts the server stores are scored against the
ground truth of the frame each one names (``detected_at`` is the frame's
stamp), as ``bench/tracking.py`` scores them in process. The bridge counts
both on a line across the road: the server's counts API must give the true
crossings of each, and the dashboard's traffic chart (headless Chromium)
must show them.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
import itertools
from pathlib import Path
import sqlite3
import subprocess
import sys
from typing import Dict, List

from browser_pages import ARTIFACTS, page_wait
from cloud_helpers import add_device, CloudServer, start_run, stop_run
import numpy as np
import pytest
import requests

from vehicle_detection.cloud.server.count_speeds import SPEED_COLUMNS
from vehicle_detection.core.counting.config import parse_geometry
from vehicle_detection.core.evaluation.alerts import score_alerts
from vehicle_detection.core.evaluation.counts import true_crossings
from vehicle_detection.core.evaluation.render import load_sprites, render_frames
from vehicle_detection.core.evaluation.runs import every, load_clip_truth, read_video
from vehicle_detection.core.evaluation.scenarios import scenario
from vehicle_detection.core.evaluation.scene import build_truth, Camera, Scene, visible_vehicles
from vehicle_detection.core.evaluation.speeds import exact_speed, scene_calibration
from vehicle_detection.core.events.event import VehicleEvent
from vehicle_detection.core.events.geometry import CountingLine
from vehicle_detection.core.events.vehicles import iou, Sighting
from vehicle_detection.core.system.bag_tools import make_bag

CLI = str(Path(sys.prefix) / 'bin' / 'vehicle-detection')
REPO = Path(__file__).resolve().parents[1]
CONFIG = str(REPO / 'config' / 'config.yaml')
CLIP_TRUTH = REPO / 'test' / 'fixtures' / 'highway_bridge_jitter.truth.json'
FPS = 10.0
SCENE_START = 10**18
CLIP_START = SCENE_START + 100 * 10**9  # after the scene: the tracker goes on
LINES = 'low 0,0.75 1,0.75 towards/away'  # fractions: the scene and the clip differ in size
# The scene camera's calibration, in fractions of its 640x360 image (the clip, another
# camera, gets it too: its speeds mean nothing here, bench/clip_speeds.py measures them).
SCENE_CALIBRATION = scene_calibration(Camera())
CALIBRATION = 'image ' + ' '.join(f'{x / 640:.6f},{y / 360:.6f}'
                                  for x, y in SCENE_CALIBRATION.image) \
    + ' road ' + ' '.join(f'{a:g},{b:g}' for a, b in SCENE_CALIBRATION.road)


def play(bag: Path, frames: int, env: dict, rate: float = 1.0) -> None:
    result = subprocess.run([CLI, 'bag', 'play', str(bag), '--rate', str(rate)],
                            capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    assert f'{frames}/{frames}' in result.stderr  # the progress bar reached the end


def server_alerts(db: Path, start_ns: int, frames: int) -> List[VehicleEvent]:
    """Return the server's alerts of one bag, each keyed by the bag's frame index it names."""
    with sqlite3.connect(db) as connection:
        rows = connection.execute('SELECT detected_at, track_id, class_name, confidence, bbox, '
                                  'image_path FROM alerts WHERE replay').fetchall()
        assert not connection.execute('SELECT count(*) FROM alerts WHERE NOT replay').fetchone()[0]
    alerts = []
    for detected_at, track, name, confidence, bbox, image_path in rows:
        moment = datetime.fromisoformat(detected_at).replace(tzinfo=timezone.utc)
        index = round((moment.timestamp() * 1e9 - start_ns) * FPS / 1e9)
        if 0 <= index < frames:
            assert image_path, 'every alert has its snapshot'
            box = tuple(float(v) for v in bbox.strip('[]').split(','))
            alerts.append(VehicleEvent('vehicle', Sighting(track, name, confidence, box), 0.0,
                                       index))
    return alerts


def test_generated_scene_and_real_clip_through_the_system(
        samples_dir: Path, model_path: Path, tmp_path: Path, ros_env: dict,
        browser) -> None:
    scene = build_truth(scenario('parking', fps=FPS))
    scene_frames = make_bag('', str(tmp_path / 'scene'), FPS, start_ns=SCENE_START,
                            frames=render_frames(scene, load_sprites(samples_dir)))
    clip = load_clip_truth(CLIP_TRUTH)
    step = round(clip.fps / FPS)
    clip_truth = clip.frames[::step]
    clip_frames = make_bag('', str(tmp_path / 'clip'), FPS, start_ns=CLIP_START,
                           frames=every(read_video(samples_dir / clip.clip), step))
    assert (scene_frames, clip_frames) == (len(scene.truth), len(clip_truth))

    db, storage = f'sqlite:///{tmp_path}/cloud.db', str(tmp_path / 'images')
    key = add_device('edge-1', db, storage)
    server = CloudServer(db, storage)
    system = start_run(CONFIG, model_path, server, key, tmp_path / 'edge', ros_env,
                       f'cloud_bridge_node.counting_lines={LINES}',
                       f'cloud_bridge_node.speed_calibration={CALIBRATION}',
                       'cloud_bridge_node.count_vehicles=true')
    try:
        system.err.wait_for('detector ready')
        # The scene's counts must be exact, so none of its frames may be dropped: at half
        # speed an inference may take twice as long before the detector (which keeps the
        # newest frame) drops one. A CI run on two loaded cores once counted 9 of 10
        # crossings at full speed; the summary in the messages below says if frames were lost.
        play(tmp_path / 'scene', scene_frames, ros_env, rate=0.5)
        play(tmp_path / 'clip', clip_frames, ros_env)
        summary = stop_run(system).strip().splitlines()[-1]
        scene_counts = server_counts(server.url, SCENE_START, scene_frames)
        clip_counts = server_counts(server.url, CLIP_START, clip_frames)
        scene_speeds = server_speeds(server.url, SCENE_START, scene_frames)
        chart_totals = dashboard_chart(browser, server.url)
    finally:
        system.close()
        server.stop()

    # Counts: the line's true crossings (in process at 10 fps: parking exact, clip exact).
    visible = [[t for t in frame if t.visible >= 0.4] for frame in scene.truth]
    lines, _ = parse_geometry(LINES, '').in_pixels(640, 360)
    truth = {direction: n for (_, direction), n in true_crossings(visible, lines).items()}
    assert scene_counts == truth, (scene_counts, truth, summary)
    # The fixture's 'low' line: 16 (counts.crossings); in process 15 at 10 fps (a car
    # whose track is lost for 0.8 s as it crosses).
    assert clip_counts.keys() == {'away'} and abs(clip_counts['away'] - 16) <= 1, (
        clip_counts, summary)
    assert chart_totals == {f'{d} ({n})' for d, n in {
        'away': scene_counts['away'] + clip_counts['away'],
        'towards': scene_counts['towards']}.items()}

    # Speeds: the scene's vehicles drive at constant speeds; the median of the exported
    # vehicles' speeds per direction against that of the vehicles crossing the line.
    exact = crossing_speeds(scene, lines[0])
    assert set(scene_speeds) == set(exact)
    for direction, row in scene_speeds.items():
        assert row['speed_n'] >= 0.9 * row['count'] and len(row['speeds']) == row['speed_n']
        assert float(np.median(row['speeds'])) == pytest.approx(exact[direction], abs=3.0), (
            row, exact)
    with sqlite3.connect(tmp_path / 'cloud.db') as connection:  # the scene's alerts
        speeds = [speed for detected_at, speed in connection.execute(
            'SELECT detected_at, speed_kmh FROM alerts WHERE replay')
            if datetime.fromisoformat(detected_at).replace(tzinfo=timezone.utc).timestamp()
            < CLIP_START / 1e9]
    assert speeds and sum(s is not None for s in speeds) >= 0.8 * len(speeds), speeds

    # bench/tracking.py in process, parking at 10 fps: recall 0.92 (the misses are
    # two far lorries), no duplicate; the clip: recall 1.0, one duplicate.
    alerts = server_alerts(tmp_path / 'cloud.db', SCENE_START, scene_frames)
    result = score_alerts(alerts, scene.truth, visible_vehicles(scene))
    assert result.recall >= 0.85 and result.duplicates <= 1, result.as_dict()
    assert result.no_vehicle == 0, result.as_dict()
    for parked in (1, 2):  # hidden by three passing lorries each, alerted once
        box = next(t.box for t in scene.truth[0] if t.vehicle_id == parked)
        assert sum(iou(a.sighting.bbox, box) > 0.5 for a in alerts) == 1

    alerts = server_alerts(tmp_path / 'cloud.db', CLIP_START, clip_frames)
    result = score_alerts(alerts, clip_truth, clip.expected)
    assert result.recall >= 0.94 and result.duplicates <= 2, result.as_dict()
    assert result.no_vehicle == 0, result.as_dict()


def crossing_speeds(scene: Scene, line: CountingLine) -> Dict[str, float]:
    """Return per direction the median exact speed (km/h) of the vehicles crossing the line."""
    along = scene.camera.focal * scene.camera.mount_height / (line.a[1] - scene.camera.horizon)
    found: Dict[str, List[float]] = {}
    for vehicle in scene.vehicles:
        times = [i / 10.0 for i in range(round(scene.seconds * 10))]
        for before, after in itertools.pairwise(times):
            ahead, behind = vehicle.position(before), vehicle.position(after)
            if ahead is not None and behind is not None and (ahead - along) * (behind - along) < 0:
                direction = 'towards' if behind < ahead else 'away'
                speed = exact_speed(scene, vehicle.vehicle_id, after)
                found.setdefault(direction, []).append(speed or 0.0)
    return {direction: float(np.median(speeds)) for direction, speeds in found.items()}


def server_speeds(url: str, start_ns: int, frames: int) -> Dict[str, dict]:
    """Return per direction of one bag: vehicles counted and measured, and their speeds."""
    start = datetime.fromtimestamp(start_ns / 1e9, timezone.utc)
    window = {'since': start.isoformat(), 'replay': 'only',
              'until': (start + timedelta(seconds=frames / FPS + 3)).isoformat()}
    series = requests.get(f'{url}/api/v1/counts', timeout=10, params={
        **window, 'bucket': '1min', 'by': 'direction'}).json()
    found: Dict[str, dict] = {}
    for row in series['rows']:  # the bag's minutes (no other bag's periods in them)
        if start <= datetime.fromisoformat(row['start']) + timedelta(minutes=1) and \
                datetime.fromisoformat(row['start']) < start + timedelta(seconds=frames / FPS):
            entry = found.setdefault(row['direction'], {'count': 0, 'speed_n': 0, 'speeds': []})
            entry['count'] += row['count']
            entry['speed_n'] += row['speed_n']
    for vehicle in requests.get(f'{url}/api/v1/counts/vehicles', timeout=10,
                                params=window).json():
        if vehicle['speed_kmh'] is not None:
            found[vehicle['direction']]['speeds'].append(vehicle['speed_kmh'])
    return found


def server_counts(url: str, start_ns: int, frames: int) -> dict:
    """Return the server's counts of one bag's time, per direction."""
    start = datetime.fromtimestamp(start_ns / 1e9, timezone.utc)
    end = datetime.fromtimestamp(start_ns / 1e9 + frames / FPS + 1, timezone.utc)
    params = {'since': start.isoformat(), 'until': end.isoformat(), 'bucket': '1min'}
    live = requests.get(f'{url}/api/v1/counts', timeout=10, params=params).json()
    assert not live['rows'] and not live['coverage']  # a replay is no live traffic
    series = requests.get(f'{url}/api/v1/counts', timeout=10,
                          params={**params, 'replay': 'only'}).json()
    counts: dict = {}
    for row in series['rows']:
        if start <= datetime.fromisoformat(row['start']) + timedelta(minutes=1) and \
                datetime.fromisoformat(row['start']) < end:
            counts[row['direction']] = counts.get(row['direction'], 0) + row['count']
    return counts


def dashboard_chart(browser, url: str) -> set:
    """Show the bags' window in the dashboard; return the chart's legend (direction (n))."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    browser.get(url + '/')
    wait = page_wait(browser, 20)
    wait.until(lambda d: d.execute_script('return window.vdRefreshes') >= 1)
    # The bags' time (2001) in the window filters, as local times like a user types them.
    browser.execute_script(
        'const local = (ms) => new Date(ms - new Date(ms).getTimezoneOffset() * 60000)'
        '.toISOString().slice(0, 16);'
        'document.getElementById("f-since").value = local(arguments[0]);'
        'document.getElementById("f-until").value = local(arguments[1]);'
        'document.getElementById("f-replay").value = "only";',  # the bags are replays
        SCENE_START // 10**6 - 60_000, CLIP_START // 10**6 + 120_000)
    Select(browser.find_element(By.ID, 't-bucket')).select_by_value('1min')  # change: refresh
    # At least 3 bars drawn (data-bars: the chart's non-empty bars; the 5 s refresh redraws).
    wait.until(lambda d: int(d.execute_script(
        'const f = document.querySelector(\'#traffic figure[data-line="low"]\');'
        'return f ? f.dataset.bars || 0 : 0')) >= 3)
    ARTIFACTS.mkdir(exist_ok=True)
    assert browser.find_element(By.ID, 'traffic-panel').screenshot(
        str(ARTIFACTS / 'traffic.png'))  # the README's picture (docs/traffic.png)
    csv_link = browser.find_element(By.ID, 't-csv').get_attribute('href')
    table = requests.get(csv_link, timeout=10).text.splitlines()
    assert table[0] == ('bucket_start_utc,bucket_start_local,tz,device_id,line,direction,'
                        'class_name,count,coverage_s,observed_s,quality,scheme,'
                        + ','.join(SPEED_COLUMNS))
    # The bridge's class scheme, and the quality it saw in the images: daylight, never dark
    # nor glaring; the jump of the stamps from the scene's bag to the clip's is a stall.
    seen = {tuple(row.split(',')[10:12]) for row in table[1:]}
    assert {scheme for _, scheme in seen} == {'uk6'} and ('ok', 'uk6') in seen, seen
    assert {quality for quality, _ in seen} <= {'ok', 'stalled', 'camera_reconnected stalled'}
    return set(browser.execute_script(  # read in one go, between two redraws
        'return [...document.querySelectorAll(arguments[0])].map(t => t.textContent)',
        '#traffic figure[data-line="low"] ul.legend li'))
