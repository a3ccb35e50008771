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
jemalloc for the processes that run for months, where it is installed.

Frames, tensors and messages of a few hundred KB to a few MB are allocated
and freed by a dozen threads all day. glibc's malloc keeps the freed pieces
scattered over its arenas and the process's memory creeps up however often
the heap is trimmed; jemalloc's size classes and its return of unused pages
after a few seconds keep it flat (``bench/soak.py --allocators glibc,jemalloc``:
the figures are in the README, "Unattended for months").

An allocator cannot be swapped in a running process, so the entry points of
the long-running processes (``vehicle-detection run``, each node's console
script, ``vehicle-detection-cloud serve``) call :func:`relaunch_with_jemalloc`
before they start any work of their own: the process replaces itself (same
PID, arguments and standard streams; the environment gains ``LD_PRELOAD`` and
a marker) with jemalloc preloaded, once. glibc's malloc is kept where Debian's
``libjemalloc2`` is missing, where the user preloads something already (a
sanitizer, a profiler, valgrind), under a debugger, and with
``VD_ALLOCATOR=glibc``. Children inherit the preload.

jemalloc runs with its background thread (:data:`JEMALLOC_CONF`, as Redis
does): without it, unused pages go back to the system only when the arena
holding them is used again, so a burst on a thread that then goes quiet (the
backlog sent at once after a link outage) stays resident. Python's small
objects go to jemalloc too (``PYTHONMALLOC=malloc``): Python's own allocator
takes 1 MiB arenas straight from the system and returns one only when every
object in it has died, so a few long-lived objects (track state, queued
events) scattered over arenas keep them all resident; the edge's memory
outside jemalloc grew 7 MB over its first ten minutes that way, while the same
objects in jemalloc stayed flat (``bench/traced.py`` figures, README). A
non-blank ``MALLOC_CONF`` or ``PYTHONMALLOC`` of the user's own is kept as it
is (:data:`JEMALLOC_ENV`).
"""

from __future__ import annotations

import ctypes
import os
import sys
from typing import Dict, Mapping, Optional

ALLOCATORS = ('jemalloc', 'glibc')
CHOICE_ENV = 'VD_ALLOCATOR'
#: set in the relaunched process: a preload the system ignores never loops
RELAUNCHED_ENV = 'VD_ALLOCATOR_RELAUNCHED'
#: jemalloc's options as shipped: pages unused for its decay time (10 s) are returned
#: by its own thread, on time, whatever the threads that freed them do next
JEMALLOC_CONF = 'background_thread:true'
#: what the relaunch adds beside the preload, each unless the user set it (non-blank):
#: jemalloc's options, and Python's small objects in jemalloc rather than pymalloc
JEMALLOC_ENV = {'MALLOC_CONF': JEMALLOC_CONF, 'PYTHONMALLOC': 'malloc'}
_LIBRARY = 'libjemalloc.so.2'
_SEARCHED = ('/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64',
             '/usr/lib', '/usr/local/lib')


def jemalloc_library() -> Optional[str]:
    """Return the path of jemalloc's shared library, or None where it is not installed."""
    for folder in _SEARCHED:
        path = os.path.join(folder, _LIBRARY)
        if os.path.isfile(path):
            return path
    return None


def jemalloc_loaded() -> bool:
    """Tell whether this process's malloc is jemalloc's (preloaded or linked)."""
    # Only libraries in the global namespace are seen: one bundled privately by an
    # extension (its own jemalloc, not the process's malloc) is not.
    return hasattr(ctypes.CDLL(None), 'mallctl')


def traced() -> bool:
    """Tell whether a debugger or tracer is attached (Linux; False where unknown)."""
    try:
        with open('/proc/self/status', encoding='ascii', errors='replace') as status:
            return any(line.startswith('TracerPid:') and line.split()[1] != '0'
                       for line in status)
    except (OSError, IndexError):
        return False


def relaunch_plan(environ: Mapping[str, str], library: Optional[str], loaded: bool,
                  under_tracer: bool = False) -> Optional[Dict[str, str]]:
    """
    Return the environment to relaunch with, or None to go on as the process is.

    The choice is ``environ``'s ``VD_ALLOCATOR`` (jemalloc by default). A bad
    value, or jemalloc asked for by name where it is missing, is reported on
    stderr and glibc's kept.
    """
    choice = environ.get(CHOICE_ENV, '').strip().lower()
    if choice not in ('', *ALLOCATORS):
        print(f'warning: {CHOICE_ENV}={choice!r} is none of {", ".join(ALLOCATORS)}: '
              "glibc's malloc kept", file=sys.stderr, flush=True)
        return None
    if choice == 'glibc' or loaded or environ.get(RELAUNCHED_ENV):
        return None
    if library is None:
        if choice == 'jemalloc':
            print(f'warning: {CHOICE_ENV}=jemalloc but {_LIBRARY} is not installed '
                  "(apt-get install libjemalloc2): glibc's malloc kept",
                  file=sys.stderr, flush=True)
        return None
    if environ.get('LD_PRELOAD', '').strip() or under_tracer:
        return None  # the user's own preload or debugger comes first: leave it be
    # A blank value (`MALLOC_CONF=` in an EnvironmentFile) counts as unset.
    shipped = {name: environ.get(name, '').strip() or value
               for name, value in JEMALLOC_ENV.items()}
    return {**environ, **shipped, 'LD_PRELOAD': library, RELAUNCHED_ENV: '1'}


def relaunch_with_jemalloc() -> None:
    """
    Replace this process by itself with jemalloc preloaded; return where it is not to.

    Call first in an entry point, before it starts threads or opens anything of
    its own: only the PID, the arguments and the standard streams go on.
    """
    plan = relaunch_plan(os.environ, jemalloc_library(), jemalloc_loaded(), traced())
    if plan is None:
        return
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):  # a closed or broken stream: nothing to keep
            pass
    # orig_argv is the command line as started: `python -m module ...` or a console script.
    try:
        os.execve(sys.executable, sys.orig_argv, plan)
    except OSError as error:  # the process goes on as it is
        print(f'warning: cannot relaunch with jemalloc ({error.strerror}): '
              "glibc's malloc kept", file=sys.stderr, flush=True)
