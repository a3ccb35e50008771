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
Run a command as a child subreaper and report how each of its processes ended.

    python test/subreaper.py COMMAND...

Orphans of the command (nodes whose ``ros2 launch`` died) are handed to this
process instead of init, so their exit codes can be read: one line
``subreaper: PID exited CODE`` per process, until none is left. The first
line is ``subreaper: started PID`` (the command's own pid).
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys

PR_SET_CHILD_SUBREAPER = 36


def main() -> int:
    """Start the command, reap every descendant, report each."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        print(f'subreaper: prctl failed: {os.strerror(ctypes.get_errno())}', flush=True)
        return 1
    child = subprocess.Popen(sys.argv[1:])
    print(f'subreaper: started {child.pid}', flush=True)
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            return 0
        print(f'subreaper: {pid} exited {os.waitstatus_to_exitcode(status)}', flush=True)


if __name__ == '__main__':
    sys.exit(main())
