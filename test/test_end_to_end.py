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
End to end: a bag of real photos with synthetic motion, replayed into the system.

The bag is made in the test (vehicles slide into a 1280x720 frame and out
again), played into detector + bridge (``vehicle-detection run --replay``)
with the real cloud server; the server must get one alert per vehicle, each
with its snapshot and the right class, and a second replay's /detections
must match the first's (``bag compare``).
"""

from __future__ import annotations

from pathlib import Path
import sqlite3
import subprocess
import sys
from typing import Iterator

from cloud_helpers import add_device, CloudServer, start_run, stop_run
import cv2
import numpy as np

from vehicle_detection.core.system.bag_compare import compare, load_records
from vehicle_detection.core.system.bag_tools import make_bag
from waiting import wait_until

CLI = str(Path(sys.prefix) / 'bin' / 'vehicle-detection')
CONFIG = str(Path(__file__).resolve().parents[1] / 'config' / 'config.yaml')


def sliding(photo: np.ndarray, frames: int, leftwards: bool) -> Iterator[np.ndarray]:
    """Yield 1280x720 frames with ``photo`` moving across (entering, then leaving)."""
    height, width = photo.shape[:2]
    top = (720 - height) // 2
    for index in range(frames):
        canvas = np.full((720, 1280, 3), 90, np.uint8)
        x = int(-width * 0.3 + index * (1280 - width * 0.4) / (frames - 1))
        if leftwards:
            x = 1280 - width - x
        left, right = max(0, x), min(1280, x + width)
        canvas[top:top + height, left:right] = photo[:, left - x:right - x]
        yield canvas


def scene(samples: Path) -> Iterator[np.ndarray]:
    motorcycle = cv2.imread(str(samples / 'motorcycle.png'))
    street = cv2.imread(str(samples / 'street_dog_bicycle_truck.jpg'))
    blank = np.full((720, 1280, 3), 90, np.uint8)
    yield from sliding(motorcycle, 16, leftwards=False)
    yield from [blank] * 4  # the road is empty for a moment
    yield from sliding(street, 16, leftwards=True)


def play(bag: Path, record: Path, env: dict) -> None:
    result = subprocess.run([CLI, 'bag', 'play', str(bag), '--record', str(record)],
                            capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    assert '36/36' in result.stderr  # the progress bar reached the end


def test_bag_replay_gives_one_alert_per_vehicle(samples_dir: Path, model_path: Path,
                                                tmp_path: Path, ros_env: dict) -> None:
    bag = tmp_path / 'traffic'
    assert make_bag('', str(bag), 5.0, frames=scene(samples_dir), start_ns=10**18) == 36
    db, storage = f'sqlite:///{tmp_path}/cloud.db', str(tmp_path / 'images')
    key = add_device('edge-1', db, storage)
    server = CloudServer(db, storage)
    system = start_run(CONFIG, model_path, server, key, tmp_path / 'edge', ros_env,
                       'cloud_bridge_node.min_track_hits=3')
    try:
        system.err.wait_for('detector ready')
        play(bag, tmp_path / 'first.jsonl', ros_env)
        # Every vehicle of the first pass is on the server before the second pass: the
        # second pass replays the same moving vehicles, which may alert again.
        wait_until(lambda: len(stored_alerts(tmp_path / 'cloud.db')) >= 3, timeout=30,
                   what='the alerts of the first pass', poll=0.2)
        first_pass = stored_alerts(tmp_path / 'cloud.db')
        play(bag, tmp_path / 'second.jsonl', ros_env)
        stop_run(system)
    finally:
        system.close()
        server.stop()
    rows = first_pass
    classes = sorted(name for name, _ in rows)
    assert classes == ['bicycle', 'car', 'motorcycle'], classes  # the truck scores as car
    assert all(path and (Path(storage) / path).stat().st_size > 1000 for _, path in rows)
    first, second = load_records(str(tmp_path / 'first.jsonl')), load_records(
        str(tmp_path / 'second.jsonl'))
    # Images travel best-effort (sensor-data QoS): a frame may be lost, rarely. Every
    # frame that arrived is answered, empty ones too, and both runs must agree on them.
    assert len(first) >= 34 and len(second) >= 34
    common = {r.stamp_ns for r in first} & {r.stamp_ns for r in second}
    result = compare([r for r in second if r.stamp_ns in common],
                     [r for r in first if r.stamp_ns in common])
    assert result.joined_by == 'stamp' and result.frames == len(common)
    assert result.true_positives >= 20
    assert result.precision >= 0.95 and result.recall >= 0.95, result


def stored_alerts(db: Path) -> list:
    """Return (class_name, image_path) of the server's alerts that have their snapshot."""
    with sqlite3.connect(db) as connection:
        assert not connection.execute('SELECT count(*) FROM alerts WHERE NOT replay'
                                      ).fetchone()[0], 'run --replay marks every alert'
        return connection.execute('SELECT class_name, image_path FROM alerts '
                                  'WHERE image_path IS NOT NULL ORDER BY id').fetchall()
