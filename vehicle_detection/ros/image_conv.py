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
Fast, dependency-free conversion between NumPy frames and ``sensor_msgs/Image``.

ROS 2's ``cv_bridge`` is not available as a wheel and the PyPI ``cv-bridge``
is ROS 1 code that no longer runs on NumPy 2. The ``Image.data`` setter walks
every byte of anything that is not an ``array.array('B')`` (about 120 ms for a
720p frame), so frames are handed over as such an array, filled with a single
``memcpy``; the received ``data`` is viewed in place with ``np.frombuffer``.
"""

from __future__ import annotations

import array
from typing import Dict, Tuple

from builtin_interfaces.msg import Time
import numpy as np
from sensor_msgs.msg import CameraInfo, Image

# encoding -> (channels, dtype)
ENCODINGS: Dict[str, Tuple[int, str]] = {
    'bgr8': (3, 'uint8'), 'rgb8': (3, 'uint8'), 'bgra8': (4, 'uint8'),
    'rgba8': (4, 'uint8'), 'mono8': (1, 'uint8'), '8UC1': (1, 'uint8'),
    '8UC3': (3, 'uint8'), 'mono16': (1, 'uint16'), '16UC1': (1, 'uint16'),
}


class ImageEncodingError(ValueError):
    """The image message cannot be turned into a BGR frame."""


def stamp_from_ns(stamp_ns: int) -> Time:
    """Make a ``builtin_interfaces/Time`` from nanoseconds."""
    return Time(sec=stamp_ns // 1_000_000_000, nanosec=stamp_ns % 1_000_000_000)


def stamp_to_ns(stamp: Time) -> int:
    """Return nanoseconds from a ``builtin_interfaces/Time``."""
    return stamp.sec * 1_000_000_000 + stamp.nanosec


def to_image_msg(frame: np.ndarray, stamp: Time, frame_id: str,
                 encoding: str = 'bgr8') -> Image:
    """Wrap an HxWxC uint8 frame in an ``Image`` with one bulk copy."""
    if frame.dtype != np.uint8 or frame.ndim not in (2, 3):
        raise ImageEncodingError(f'expected an HxW or HxWxC uint8 frame, got '
                                 f'{frame.dtype} with shape {frame.shape}')
    frame = np.ascontiguousarray(frame)
    height, width = frame.shape[:2]
    channels = 1 if frame.ndim == 2 else frame.shape[2]
    data = array.array('B')
    data.frombytes(frame.data.cast('B'))
    msg = Image(height=height, width=width, encoding=encoding, is_bigendian=0,
                step=width * channels)
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.data = data
    return msg


def image_view(msg: Image) -> np.ndarray:
    """View the message's pixels as an array without copying."""
    if msg.encoding not in ENCODINGS:
        raise ImageEncodingError(
            f'unsupported image encoding {msg.encoding!r}; supported: '
            + ', '.join(sorted(ENCODINGS)))
    channels, dtype = ENCODINGS[msg.encoding]
    itemsize = np.dtype(dtype).itemsize
    row = msg.width * channels * itemsize
    if msg.step < row or len(msg.data) < msg.step * msg.height:
        raise ImageEncodingError(
            f'image {msg.width}x{msg.height} {msg.encoding}: step {msg.step} and '
            f'{len(msg.data)} bytes of data do not hold the pixels')
    raw = np.frombuffer(msg.data, dtype=np.uint8, count=msg.step * msg.height)
    rows = raw.reshape(msg.height, msg.step)[:, :row]
    pixels = rows.view(np.dtype(dtype).newbyteorder('>' if msg.is_bigendian else '<'))
    shape = (msg.height, msg.width) if channels == 1 else (msg.height, msg.width, channels)
    return pixels.reshape(shape)


def to_bgr(msg: Image) -> np.ndarray:
    """Return a BGR uint8 frame from any supported encoding (a view for bgr8)."""
    import cv2  # local: keeps this module importable for tools that only wrap frames
    pixels = image_view(msg)
    encoding = msg.encoding
    if encoding in ('bgr8', '8UC3'):
        return pixels
    if encoding == 'rgb8':
        return cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR)
    if encoding == 'bgra8':
        return cv2.cvtColor(pixels, cv2.COLOR_BGRA2BGR)
    if encoding == 'rgba8':
        return cv2.cvtColor(pixels, cv2.COLOR_RGBA2BGR)
    if pixels.dtype == np.uint16:
        pixels = (pixels >> 8).astype(np.uint8)
    return cv2.cvtColor(np.ascontiguousarray(pixels), cv2.COLOR_GRAY2BGR)


def camera_info(width: int, height: int, stamp: Time, frame_id: str) -> CameraInfo:
    """Make the camera info of an uncalibrated camera: size and frame only."""
    info = CameraInfo(width=width, height=height, distortion_model='plumb_bob')
    info.header.stamp = stamp
    info.header.frame_id = frame_id
    return info
