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
A validation recording: a bag of the camera's frames and the system's counts.

``vehicle-detection validate record`` writes the frames (JPEG,
``sensor_msgs/CompressedImage``, so that a 15-minute window fits the box's
disk) and every ``traffic_counts`` status the bridge published while they
were taken (``std_msgs/String``, JSON): the totals per line, direction and
class since the bridge started, the stamp of the frame that changed them
and what that frame added. The system's crossings of the window are the
increases of those totals, each at that frame's stamp. A bag of raw
``sensor_msgs/Image`` (``vehicle-detection bag make``) is read as well.
"""

from __future__ import annotations

from dataclasses import dataclass
import json
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from vehicle_detection.core.system.bag_tools import (
    bag_topics, header_stamp_ns, IMAGE_TYPE, read_messages)

COMPRESSED_TYPE = 'sensor_msgs/msg/CompressedImage'
STRING_TYPE = 'std_msgs/msg/String'
COUNTS_TOPIC = '/traffic_counts'
IMAGE_TYPES = (IMAGE_TYPE, COMPRESSED_TYPE)


def typestore() -> Any:
    """Return the rosbags type store of the ROS 2 messages the bags hold."""
    from rosbags.typesys import get_typestore, Stores
    return get_typestore(Stores.ROS2_KILTED)


class RecordingError(ValueError):
    """The bag is no validation recording, or lacks what was asked; the message says why."""


@dataclass(frozen=True)
class Crossing:
    """One vehicle counted: when (epoch seconds), on which line, which way, which class."""

    stamp: float
    line: str
    direction: str
    class_name: str


@dataclass(frozen=True)
class LineInfo:
    """A counting line as the bridge reported it (pixels) with its two directions."""

    name: str
    directions: Tuple[str, str]


class RecordingWriter:
    """
    Writes a validation recording: frames as JPEG, statuses as strings, each at its stamp.

    A context manager around a rosbags ``Writer`` (sqlite3 or mcap); frames
    go to ``<image_topic>/compressed``.
    """

    def __init__(self, out: str, image_topic: str = '/camera/image_raw',
                 counts_topic: str = COUNTS_TOPIC, storage: str = 'sqlite3',
                 quality: int = 85) -> None:
        """Open the bag ``out`` (a new folder)."""
        from rosbags.rosbag2 import StoragePlugin, Writer

        self.store = typestore()
        self.quality = quality
        self.writer = Writer(out, version=9, storage_plugin=(
            StoragePlugin.MCAP if storage == 'mcap' else StoragePlugin.SQLITE3))
        self.writer.open()
        self.images = self.writer.add_connection(image_topic.rstrip('/') + '/compressed',
                                                 COMPRESSED_TYPE, typestore=self.store)
        self.counts = self.writer.add_connection(counts_topic, STRING_TYPE,
                                                 typestore=self.store)

    def frame(self, stamp_ns: int, picture: np.ndarray) -> None:
        """Write one BGR frame as JPEG, stamped (header and record time) ``stamp_ns``."""
        import cv2
        ok, jpeg = cv2.imencode('.jpg', picture, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        if not ok:
            raise ValueError('a frame could not be encoded as JPEG')
        types = self.store.types
        header = types['std_msgs/msg/Header'](
            stamp=types['builtin_interfaces/msg/Time'](
                sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9),
            frame_id='camera')
        message = types[COMPRESSED_TYPE](header=header, format='jpeg', data=jpeg.reshape(-1))
        self.writer.write(self.images, stamp_ns,
                          self.store.serialize_cdr(message, COMPRESSED_TYPE))

    def status(self, stamp_ns: int, text: str) -> None:
        """Write a ``traffic_counts`` status, its JSON text, at ``stamp_ns``."""
        message = self.store.types[STRING_TYPE](data=text)
        self.writer.write(self.counts, stamp_ns, self.store.serialize_cdr(message, STRING_TYPE))

    def close(self) -> None:
        """Finish the bag (its metadata)."""
        self.writer.close()

    def __enter__(self) -> 'RecordingWriter':
        """Return the open writer."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close the bag."""
        self.close()


def image_topic(bag: str, wanted: str = '') -> Tuple[str, str]:
    """Return (topic, type) of the bag's images: ``wanted``, or its only image topic."""
    topics = bag_topics(bag)
    images = [(topic, kind) for topic, kind in topics if kind in IMAGE_TYPES]
    if wanted:
        for topic, kind in topics:
            if topic == wanted:
                if kind not in IMAGE_TYPES:
                    raise RecordingError(f'{bag}: {wanted} holds {kind}, not images')
                return topic, kind
        raise RecordingError(f'{bag} has no topic {wanted} (images on: '
                             f'{", ".join(t for t, _ in images) or "none"})')
    if len(images) != 1:
        raise RecordingError(f'{bag}: {"no image topic" if not images else "several image topics: " + ", ".join(t for t, _ in images)}; name one with --topic')  # noqa: E501
    return images[0]


def frame_times(bag: str, topic: str) -> List[Tuple[int, int]]:
    """Return (recorded time ns, header stamp ns) of the bag's frames on ``topic``, in order."""
    return [(time, header_stamp_ns(raw)) for _t, _k, time, raw in read_messages(bag, [topic])]


