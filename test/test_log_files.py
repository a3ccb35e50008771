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
A box runs for months: its logs and its heap stay within their sizes.

ROS 2's own log file and the server's output are rotated; the heap that frames
pass through goes back to the system; threads share as many malloc arenas as asked.
"""

from __future__ import annotations

import os
from pathlib import Path
import subprocess
import sys

import pytest

from vehicle_detection.core.system.log_files import pipe_to_rotating_file

# A process of ours: rclpy through start_context, a chatty node, the keeper's check.
CHATTY = """
import sys
from rclpy.node import Node
from vehicle_detection.ros import spin

context = spin.start_context([])
node = Node('chatty', context=context)
for round_ in range(3):
    for index in range(700):
        node.get_logger().info(f'round {round_} line {index} ' + 'x' * 80)
    spin._log_keeper.check()  # what its thread does every minute
node.get_logger().error('the last line')  # spdlog flushes on errors
print(spin._log_keeper.own_file(), spin._log_keeper.rotations)
node.destroy_node()
context.try_shutdown()
"""


@pytest.mark.ros
def test_a_processs_ros_log_is_rotated_and_ended_ones_pruned(ros_env: dict,
                                                             tmp_path: Path) -> None:
    folder = tmp_path / 'log' / 'vehicle_detection'
    folder.mkdir(parents=True)
    # Files of runs long gone (no such process), 300 KB each: past VD_LOG_KEEP_MB.
    for stamp in range(4):
        (folder / f'python3_4000000{stamp}_17000000000{stamp}.log').write_bytes(b'x' * 300_000)
    env = {**ros_env, 'ROS_HOME': str(tmp_path), 'VD_LOG_MAX_MB': '0.05',
           'VD_LOG_KEEP_MB': '0.5'}
    env.pop('ROS_LOG_DIR', None)
    result = subprocess.run([sys.executable, '-c', CHATTY], env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    own, rotations = result.stdout.split()
    own_file = Path(own)
    # In our own sub-folder of $ROS_HOME/log, rotated at each check (300 KB written).
    assert own_file.parent == folder and int(rotations) == 3
    assert own_file.stat().st_size < 75_000
    assert own_file.read_text().rstrip().endswith('the last line')  # it writes on
    backup = own_file.with_name(own_file.name + '.1')
    assert 'round 2 line' in backup.read_text()
    # The ended runs' files went, oldest first, until the folder fits 0.5 MB.
    total = sum(path.stat().st_size for path in folder.iterdir())
    assert total <= 500_000 + 75_000, sorted(p.name for p in folder.iterdir())
    assert not (folder / 'python3_40000000_170000000000.log').exists()


def test_a_childs_output_is_rotated(tmp_path: Path) -> None:
    child = subprocess.Popen([sys.executable, '-c', "for i in range(20000): print(f'{i} ' + "
                              "'x' * 100)"], stdout=subprocess.PIPE)
    assert child.stdout is not None
    copier = pipe_to_rotating_file(child.stdout, tmp_path / 'server.log', max_bytes=200_000,
                                   backups=2)
    assert child.wait(timeout=30) == 0
    copier.join(30)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ['server.log', 'server.log.1', 'server.log.2'], names
    assert all((tmp_path / name).stat().st_size <= 200_000 for name in names)
    assert (tmp_path / 'server.log').read_text().splitlines()[-1].startswith('19999 ')


# A frame-sized buffer per block, most freed between live ones: the heap keeps them
# (the allocator tuning's trim threshold) until trim_heap() hands them back.
FRAGMENTED = """
import numpy as np
import psutil
from vehicle_detection.ros import transport

assert transport.tune_allocator()
blocks = [np.ones(400_000, np.uint8) for _ in range(400)]
kept = blocks[::10]
del blocks
before = psutil.Process().memory_info().rss
assert transport.trim_heap()
after = psutil.Process().memory_info().rss
print(before // 2**20, after // 2**20, transport.start_heap_trimming(),
      transport.start_heap_trimming())
"""


def test_the_heap_freed_by_frames_goes_back_to_the_system() -> None:
    result = subprocess.run([sys.executable, '-c', FRAGMENTED], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    before, after, started, again = result.stdout.split()
    assert int(before) - int(after) > 100, result.stdout  # 144 MB freed between live blocks
    assert started == 'True' and again == 'False'  # one trimming thread per process


# Threads that allocate at the same time, as the executor, DDS, inference, the writer and
# the uploader do; glibc prints one "Arena N:" block per arena on stderr.
THREADS = """
import ctypes
import threading
from vehicle_detection.ros import transport

assert transport.tune_allocator()
together = threading.Barrier(8)

def work():
    together.wait()
    kept = [bytearray(200_000) for _ in range(20)]
    together.wait()

threads = [threading.Thread(target=work) for _ in range(8)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
ctypes.CDLL(None).malloc_stats()
"""


@pytest.mark.parametrize('environment, most, fewest', [
    ({'VD_MALLOC_ARENAS': '2'}, 2, 1),  # two arenas for every thread
    ({}, 64, 3),  # the default, glibc's own: one per thread (up to 8 a core)
    ({'VD_MALLOC_ARENAS': '2', 'MALLOC_ARENA_MAX': '4'}, 4, 3),  # glibc's setting wins
    ({'VD_MALLOC_ARENAS': 'two'}, 64, 3),  # not a number: said, and glibc's default kept
], ids=['two', 'default', 'MALLOC_ARENA_MAX', 'bad'])
def test_threads_share_the_malloc_arenas_asked_for(environment: dict, most: int,
                                                   fewest: int) -> None:
    env = {name: value for name, value in os.environ.items()
           if name not in ('MALLOC_ARENA_MAX', 'VD_MALLOC_ARENAS', 'VD_TRANSPORT_TUNING')}
    result = subprocess.run([sys.executable, '-c', THREADS], capture_output=True, text=True,
                            timeout=60, env={**env, **environment})
    assert result.returncode == 0, result.stderr[-2000:]
    arenas = result.stderr.count('Arena ')
    assert fewest <= arenas <= most, (arenas, result.stderr[-2000:])
    if 'two' in environment.values():
        assert "VD_MALLOC_ARENAS='two' is not a whole number" in result.stderr
