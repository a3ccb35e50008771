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

"""The real ``ros2`` command line, run as a user runs it, for tests."""

from __future__ import annotations

import os
from pathlib import Path
import signal
import subprocess
import sys
from typing import Dict, List, Optional

from cloud_helpers import require_tool
from waiting import Lines, wait_until

BIN = Path(sys.prefix) / 'bin'
ROS2 = BIN / 'ros2'


def ros2_env(domain_id: int, log_dir: Path, **extra: str) -> Dict[str, str]:
    """Return the environment of a shell set up as the README says, on its own domain."""
    require_tool(ROS2.exists(), f'{ROS2} is absent: make test installs the ros2 command line '
                                '(../shared/ros/install-ros2-cli)')
    env = dict(os.environ, AMENT_PREFIX_PATH=sys.prefix, ROS_DOMAIN_ID=str(domain_id),
               ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST', ROS_LOG_DIR=str(log_dir),
               PATH=f'{BIN}{os.pathsep}{os.environ.get("PATH", "")}', PYTHONUNBUFFERED='1')
    env.pop('VD_CLOUD_API_KEY', None)
    env.update(extra)
    return env


def ros2(env: Dict[str, str], *args: str, timeout: float = 60.0,
         check: bool = True) -> subprocess.CompletedProcess:
    """Run ``ros2 ARGS`` as typed (the daemon it starts is stopped by :func:`stop_daemon`)."""
    result = subprocess.run([str(ROS2), *args], env=env, capture_output=True, text=True,
                            timeout=timeout)
    if check:
        assert result.returncode == 0, f'ros2 {" ".join(args)}: {result.stdout}{result.stderr}'
    return result


def wait_listed(env: Dict[str, str], kind: str, names: List[str],
                timeout: float = 20.0) -> List[str]:
    """
    Poll ``ros2 KIND list`` until it shows every one of ``names``; return the listing.

    Polled because nothing signals it: the CLI daemon discovers the graph over a
    moment, and a listing taken too early is right for that moment.
    """
    listed: List[str] = []

    def complete() -> bool:
        listed[:] = ros2(env, kind, 'list').stdout.split()
        return set(names) <= set(listed)

    wait_until(complete, timeout, f'ros2 {kind} list to show {names}', poll=0.5)
    return listed


def stop_daemon(env: Dict[str, str]) -> None:
    """Stop the ros2 CLI daemon of this domain, so that no process outlives the test."""
    ros2(env, 'daemon', 'stop', check=False)


class Terminal:
    """
    A command started as from a terminal: its own process group, output collected.

    :meth:`interrupt` is what Ctrl-C does: SIGINT to every process of the
    group at once, the launched nodes included.
    """

    def __init__(self, command: List[str], env: Dict[str, str]) -> None:
        self.process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True,
                                        start_new_session=True)
        self.output = Lines(self.process.stdout)

    def wait_for(self, text: str, timeout: float = 60.0) -> None:
        """Wait until a line of output contains ``text``."""
        self.output.wait_for(text, timeout)

    def interrupt(self, sig: int = signal.SIGINT, timeout: float = 40.0) -> int:
        """Send ``sig`` to the whole process group, wait for the exit; return the code."""
        os.killpg(self.process.pid, sig)
        code = self.process.wait(timeout=timeout)
        self.output.wait_closed(timeout)
        return code

    def text(self) -> str:
        """Return everything printed so far."""
        return ''.join(self.output.lines)

    def close(self) -> None:
        """Kill what is left (a failed test), then reap it."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def __enter__(self) -> 'Terminal':
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def launched_node_exits(text: str) -> Optional[List[str]]:
    """Return launch's lines about its processes ending ('finished cleanly', 'died')."""
    return [line for line in text.splitlines()
            if 'process has finished cleanly' in line or 'process has died' in line]
