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

"""The long-running processes relaunch themselves with jemalloc, once, where it is installed."""

from __future__ import annotations

from pathlib import Path
import subprocess
import sys
from typing import Dict, List

from cloud_helpers import CloudServer
import cv2
import numpy as np
import pytest
from ros_helpers import camera_script

from vehicle_detection.allocator import (
    JEMALLOC_CONF, jemalloc_library, relaunch_plan, RELAUNCHED_ENV)
from waiting import wait_until

LIBRARY = '/usr/lib/x86_64-linux-gnu/libjemalloc.so.2'


def maps_of(pid: int) -> str:
    return Path(f'/proc/{pid}/maps').read_text(errors='replace')


def environment_of(pid: int) -> Dict[str, str]:
    """Return the environment process ``pid`` started (or relaunched itself) with."""
    entries = Path(f'/proc/{pid}/environ').read_bytes().decode(errors='replace').split('\0')
    return dict(entry.split('=', 1) for entry in entries if '=' in entry)


def thread_names(pid: int) -> List[str]:
    """Return the names of the threads of process ``pid``."""
    return [(task / 'comm').read_text().strip() for task in Path(f'/proc/{pid}/task').iterdir()]


def test_the_plan_preloads_jemalloc_once_unless_told_otherwise(capsys) -> None:
    plan = relaunch_plan({'PATH': '/bin'}, LIBRARY, loaded=False)
    assert plan == {'PATH': '/bin', 'LD_PRELOAD': LIBRARY, RELAUNCHED_ENV: '1',
                    'MALLOC_CONF': JEMALLOC_CONF, 'PYTHONMALLOC': 'malloc'}
    # jemalloc's options and Python's allocator of the user's own are kept as they are.
    own = relaunch_plan({'MALLOC_CONF': 'narenas:2', 'PYTHONMALLOC': 'debug'}, LIBRARY,
                        loaded=False)
    assert (own['MALLOC_CONF'], own['PYTHONMALLOC']) == ('narenas:2', 'debug')
    # A blank one (`MALLOC_CONF=` in an EnvironmentFile) is taken as unset.
    blank = relaunch_plan({'MALLOC_CONF': ' ', 'PYTHONMALLOC': ''}, LIBRARY, loaded=False)
    assert (blank['MALLOC_CONF'], blank['PYTHONMALLOC']) == (JEMALLOC_CONF, 'malloc')
    assert relaunch_plan({'VD_ALLOCATOR': 'jemalloc'}, LIBRARY, loaded=False) is not None
    assert relaunch_plan({'VD_ALLOCATOR': 'glibc'}, LIBRARY, loaded=False) is None
    assert relaunch_plan({}, LIBRARY, loaded=True) is None  # already there
    assert relaunch_plan({}, None, loaded=False) is None  # not installed: glibc's, quietly
    assert capsys.readouterr().err == ''
    # The user's own preload (a sanitizer, a profiler) or a debugger comes first.
    assert relaunch_plan({'LD_PRELOAD': '/opt/x.so'}, LIBRARY, loaded=False) is None
    assert relaunch_plan({}, LIBRARY, loaded=False, under_tracer=True) is None
    # Relaunched and still without it (a preload the system ignored): never a loop.
    assert relaunch_plan({RELAUNCHED_ENV: '1'}, LIBRARY, loaded=False) is None
    assert relaunch_plan({'VD_ALLOCATOR': 'tcmalloc'}, LIBRARY, loaded=False) is None
    assert "VD_ALLOCATOR='tcmalloc' is none of jemalloc, glibc" in capsys.readouterr().err
    assert relaunch_plan({'VD_ALLOCATOR': 'jemalloc'}, None, loaded=False) is None
    assert 'apt-get install libjemalloc2' in capsys.readouterr().err


def test_glibc_tuning_stands_aside_under_jemalloc() -> None:
    script = ('from vehicle_detection.ros.transport import start_heap_trimming, '
              'tune_allocator\nprint(tune_allocator(), start_heap_trimming())')
    library = jemalloc_library()
    assert library is not None, 'libjemalloc2 missing: make test installs it'
    answers = {name: subprocess.run([sys.executable, '-c', script], env=env, check=True,
                                    capture_output=True, text=True).stdout.split()
               for name, env in (('glibc', {'PATH': '/usr/bin'}),
                                 ('jemalloc', {'PATH': '/usr/bin', 'LD_PRELOAD': library}))}
    assert answers == {'glibc': ['True', 'True'], 'jemalloc': ['False', 'False']}


def test_the_server_runs_with_jemalloc_and_glibc_on_request(tmp_path: Path) -> None:
    assert jemalloc_library() is not None, 'libjemalloc2 missing: make test installs it'
    servers = {choice: CloudServer(f'sqlite:///{tmp_path}/{choice}.db',
                                   str(tmp_path / f'{choice}-images'),
                                   env={'VD_ALLOCATOR': choice})
               for choice in ('jemalloc', 'glibc')}
    try:
        # The process Popen started is the one serving: same PID, relaunched in place.
        assert 'libjemalloc' in maps_of(servers['jemalloc'].process.pid)
        assert 'libjemalloc' not in maps_of(servers['glibc'].process.pid)
        # Python's small objects go to jemalloc too; under glibc pymalloc keeps them.
        assert environment_of(servers['jemalloc'].process.pid).get('PYTHONMALLOC') == 'malloc'
        assert 'PYTHONMALLOC' not in environment_of(servers['glibc'].process.pid)
        # jemalloc's own thread returns unused pages on time.
        wait_until(lambda: 'jemalloc_bg_thd' in thread_names(servers['jemalloc'].process.pid),
                   30, "jemalloc's background thread in the server")
    finally:
        for server in servers.values():
            server.stop()
    for server in servers.values():
        assert server.process.returncode == 0, server.output()
        assert 'Traceback' not in server.output(), server.output()


@pytest.mark.ros
def test_a_node_script_relaunches_in_place_and_stops_cleanly(
        ros_context, ros_env, tmp_path: Path) -> None:
    for name in ('a.png', 'b.png'):
        cv2.imwrite(str(tmp_path / name), np.full((48, 64, 3), 90, np.uint8))
    with camera_script(ros_context, ros_env, tmp_path) as process:
        # The process Popen started is the one publishing: relaunched in place.
        assert 'libjemalloc' in maps_of(process.pid)
