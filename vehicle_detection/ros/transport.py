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
Process set-up that makes large images cheap to move: call before ``rclpy.init``.

Two measured causes of slow 720p frames (see ``bench/transport.py``):

- glibc serves every 2.7 MB buffer with a fresh ``mmap`` and returns it on
  free, so each copy of a frame in the middleware pays about 700 page faults;
  raising the mmap and trim thresholds keeps those buffers in the heap.
- Fast DDS's default 512 KB shared-memory segment cannot hold a frame, so it
  falls back to fragmented UDP; the packaged profile enlarges the segment.

A user's own ``FASTDDS_DEFAULT_PROFILES_FILE`` (or another RMW) is left alone,
and ``VD_TRANSPORT_TUNING=0`` turns both off.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from pathlib import Path

PROFILE = Path(__file__).with_name('fastdds_large_images.xml')
_PROFILE_VARIABLES = ('FASTDDS_DEFAULT_PROFILES_FILE', 'FASTRTPS_DEFAULT_PROFILES_FILE')
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_KEEP_BYTES = 64 * 1024 * 1024


def tune_allocator() -> bool:
    """Keep buffers up to 64 MB in the heap (glibc only); True when applied."""
    name = ctypes.util.find_library('c')
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False  # not glibc: nothing to tune
    return bool(mallopt(_M_MMAP_THRESHOLD, _KEEP_BYTES)) and bool(
        mallopt(_M_TRIM_THRESHOLD, 4 * _KEEP_BYTES))


def use_large_image_profile() -> bool:
    """Point Fast DDS at the packaged profile unless the user chose one or another RMW."""
    if any(os.environ.get(name) for name in _PROFILE_VARIABLES):
        return False
    if os.environ.get('RMW_IMPLEMENTATION', 'rmw_fastrtps_cpp') != 'rmw_fastrtps_cpp':
        return False
    os.environ['FASTDDS_DEFAULT_PROFILES_FILE'] = str(PROFILE)
    return True


def tune_transport() -> None:
    """Apply both tunings unless ``VD_TRANSPORT_TUNING=0``; call before ``rclpy.init``."""
    if os.environ.get('VD_TRANSPORT_TUNING', '1') == '0':
        return
    tune_allocator()
    use_large_image_profile()
