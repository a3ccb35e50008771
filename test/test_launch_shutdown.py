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
Stopping ``ros2 launch vehicle_detection system.launch.py`` as users and supervisors do.

A terminal's Ctrl-C reaches every process of the launch's group; pressed
twice, the nodes get it twice plus launch's own SIGINT. ``kill -TERM`` on the
launch process alone (a supervisor, ``docker stop`` without ``STOPSIGNAL
SIGINT``) makes upstream launch exit at once without passing anything on:
the nodes notice their launch process is gone and stop by themselves.
"""

from __future__ import annotations

import os
from pathlib import Path
import re
import signal
import sys
import threading
from typing import Dict, Iterator

import pytest
from ros_cli import BIN, ros2_env, stop_daemon, Terminal
from test_ros2_cli import assert_clean_stop, CLIP, NODES, user_config

from vehicle_detection.core.system.parent_watch import command_line, is_launch, ParentWatch

SUBREAPER = Path(__file__).with_name('subreaper.py')


@pytest.fixture
def env(domain_id: int, tmp_path: Path) -> Iterator[Dict[str, str]]:
    """Give a shell environment as the README sets it up; stop the ros2 daemon after."""
    environment = ros2_env(domain_id, tmp_path / 'ros_log')
    yield environment
    stop_daemon(environment)


def wait_until_started(terminal: Terminal) -> None:
    """Wait for each node's ready line (a signal during start-up is another matter)."""
    for ready in ('camera source', 'detector ready', 'cloud bridge ready'):
        terminal.wait_for(ready)


def launch_command(samples_dir: Path, model_path: Path, tmp_path: Path) -> list:
    """Return the system launch as a user types it (no cloud server: alerts wait)."""
    return [str(BIN / 'ros2'), 'launch', 'vehicle_detection', 'system.launch.py',
            f'config:={user_config(tmp_path)}', f'source:={samples_dir / CLIP}',
            f'model:={model_path}', 'cloud_url:=http://127.0.0.1:9']


@pytest.mark.parametrize('gap', [0.1, 0.3])
def test_ctrl_c_twice_stops_every_node_cleanly(env: Dict[str, str], samples_dir: Path,
                                               model_path: Path, tmp_path: Path,
                                               gap: float) -> None:
    with Terminal(launch_command(samples_dir, model_path, tmp_path), env) as terminal:
        wait_until_started(terminal)
        os.killpg(terminal.process.pid, signal.SIGINT)
        threading.Event().wait(gap)  # the time between the two key presses is the test
        code = terminal.interrupt(signal.SIGINT)
    # Upstream `ros2 launch` itself may die of the second SIGINT once its nodes are done
    # (CI: every node "finished cleanly", then launch exited -2, no traceback): the nodes
    # are this package's, and each must stop cleanly.
    assert code in (0, -signal.SIGINT), terminal.text()[-3000:]
    assert_clean_stop(terminal, 0, NODES)


def test_sigterm_to_launch_alone_stops_its_nodes(env: Dict[str, str], samples_dir: Path,
                                                 model_path: Path, tmp_path: Path) -> None:
    launch = launch_command(samples_dir, model_path, tmp_path)
    command = [sys.executable, str(SUBREAPER), *launch]
    with Terminal(command, env) as terminal:
        wait_until_started(terminal)
        text = terminal.text()
        launch_pid = int(re.search(r'subreaper: started (\d+)', text).group(1))
        nodes = {int(pid): name for name, pid in
                 re.findall(r'\[(\w+)-\d\]: process started with pid \[(\d+)\]', text)}
        os.kill(launch_pid, signal.SIGTERM)
        assert terminal.process.wait(timeout=40) == 0  # every process reaped
        terminal.output.wait_closed(10)
    exits = {int(pid): int(code)
             for pid, code in re.findall(r'subreaper: (\d+) exited (-?\d+)', terminal.text())}
    assert exits.get(launch_pid) == -signal.SIGTERM, terminal.text()[-3000:]
    assert sorted(nodes.values()) == sorted(NODES), text
    # Upstream launch left them running; each saw its launch go and stopped cleanly.
    assert {nodes[pid]: exits.get(pid) for pid in nodes} == dict.fromkeys(NODES, 0), (
        terminal.text()[-3000:])
    logs = ''.join(path.read_text() for path in (tmp_path / 'ros_log').glob('*.log'))
    assert logs.count('the launch process that started this node is gone: stopping') == 3


def test_only_a_launch_parent_is_watched() -> None:
    assert is_launch(['/venv/bin/python3', '/venv/bin/ros2', 'launch', 'pkg', 'x.launch.py'])
    assert not is_launch(['/venv/bin/python3', '/venv/bin/ros2', 'run', 'pkg', 'node'])
    assert not is_launch(['/bin/bash', '-c', 'launch'])
    # This test's parent (pytest's runner or a shell) is no launch: not watched.
    assert not is_launch(command_line(os.getppid()))
    assert not ParentWatch.of_this_process({}).enabled
    assert ParentWatch.of_this_process({'VD_STOP_WITH_PARENT': '1'}).enabled
    watch = ParentWatch(os.getppid(), enabled=True)
    assert not watch.gone()
    assert ParentWatch(os.getppid() + 1, enabled=True).gone()  # handed to another parent
    assert not ParentWatch(os.getppid() + 1, enabled=False).gone()
    assert command_line(2**22 + 1) == []  # no such process