class FrameReader:
    """Frames of a bag by index, decoded on demand, a few around the last one kept."""

    def __init__(self, bag: str, topic: str, kind: str, times: List[int],
                 keep: int = 60) -> None:
        """Read ``topic`` (of ``kind``) whose frames were recorded at ``times`` (ns)."""
        self.bag, self.topic, self.kind, self.times, self.keep = bag, topic, kind, times, keep
        self._cache: Dict[int, np.ndarray] = {}

    def get(self, index: int) -> np.ndarray:
        """Return frame ``index`` (BGR); reads ahead from it when it is not kept."""
        if index not in self._cache:
            store = typestore()
            messages = read_messages(self.bag, [self.topic], self.times[index])
            for offset, (_topic, _kind, _time, raw) in enumerate(messages):
                if offset >= self.keep // 2 or index + offset >= len(self.times):
                    break
                self._cache[index + offset] = decode_image(
                    store.deserialize_cdr(raw, self.kind), self.kind)
            for old in sorted(self._cache, key=lambda i: abs(i - index))[self.keep:]:
                del self._cache[old]
        return self._cache[index]


def decode_image(message: Any, kind: str) -> np.ndarray:
    """Return the BGR picture of a deserialized Image (bgr8, rgb8, mono8) or CompressedImage."""
    import cv2
    if kind == COMPRESSED_TYPE:
        picture = cv2.imdecode(np.asarray(message.data, np.uint8), cv2.IMREAD_COLOR)
        if picture is None:
            raise RecordingError(f'a frame in format {message.format!r} cannot be decoded')
        return picture
    data = np.asarray(message.data, np.uint8)
    if message.encoding in ('bgr8', 'rgb8'):
        picture = data.reshape(message.height, message.step)[:, :message.width * 3].reshape(
            message.height, message.width, 3)
        return picture[:, :, ::-1].copy() if message.encoding == 'rgb8' else picture
    if message.encoding == 'mono8':
        return cv2.cvtColor(data.reshape(message.height, message.step)[:, :message.width],
                            cv2.COLOR_GRAY2BGR)
    raise RecordingError(f'image encoding {message.encoding!r}: bgr8, rgb8 or mono8 expected')


def count_statuses(bag: str, topic: str = COUNTS_TOPIC) -> List[Dict[str, Any]]:
    """Return the ``traffic_counts`` statuses of the bag (parsed JSON), in recorded order."""
    if topic not in dict(bag_topics(bag)):
        raise RecordingError(f'{bag} has no {topic}: it holds no counts of the system (record '
                             'it with `vehicle-detection validate record` while the system runs)')
    store = typestore()
    statuses = []
    for _topic, _kind, _time, raw in read_messages(bag, [topic]):
        try:
            status = json.loads(store.deserialize_cdr(raw, STRING_TYPE).data)
        except ValueError:
            continue  # the topic is open to any publisher: not a status
        if isinstance(status, dict):
            statuses.append(status)
    return statuses


@dataclass(frozen=True)
class SystemCounts:
    """The system's crossings a recording's statuses place, and those they cannot."""

    crossings: List[Crossing]
    # Crossings the first recorded status's totals hold from before its own frame, when the
    # statuses that made them were not recorded: their moment is unknown, so none is placed.
    unplaced: int = 0
    unplaced_before: Optional[float] = None  # the stamp of that first status


def system_counts(statuses: Sequence[Dict[str, Any]]) -> SystemCounts:
    """
    Return the crossings the statuses show, each at the stamp of its status.

    Totals count from the bridge's start, and a status's ``counted`` is what
    its own frame added. After the first status, each increase of the totals
    is placed at the stamp of the status that shows it (all of it, should a
    status between have been lost). The first status places only its
    ``counted``: what its totals held before may lie anywhere before it (the
    recorder missed the statuses that made them), so it is left out and
    returned as unplaced; a status made before the window (the one a late
    subscriber gets first) lies before the window's first frame, and the
    report leaves it out as well. A status without ``counted`` (a recording
    made by an older bridge) places its whole totals. Totals that fall (the
    bridge restarted, its lines changed) start afresh from zero. A status
    without a stamp (one from before any frame) places nothing.
    """
    crossings: List[Crossing] = []
    previous: Optional[Dict[Tuple[str, str, str], int]] = None  # None: no status before
    unplaced, unplaced_before = 0, None
    for status in statuses:
        totals = _totals(status.get('total'))
        stamp = status.get('stamp')
        if previous is not None and any(totals.get(key, 0) < count
                                        for key, count in previous.items()):
            previous = {}
        if isinstance(stamp, (int, float)) and not isinstance(stamp, bool):
            if previous is None and isinstance(status.get('counted'), list):
                added = _totals(status['counted'])
                unplaced = sum(totals.values()) - sum(added.values())
                unplaced_before = float(stamp) if unplaced else None
            else:
                added = {key: count - (previous or {}).get(key, 0)
                         for key, count in totals.items()}
            for key, count in sorted(added.items()):
                crossings.extend(Crossing(float(stamp), *key) for _ in range(count))
        previous = totals
    return SystemCounts(crossings, unplaced, unplaced_before)


def system_crossings(statuses: Sequence[Dict[str, Any]]) -> List[Crossing]:
    """Return the crossings the statuses place (:func:`system_counts`)."""
    return system_counts(statuses).crossings


def recorded_lines(statuses: Sequence[Dict[str, Any]]) -> List[LineInfo]:
    """Return the counting lines of the last status that names any."""
    for status in reversed(statuses):
        lines = [LineInfo(str(line['name']), (str(line['directions'][0]),
                                              str(line['directions'][1])))
                 for line in status.get('lines') or [] if isinstance(line, dict)
                 and 'name' in line and isinstance(line.get('directions'), list)
                 and len(line['directions']) == 2]
        if lines:
            return lines
    return []


def _totals(rows: Any) -> Dict[Tuple[str, str, str], int]:
    totals: Dict[Tuple[str, str, str], int] = {}
    for row in rows if isinstance(rows, list) else []:
        if isinstance(row, dict) and isinstance(row.get('count'), int):
            key = (str(row.get('line')), str(row.get('direction')), str(row.get('class_name')))
            totals[key] = totals.get(key, 0) + row['count']
    return totals
