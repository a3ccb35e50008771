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
A server instance's runtime folder: working files its workers share on this host.

Under the host's temporary folder, never under the storage root (another
host's, or an object store). The instance's master holds a lock on a file
in it while it runs; a folder whose lock is free was left by a killed
server and is removed by the next one that starts.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
import shutil
import tempfile
from typing import List, Optional

PREFIX = 'vd-cloud-run-'
OWNER = '.owner'
_HELD: List[int] = []  # descriptors this process keeps locked until it ends


def new_runtime_folder(base: Optional[Path] = None, prefix: str = PREFIX) -> Path:
    """
    Make this instance's folder named ``prefix`` + pid + '-' (and remove abandoned ones).

    The lock, not a process id, tells an abandoned folder: servers in other
    PID namespaces (containers) may share the temporary folder.
    """
    base = base or Path(tempfile.gettempdir())
    # One starting server at a time: none removes a folder another made but has not locked.
    guard = _lock(base / (prefix + 'lock'), fcntl.LOCK_EX)
    try:
        for folder in base.glob(prefix + '*-*'):
            if folder.is_dir() and (folder / OWNER).exists():
                owner = _lock(folder / OWNER)
                if owner is not None:  # its server is gone
                    shutil.rmtree(folder, ignore_errors=True)
                    os.close(owner)
        folder = Path(tempfile.mkdtemp(prefix=f'{prefix}{os.getpid()}-', dir=base))
        owner = _lock(folder / OWNER)
        assert owner is not None  # a new file in a new folder of ours
        _HELD.append(owner)
    finally:
        if guard is not None:
            os.close(guard)
    return folder


def _lock(path: Path, how: int = fcntl.LOCK_EX | fcntl.LOCK_NB) -> Optional[int]:
    """Open ``path`` and lock it; None when another process holds it or it cannot be opened."""
    try:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        return None
    try:
        fcntl.flock(descriptor, how)
    except OSError:
        os.close(descriptor)
        return None
    return descriptor
