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
rosbag2 tools on the ``rosbags`` library (no ROS needed): make and read bags.

Bags are written as rosbag2 (sqlite3 or mcap storage) with ``sensor_msgs/Image``
in ``bgr8`` and a ``sensor_msgs/CameraInfo`` per image (as the camera node
publishes them), so ``ros2 bag play`` replays them on a real ROS 2 install.
A video is sampled like the camera samples it (``core/camera/pacing.py``):
at ``--fps 10`` a 30 fps file gives every third frame, stamped on the file's
own timeline. Comparing detections is in ``bag_compare.py``.
"""

from __future__ import annotations

from pathlib import Path
import struct
from typing import Any, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from vehicle_detection.core.camera.pacing import PACES, RateCap
from vehicle_detection.core.camera.sources import open_source, parse_source
from vehicle_detection.core.system.image_stream import camera_info_topic

IMAGE_TYPE = 'sensor_msgs/msg/Image'
INFO_TYPE = 'sensor_msgs/msg/CameraInfo'
STORAGES = ('sqlite3', 'mcap')
Positioned = Tuple[np.ndarray, Optional[float]]  # a frame and its time in the video


def _typestore() -> Any:
    from rosbags.typesys import get_typestore, Stores
    return get_typestore(Stores.ROS2_KILTED)


def sample_frames(frames: Iterable[Positioned], fps: float, pace: str = 'realtime'
                  ) -> Iterator[Tuple[np.ndarray, float]]:
    """
    Yield (frame, seconds from the start) as a camera capped at ``fps`` would take them.

    ``realtime``: frames with a time in the video are taken by the rate cap
    and keep their time (``fps`` 0: every frame); frames without one (image
    folders) come one per 1/fps. ``every_frame``: every frame, one per 1/fps.
    """
    if pace not in PACES:
        raise ValueError(f'pace must be one of {", ".join(PACES)}')
    cap = RateCap(fps)
    count = 0
    for image, position in frames:
        if pace == 'realtime' and position is not None:
            if cap.take(position):
                yield image, position
            continue
        if fps <= 0:
            raise ValueError('fps must be positive for image folders and for '
                             '--pace every_frame')
        yield image, count / fps
        count += 1


def make_bag(source: str, out: str, fps: float, topic: str = '/camera/image_raw',
             storage: str = 'sqlite3', frame_id: str = 'camera', start_ns: int = 0,
             frames: Optional[Iterator[np.ndarray]] = None, pace: str = 'realtime') -> int:
    """
    Write the frames of ``source`` (video or image folder) as a bag; return the count.

    Stamps start at ``start_ns`` (default: now) and follow :func:`sample_frames`,
    so a replay is reproducible. ``frames`` (pictures without a timeline, one
    per 1/fps) replaces ``source`` when given. Each image goes with a camera
    info on the topic beside it.
    """
    import time

    from rosbags.rosbag2 import StoragePlugin, Writer

    if storage not in STORAGES:
        raise ValueError(f'storage must be one of {", ".join(STORAGES)}')
    if fps < 0 or (fps == 0 and frames is not None):
        raise ValueError('fps must be positive')
    store = _typestore()
    positioned: Iterable[Positioned] = (
        ((image, None) for image in frames) if frames is not None else _frames_of(source))
    start = start_ns or time.time_ns()
    plugin = StoragePlugin.MCAP if storage == 'mcap' else StoragePlugin.SQLITE3
    count = 0
    with Writer(out, version=9, storage_plugin=plugin) as writer:
        image_connection = writer.add_connection(topic, IMAGE_TYPE, typestore=store)
        info_connection = writer.add_connection(camera_info_topic(topic), INFO_TYPE,
                                                typestore=store)
        for image, seconds in sample_frames(positioned, fps, pace):
            stamp = start + round(seconds * 1e9)
            image_msg, info_msg = _messages(store, image, stamp, frame_id)
            writer.write(image_connection, stamp, store.serialize_cdr(image_msg, IMAGE_TYPE))
            writer.write(info_connection, stamp, store.serialize_cdr(info_msg, INFO_TYPE))
            count += 1
    return count


def _messages(store: Any, image: np.ndarray, stamp: int, frame_id: str) -> Tuple[Any, Any]:
    """Return the Image and CameraInfo of one frame (rosbags types)."""
    types = store.types
    header = types['std_msgs/msg/Header'](
        stamp=types['builtin_interfaces/msg/Time'](sec=stamp // 10**9, nanosec=stamp % 10**9),
        frame_id=frame_id)
    height, width = image.shape[:2]
    image_msg = types[IMAGE_TYPE](
        header=header, height=height, width=width, encoding='bgr8', is_bigendian=0,
        step=width * 3, data=np.ascontiguousarray(image).reshape(-1))
    info_msg = types[INFO_TYPE](
        header=header, height=height, width=width, distortion_model='plumb_bob',
        d=np.zeros(0), k=np.zeros(9), r=np.zeros(9), p=np.zeros(12), binning_x=0,
        binning_y=0, roi=types['sensor_msgs/msg/RegionOfInterest'](
            x_offset=0, y_offset=0, height=0, width=0, do_rectify=False))
    return image_msg, info_msg


def _frames_of(source: str) -> Iterator[Positioned]:
    opened = open_source(parse_source(source), loop=False)
    try:
        while (image := opened.read()) is not None:
            yield image, opened.position
    finally:
        opened.close()


def bag_topics(bag: str) -> List[Tuple[str, str]]:
    """Return (topic, message type) of every topic in ``bag``."""
    from rosbags.rosbag2 import Reader

    with Reader(bag) as reader:
        return sorted({(c.topic, c.msgtype) for c in reader.connections})


def read_messages(bag: str, topics: Sequence[str], start_ns: int = 0
                  ) -> Iterator[Tuple[str, str, int, bytes]]:
    """Yield (topic, type, recorded time ns, raw CDR bytes) of ``topics``, in time order."""
    from rosbags.rosbag2 import Reader

    with Reader(bag) as reader:
        present = {c.topic for c in reader.connections}
        missing = [t for t in topics if t not in present]
        if missing:
            raise ValueError(f'{bag} has no topic {", ".join(missing)} '
                             f'(topics: {", ".join(sorted(present))})')
        connections = [c for c in reader.connections if c.topic in topics]
        for connection, timestamp, raw in reader.messages(connections=connections,
                                                          start=start_ns or None):
            yield connection.topic, connection.msgtype, timestamp, bytes(raw)


def read_images(bag: str, topic: str = '/camera/image_raw') -> Iterator[Tuple[int, bytes]]:
    """Yield (recorded time ns, raw CDR bytes) of the image topic, in order."""
    for _topic, _type, timestamp, raw in read_messages(bag, [topic]):
        yield timestamp, raw


def header_stamp_ns(raw: bytes) -> int:
    """
    Return the header stamp of a serialized message that starts with a Header (Image...).

    CDR: a 4-byte encapsulation (byte 1: 1 little endian, 0 big endian), then
    the stamp's ``int32 sec`` and ``uint32 nanosec``: no need to decode a frame.
    """
    sec, nanosec = struct.unpack_from('<iI' if raw[1] & 1 else '>iI', raw, 4)
    return sec * 10**9 + nanosec


def images_before(bag: str, topic: str, before_ns: int) -> Tuple[int, Optional[int]]:
    """Return (messages of ``topic`` recorded before ``before_ns``, the first one's time)."""
    from rosbags.rosbag2 import Reader

    with Reader(bag) as reader:
        connections = [c for c in reader.connections if c.topic == topic]
        first: Optional[int] = None
        count = 0
        for _connection, timestamp, _raw in reader.messages(connections=connections):
            first = timestamp if first is None else first
            if timestamp >= before_ns:
                break
            count += 1
        return count, first


def first_message(bag: str, topic: str) -> Tuple[int, bytes]:
    """Return (recorded time ns, raw CDR) of the first message of ``topic``."""
    for timestamp, raw in read_images(bag, topic):
        return timestamp, raw
    raise ValueError(f'{bag}: no message on {topic}')


def count_messages(bag: str, topic: str = '/camera/image_raw') -> int:
    """Return how many messages ``topic`` has in ``bag``."""
    from rosbags.rosbag2 import Reader

    with Reader(bag) as reader:
        return sum(c.msgcount for c in reader.connections if c.topic == topic)


def ensure_new(path: str) -> None:
    """Refuse to overwrite an existing bag."""
    if Path(path).exists():
        raise ValueError(f'{path} already exists')
