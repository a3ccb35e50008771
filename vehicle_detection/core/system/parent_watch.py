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
Notice that the process that started this one is gone (no ROS here).

``ros2 launch`` killed by SIGTERM (``kill``, a supervisor, ``docker stop``
without ``STOPSIGNAL SIGINT``) exits at once and leaves its nodes running as
orphans: upstream launch does not pass the signal on. A node started by
launch therefore watches its parent: once the parent is gone (the node was
handed to another parent: init, a subreaper) it stops as if interrupted,
and its outbox is flushed like at a Ctrl-C.

Only a parent that is ``ros2 launch`` is watched (``VD_STOP_WITH_PARENT=1``
watches any parent, ``0`` none): a node started by systemd has PID 1 as its
parent from the start, and one started from a shell with ``nohup`` is meant
to outlive the shell.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import List, Mapping, Optional, Sequence

STOP_WITH_PARENT_ENV = 'VD_STOP_WITH_PARENT'


def command_line(pid: int, proc: Path = Path('/proc')) -> List[str]:
    """Return the arguments of process ``pid``; empty where they cannot be read."""
    try:
        raw = (proc / str(pid) / 'cmdline').read_bytes()
    except OSError:
        return []
    return [part.decode('utf-8', 'replace') for part in raw.split(b'\0') if part]


def is_launch(arguments: Sequence[str]) -> bool:
    """Whether a command line is ``ros2 launch ...`` (as the ros2 script or its module)."""
    names = [Path(argument).name for argument in arguments]
    return any(name == 'ros2' and names[index + 1:index + 2] == ['launch']
               for index, name in enumerate(names))


class ParentWatch:
    """Tells whether the parent this process had at the start has gone away."""

    def __init__(self, parent_pid: int, enabled: bool) -> None:
        """Watch ``parent_pid`` when ``enabled``; see :meth:`of_this_process`."""
        self.parent_pid = parent_pid
        self.enabled = enabled

    @classmethod
    def of_this_process(cls, env: Optional[Mapping[str, str]] = None) -> 'ParentWatch':
        """Watch this process's parent when it is ``ros2 launch`` (or as the env says)."""
        setting = (os.environ if env is None else env).get(STOP_WITH_PARENT_ENV, '')
        parent = os.getppid()
        if setting == '0' or parent <= 1:
            return cls(parent, False)  # started by init/systemd: no parent to lose
        return cls(parent, setting == '1' or is_launch(command_line(parent)))

    def gone(self) -> bool:
        """Tell whether the watched parent went away: this process now has another parent."""
        return self.enabled and os.getppid() != self.parent_pid
