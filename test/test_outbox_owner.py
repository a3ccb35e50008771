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

"""One outbox, one owner: a second bridge on an outbox folder refuses to start."""

from __future__ import annotations

import os
from pathlib import Path
import signal
import subprocess
import sys
from typing import Dict, Iterator

import psutil
import pytest
from ros_cli import BIN, ros2_env, stop_daemon, Terminal

from vehicle_detection.core.bridge.outbox_owner import OutboxInUse, OutboxOwner


@pytest.fixture
def env(domain_id: int, tmp_path: Path) -> Iterator[Dict[str, str]]:
    """Give a shell environment as the README sets it up; stop the ros2 daemon after."""
    environment = ros2_env(domain_id, tmp_path / 'ros_log')
    yield environment
    stop_daemon(environment)


def test_a_second_owner_is_refused_until_the_first_lets_go(tmp_path: Path) -> None:
    folder = tmp_path / 'outbox'
    first = OutboxOwner(str(folder)).claim()
    with pytest.raises(OutboxInUse) as refused:
        OutboxOwner(str(folder)).claim()  # flock: refused in the same process too
    assert str(folder) in str(refused.value) and f'process {os.getpid()}' in str(refused.value)
    assert refused.value.owner_pid == os.getpid()
    first.release()
    with OutboxOwner(str(folder)) as second:
        assert second.held


def test_kill_9_leaves_no_stale_lock(tmp_path: Path) -> None:
    folder = tmp_path / 'outbox'
    owner = subprocess.Popen(
        [sys.executable, '-c',
         'import sys, time\n'
         'from vehicle_detection.core.bridge.outbox_owner import OutboxOwner\n'
         f'OutboxOwner({str(folder)!r}).claim()\n'
         'print("claimed", flush=True)\n'
         'sys.stdin.read()\n'],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout.readline().strip() == 'claimed'
        with pytest.raises(OutboxInUse, match=f'process {owner.pid}'):
            OutboxOwner(str(folder)).claim()
        owner.send_signal(signal.SIGKILL)
        owner.wait(timeout=10)
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()
    with OutboxOwner(str(folder)) as taken:  # the kernel dropped the dead owner's lock
        assert taken.held
        assert (folder / 'outbox.lock').read_text().strip() == str(os.getpid())


def test_two_bridges_on_one_outbox_folder(env: Dict[str, str], tmp_path: Path) -> None:
    outbox = tmp_path / 'shared-outbox'
    command = [str(BIN / 'ros2'), 'run', 'vehicle_detection', 'cloud_bridge_node',
               '--ros-args', '-p', f'data_dir:={outbox}',
               '-p', 'api_base_url:=http://127.0.0.1:9']
    with Terminal(command, env) as first:
        first.wait_for('cloud bridge ready')
        second = subprocess.run(command, env=env, capture_output=True, text=True,
                                timeout=60)
        text = second.stdout + second.stderr
        assert second.returncode != 0, text
        assert 'Traceback' not in text, text
        fatal = [line for line in text.splitlines() if '[FATAL]' in line]
        assert fatal and f'outbox folder {outbox} is in use by process' in fatal[0], text
        owner = int(fatal[0].split('in use by process ')[1].split()[0])
        assert 'cloud_bridge_node' in ' '.join(psutil.Process(owner).cmdline())
        assert first.process.poll() is None  # the first bridge runs on
        assert first.interrupt() == 0
    assert 'Traceback' not in first.text()
