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
and ``VD_TRANSPORT_TUNING=0`` turns every tuning here off.

With the high trim threshold glibc never hands freed heap back, and memory
freed by one thread's arena is not always reused by another: over hours the
free part of the heap grows (measured by ``bench/soak.py --malloc-stats``: the
edge's heap in use flat, its free part +6 MB/h). :func:`start_heap_trimming`
returns it with ``malloc_trim`` once a minute; between trims frames keep
their warm buffers. glibc also gives threads arenas of their own (up to 8
per core), and a free chunk in one arena is no use to a thread of another:
``VD_MALLOC_ARENAS=N`` limits the process's threads (executor, DDS,
inference, writer, uploader) to N arenas. Unset or 0 leaves glibc's default:
three side-by-side soaks with 2 arenas showed no steady gain (README,
"Unattended for months"). A ``MALLOC_ARENA_MAX`` in the environment wins,
as glibc reads it itself. The heap tuning and trimming are for glibc's malloc
only: the entry points relaunch with jemalloc where it is installed
(:mod:`vehicle_detection.allocator`), and then only the Fast DDS profile applies.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
from pathlib import Path
import sys
import threading
from typing import Optional

from vehicle_detection.allocator import jemalloc_loaded

PROFILE = Path(__file__).with_name('fastdds_large_images.xml')
_PROFILE_VARIABLES = ('FASTDDS_DEFAULT_PROFILES_FILE', 'FASTRTPS_DEFAULT_PROFILES_FILE')
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
ARENAS = 0  # the threads' malloc arenas (VD_MALLOC_ARENAS; 0: glibc's own, 8 per core)
_KEEP_BYTES = 64 * 1024 * 1024
TRIM_EVERY_S = 60.0
_trimmer: Optional[threading.Thread] = None  # one per process


@functools.lru_cache(maxsize=1)
def _libc() -> Optional[ctypes.CDLL]:
    # Once per process: find_library runs ldconfig, and the trimmer asks every minute.
    name = ctypes.util.find_library('c')
    try:
        return ctypes.CDLL(name) if name else None
    except OSError:
        return None


def trim_heap() -> bool:
    """Hand the heap's free pages back to the system (glibc); True when it did."""
    libc = _libc()
    trim = getattr(libc, 'malloc_trim', None)
    return bool(trim(0)) if trim is not None else False


def start_heap_trimming(period_s: float = TRIM_EVERY_S) -> bool:
    """
    Trim the heap every ``period_s`` on a daemon thread (glibc, once per process).

    Only where :func:`tune_allocator` kept freed memory in the heap; False otherwise.
    """
    global _trimmer
    if _trimmer is not None or os.environ.get('VD_TRANSPORT_TUNING', '1') == '0' \
            or getattr(_libc(), 'malloc_trim', None) is None or jemalloc_loaded():
        return False
    pause = threading.Event()

    def run() -> None:
        while not pause.wait(period_s):
            trim_heap()

    _trimmer = threading.Thread(target=run, daemon=True, name='heap-trim')
    _trimmer.start()
    return True


def arena_limit() -> int:
    """
    Return how many malloc arenas this process should have (0: leave glibc's default).

    ``MALLOC_ARENA_MAX`` set in the environment is glibc's own setting: left
    alone. ``VD_MALLOC_ARENAS`` that is no whole number >= 0 is reported on
    stderr and glibc's default kept.
    """
    if os.environ.get('MALLOC_ARENA_MAX'):
        return 0
    text = os.environ.get('VD_MALLOC_ARENAS', '').strip()
    if not text:
        return ARENAS
    if not text.isdigit():
        print(f'warning: VD_MALLOC_ARENAS={text!r} is not a whole number >= 0: '
              "glibc's default kept", file=sys.stderr, flush=True)
        return ARENAS
    return int(text)


def tune_allocator() -> bool:
    """Keep buffers up to 64 MB in the heap, bound the arenas if asked (glibc); True if applied."""
    mallopt = getattr(_libc(), 'mallopt', None)
    if mallopt is None or jemalloc_loaded():
        return False  # not glibc's malloc: nothing to tune (jemalloc keeps its own pages)
    arenas = arena_limit()
    # Before the executor, DDS and inference threads exist: each takes its arena at its
    # first allocation, and an arena once made is never given up.
    if arenas and not mallopt(_M_ARENA_MAX, arenas):  # VD_MALLOC_ARENAS asks for a limit
        return False
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
