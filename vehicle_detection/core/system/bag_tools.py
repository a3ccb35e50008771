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
rosbag2 tools on the ``rosbags`` library (no ROS needed): make, read, compare.

Bags are written as rosbag2 (sqlite3 or mcap storage) with ``sensor_msgs/Image``
in ``bgr8``, so ``ros2 bag play`` replays them on a real ROS 2 install.
Detections of a replay are kept as JSON lines (one frame a line) and compared
with a stored reference by IoU matching.
"""

from __future__ import annotations

from dataclasses import dataclass
import json
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import numpy as np

from vehicle_detection.core.camera.sources import open_source, parse_source
from vehicle_detection.core.events.vehicles import iou

IMAGE_TYPE = 'sensor_msgs/msg/Image'
STORAGES = ('sqlite3', 'mcap')


def _typestore() -> Any:
    from rosbags.typesys import get_typestore, Stores
    return get_typestore(Stores.ROS2_KILTED)


def make_bag(source: str, out: str, fps: float, topic: str = '/camera/image_raw',
             storage: str = 'sqlite3', frame_id: str = 'camera', start_ns: int = 0,
             frames: Optional[Iterator[np.ndarray]] = None) -> int:
    """
    Write the frames of ``source`` (video or image folder) as a bag at ``fps``.

    Stamps start at ``start_ns`` (default: now) and advance by 1/fps, so a replay
    is reproducible. ``frames`` replaces ``source`` when given. Returns the count.
    """
    import time

    from rosbags.rosbag2 import StoragePlugin, Writer

    if storage not in STORAGES:
        raise ValueError(f'storage must be one of {", ".join(STORAGES)}')
    if fps <= 0:
        raise ValueError('fps must be positive')
    store = _typestore()
    image_type = store.types[IMAGE_TYPE]
    header_type = store.types['std_msgs/msg/Header']
    time_type = store.types['builtin_interfaces/msg/Time']
    if frames is None:
        frames = _frames_of(source)
    start = start_ns or time.time_ns()
    plugin = StoragePlugin.MCAP if storage == 'mcap' else StoragePlugin.SQLITE3
    count = 0
    with Writer(out, version=9, storage_plugin=plugin) as writer:
        connection = writer.add_connection(topic, IMAGE_TYPE, typestore=store)
        for image in frames:
            stamp = start + int(count * 1e9 / fps)
            height, width = image.shape[:2]
            message = image_type(
                header=header_type(stamp=time_type(sec=stamp // 10**9,
                                                   nanosec=stamp % 10**9),
                                   frame_id=frame_id),
                height=height, width=width, encoding='bgr8', is_bigendian=0, step=width * 3,
                data=np.ascontiguousarray(image).reshape(-1))
            writer.write(connection, stamp, store.serialize_cdr(message, IMAGE_TYPE))
            count += 1
    return count


def _frames_of(source: str) -> Iterator[np.ndarray]:
    opened = open_source(parse_source(source), loop=False)
    try:
        while (image := opened.read()) is not None:
            yield image
    finally:
        opened.close()


def read_images(bag: str, topic: str = '/camera/image_raw') -> Iterator[Tuple[int, bytes]]:
    """Yield (recorded time ns, raw CDR bytes) of the image topic, in order."""
    from rosbags.rosbag2 import Reader

    with Reader(bag) as reader:
        connections = [c for c in reader.connections if c.topic == topic]
        if not connections:
            topics = sorted({c.topic for c in reader.connections})
            raise ValueError(f'{bag} has no topic {topic} (topics: {", ".join(topics)})')
        for _connection, timestamp, raw in reader.messages(connections=connections):
            yield timestamp, bytes(raw)


def count_messages(bag: str, topic: str = '/camera/image_raw') -> int:
    """Return how many messages ``topic`` has in ``bag``."""
    from rosbags.rosbag2 import Reader

    with Reader(bag) as reader:
        return sum(c.msgcount for c in reader.connections if c.topic == topic)


@dataclass(frozen=True)
class Comparison:
    """Matches between a replay's detections and a reference."""

    true_positives: int
    false_positives: int
    false_negatives: int
    frames: int

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


def load_records(path: str) -> Dict[int, List[Dict[str, Any]]]:
    """Read detection JSON lines into {stamp_ns: [detection, ...]}."""
    records: Dict[int, List[Dict[str, Any]]] = {}
    with open(path, encoding='utf-8') as stream:
        for number, line in enumerate(stream, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                records[int(record['stamp_ns'])] = list(record['detections'])
            except (ValueError, KeyError, TypeError) as error:
                raise ValueError(f'{path}:{number}: not a detection record ({error})') from error
    return records


def compare(run: Dict[int, List[Dict[str, Any]]], reference: Dict[int, List[Dict[str, Any]]],
            threshold: float = 0.5) -> Comparison:
    """Match boxes of the same class frame by frame (greedy, best IoU first)."""
    tp = fp = fn = 0
    for stamp in set(run) | set(reference):
        found, wanted = run.get(stamp, []), reference.get(stamp, [])
        pairs = sorted(((iou(tuple(a['bbox']), tuple(b['bbox'])), i, j)
                        for i, a in enumerate(found) for j, b in enumerate(wanted)
                        if a['class_name'] == b['class_name']), reverse=True)
        used_found, used_wanted = set(), set()
        for overlap, i, j in pairs:
            if overlap >= threshold and i not in used_found and j not in used_wanted:
                used_found.add(i)
                used_wanted.add(j)
        tp += len(used_found)
        fp += len(found) - len(used_found)
        fn += len(wanted) - len(used_wanted)
    return Comparison(tp, fp, fn, len(set(run) | set(reference)))


def write_record(stream: Any, stamp_ns: int, detections: List[Dict[str, Any]]) -> None:
    """Append one frame's detections as a JSON line."""
    stream.write(json.dumps({'stamp_ns': stamp_ns, 'detections': detections}) + '\n')


def ensure_new(path: str) -> None:
    """Refuse to overwrite an existing bag."""
    if Path(path).exists():
        raise ValueError(f'{path} already exists')
