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
Run a command's entry point under tracemalloc, dumping a snapshot every few minutes.

``bench/soak.py --tracemalloc`` starts the edge and the server through this, then
diffs the snapshots per line (:func:`growth`) to find what keeps growing:

    python bench/traced.py OUT_DIR INTERVAL_S vehicle_detection.cli.main:main run ...

Snapshots go to ``OUT_DIR/<pid>-<n>.tracemalloc`` (the last one at exit). Each
interval also adds a line to ``OUT_DIR/<pid>-malloc.jsonl``: the resident memory
by kind, the heap in use and free (jemalloc's counters, or glibc's ``mallinfo2``:
a native leak grows the first, fragmentation the second) and Python's allocated
blocks. ``--malloc-only`` (first argument) keeps
those figures without tracemalloc, at full speed.
"""

from __future__ import annotations

import atexit
import ctypes
import gc
import importlib
import json
import os
from pathlib import Path
import sys
import threading
import time
import tracemalloc
from typing import Dict, List, Tuple

from vehicle_detection.allocator import jemalloc_loaded, relaunch_with_jemalloc

FRAMES = 1  # one frame per allocation: a per-line diff is what we read
IGNORED = (tracemalloc.__file__, '<frozen importlib._bootstrap>',
           '<frozen importlib._bootstrap_external>', '<unknown>')


class MallInfo2(ctypes.Structure):
    """glibc's ``struct mallinfo2`` (2.33 and later)."""

    _fields_ = [(name, ctypes.c_size_t) for name in (
        'arena', 'ordblks', 'smblks', 'hblks', 'hblkhd', 'usmblks', 'fsmblks', 'uordblks',
        'fordblks', 'keepcost')]


#: jemalloc's counters (bytes): what the program holds, the pages those sit on, what is
#: resident (with jemalloc's own metadata and the dirty pages not yet given back)
JEMALLOC_STATS = ('allocated', 'active', 'resident', 'metadata', 'mapped', 'retained')


def jemalloc_figures() -> Dict[str, float]:
    """Return jemalloc's counters in MB (empty under another malloc)."""
    if not jemalloc_loaded():
        return {}
    libc = ctypes.CDLL(None)
    epoch = ctypes.c_uint64(1)  # writing the epoch refreshes the counters
    libc.mallctl(b'epoch', None, None, ctypes.byref(epoch), ctypes.c_size_t(8))
    figures = {}
    for name in JEMALLOC_STATS:
        value, size = ctypes.c_size_t(0), ctypes.c_size_t(ctypes.sizeof(ctypes.c_size_t))
        if libc.mallctl(f'stats.{name}'.encode(), ctypes.byref(value), ctypes.byref(size),
                        None, ctypes.c_size_t(0)) == 0:
            figures[f'je_{name}_mb'] = value.value / 2**20
    return figures


def memory_kinds() -> Dict[str, float]:
    """Return the process's resident memory by kind (MB), from ``/proc/self/status``."""
    kinds = {}
    with open('/proc/self/status', encoding='ascii') as status:
        for line in status:
            key, _, value = line.partition(':')
            if key in ('RssAnon', 'RssFile', 'RssShmem'):
                kinds[key.lower() + '_mb'] = int(value.split()[0]) / 1024
    return kinds


def malloc_figures() -> Dict[str, float]:
    """Return the heap in use and free (MB, every arena) and Python's allocated blocks."""
    figures: Dict[str, float] = {'t': time.monotonic(),
                                 'python_blocks': sys.getallocatedblocks(),
                                 'gc_full_runs': gc.get_stats()[2]['collections'],
                                 **memory_kinds(), **jemalloc_figures()}
    if os.environ.get('TRACED_COLLECT') == '1':  # is the growth garbage in cycles?
        figures['gc_collected'] = gc.collect()
        figures['python_blocks_after_gc'] = sys.getallocatedblocks()
    if 'je_allocated_mb' in figures:
        return figures  # mallinfo2 would describe glibc's own (unused) heap
    try:
        libc = ctypes.CDLL(None)
        libc.mallinfo2.restype = MallInfo2
        info = libc.mallinfo2()
    except (OSError, AttributeError):
        return figures  # not glibc 2.33+
    figures.update(heap_used_mb=info.uordblks / 2**20, heap_free_mb=info.fordblks / 2**20,
                   mmapped_mb=info.hblkhd / 2**20, arena_mb=info.arena / 2**20)
    return figures


def dump_every(folder: Path, interval: float, stop: threading.Event, trace: bool) -> None:
    """Every ``interval`` s until ``stop``: a snapshot (``trace``) and the malloc figures."""
    count = 0
    while not stop.wait(interval):
        if trace:
            tracemalloc.take_snapshot().dump(
                str(folder / f'{os.getpid()}-{count:04d}.tracemalloc'))
        with open(folder / f'{os.getpid()}-malloc.jsonl', 'a', encoding='utf-8') as out:
            out.write(json.dumps(malloc_figures()) + '\n')
        count += 1


def growth(first: Path, last: Path, top: int = 15) -> List[Tuple[str, float, int]]:
    """Return the ``top`` lines whose allocations grew most: (where, KB, count change)."""
    filters = [tracemalloc.Filter(False, name) for name in IGNORED]
    old = tracemalloc.Snapshot.load(str(first)).filter_traces(filters)
    new = tracemalloc.Snapshot.load(str(last)).filter_traces(filters)
    return [(str(stat.traceback), stat.size_diff / 1024, stat.count_diff)
            for stat in new.compare_to(old, 'lineno')[:top]]


def main() -> int:
    """Start tracing, the dumping thread, then the entry point with the rest of argv."""
    # As the entry points do when started as programs (called with argv, they don't):
    # the traced process runs with the allocator the shipped one runs with.
    relaunch_with_jemalloc()
    trace = sys.argv[1] != '--malloc-only'
    folder, interval, target, *argv = sys.argv[1 if trace else 2:]
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    if trace:
        tracemalloc.start(FRAMES)

        def last_snapshot() -> None:
            stop.set()
            tracemalloc.take_snapshot().dump(str(out / f'{os.getpid()}-9999.tracemalloc'))

        atexit.register(last_snapshot)
    threading.Thread(target=dump_every, args=(out, float(interval), stop, trace), daemon=True,
                     name='tracemalloc-dump').start()
    module, function = target.split(':')
    sys.argv = [target, *argv]
    return int(getattr(importlib.import_module(module), function)(argv) or 0)


if __name__ == '__main__':
    sys.exit(main())
