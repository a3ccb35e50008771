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
One outbox, one owner: a bridge holds a lock on its outbox folder for its whole life.

Two bridges on one folder would drain one queue: each would send the
other's events and count the other's data, and a stop of one would report
the other's pending events. The lock is ``flock`` on ``outbox.lock`` in the
folder: the kernel drops it when the process ends, however it ends (``kill
-9`` included), so a lock is never stale, and the file is left in place. A
second bridge on the folder gets :class:`OutboxInUse`, naming the folder and
the owner's process id (written into the file by the owner).
"""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path
from typing import Optional

LOCK_NAME = 'outbox.lock'


class OutboxInUse(ValueError):
    """Another process (or another bridge in this one) owns the outbox folder."""

    def __init__(self, folder: Path, owner_pid: Optional[int]) -> None:
        """Say which folder is taken, and by whom when the lock file tells."""
        self.folder, self.owner_pid = folder, owner_pid
        owner = f'process {owner_pid}' if owner_pid else 'another process'
        super().__init__(
            f'outbox folder {folder} is in use by {owner} (another cloud bridge): one outbox '
            'has one bridge; give this one its own data_dir (e.g. --set '
            'cloud_bridge_node.data_dir=/var/lib/vehicle_detection/run2, or data_dir:= in '
            'a parameter file), or stop the other one')


class OutboxOwner:
    """The lock on one outbox folder, held from :meth:`claim` until :meth:`release`."""

    def __init__(self, folder: str) -> None:
        """Remember the folder (``~`` expanded); nothing is locked yet."""
        self.folder = Path(folder).expanduser().resolve()
        self._fd: Optional[int] = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock now."""
        return self._fd is not None

    def claim(self) -> 'OutboxOwner':
        """
        Take the folder (created if missing) or raise :class:`OutboxInUse` at once.

        Never waits. ``flock`` locks belong to one open file, so a second
        owner in the same process is refused too. Other OSErrors (a folder
        that cannot be created or written) are raised as they are.
        """
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / LOCK_NAME
        # O_CLOEXEC: a child process (nvidia-smi, a shell) must not inherit and keep the lock.
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            os.close(fd)
            if error.errno in (errno.EWOULDBLOCK, errno.EACCES):
                raise OutboxInUse(self.folder, _owner_pid(path)) from None
            raise
        # The lock is ours: say who holds it, for the message a second bridge prints.
        os.ftruncate(fd, 0)
        os.pwrite(fd, f'{os.getpid()}\n'.encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        """Let the folder go (closing the file drops the lock); a no-op when not held."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def __enter__(self) -> 'OutboxOwner':
        """Claim the folder."""
        return self.claim()

    def __exit__(self, *_exc: object) -> None:
        """Release the folder."""
        self.release()


def _owner_pid(path: Path) -> Optional[int]:
    """Return the pid the owner wrote into the lock file, None if unreadable (just taken)."""
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
