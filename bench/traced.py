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

Snapshots go to ``OUT_DIR/<pid>-<n>.tracemalloc`` (the last one at exit).
"""

from __future__ import annotations

import atexit
import importlib
import os
from pathlib import Path
import sys
import threading
import tracemalloc
from typing import List, Tuple

FRAMES = 1  # one frame per allocation: a per-line diff is what we read
IGNORED = (tracemalloc.__file__, '<frozen importlib._bootstrap>',
           '<frozen importlib._bootstrap_external>', '<unknown>')


def dump_every(folder: Path, interval: float, stop: threading.Event) -> None:
    """Dump a snapshot into ``folder`` every ``interval`` seconds until ``stop``."""
    count = 0
    while not stop.wait(interval):
        tracemalloc.take_snapshot().dump(str(folder / f'{os.getpid()}-{count:04d}.tracemalloc'))
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
    folder, interval, target, *argv = sys.argv[1:]
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    tracemalloc.start(FRAMES)
    stop = threading.Event()
    threading.Thread(target=dump_every, args=(out, float(interval), stop), daemon=True,
                     name='tracemalloc-dump').start()
    atexit.register(lambda: (stop.set(), tracemalloc.take_snapshot().dump(
        str(out / f'{os.getpid()}-9999.tracemalloc'))))
    module, function = target.split(':')
    sys.argv = [target, *argv]
    return int(getattr(importlib.import_module(module), function)(argv) or 0)


if __name__ == '__main__':
    sys.exit(main())
