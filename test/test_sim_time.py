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
Standard ROS parameter files and sim time, as a ROS user writes and runs them.

A ``/**:`` section (every node) merged with node sections, ``use_sim_time``
in it, ``ros2 param set ... use_sim_time``, and a bag played with
``--clock`` (plus ``--loop``, ``--start-offset``, camera_info with the images)
driving nodes on the bag's time: their ``/diagnostics`` carry its stamps.
"""

from __future__ import annotations

import itertools
from pathlib import Path
import subprocess
import threading
from typing import Dict, Iterator, List

from diagnostic_msgs.msg import DiagnosticArray
import pytest
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from ros_cli import BIN, ros2, ros2_env, stop_daemon, Terminal
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo
from test_ros2_cli import assert_clean_stop, CLIP, first_frames, NODES
from vehicle_detection.core.system.bag_tools import make_bag
from vehicle_detection.ros.image_conv import stamp_to_ns
from vision_msgs.msg import Detection2DArray
from waiting import Inbox
import yaml

REPO = Path(__file__).resolve().parents[1]
CLI = str(BIN / 'vehicle-detection')
BAG_START = 10**18  # 2001-09-09: far from today, so stamps on the bag's time stand out
SECOND = 10**9


def sim_time_config(tmp_path: Path, diagnostics_period: float = 1.0) -> Path:
    """Write the shipped config as a ROS user would: /** for all nodes, node sections too."""
    shipped = yaml.safe_load((REPO / 'config' / 'config.yaml').read_text())
    for node in ('camera_node', 'detector_node', 'cloud_bridge_node'):
        shipped[node]['ros__parameters']['diagnostics_period'] = diagnostics_period
    document = {
        '/**': {'ros__parameters': {'use_sim_time': True, 'image_reliability': 'best_effort'}},
        '/camera_node': shipped['camera_node'],
        'detector_node': shipped['detector_node'],
        '/**/cloud_bridge_node': shipped['cloud_bridge_node'],
    }
    bridge = document['/**/cloud_bridge_node']['ros__parameters']
    bridge.update(data_dir=str(tmp_path / 'edge'), enabled=False)
    path = tmp_path / 'sim_time.yaml'
    path.write_text(yaml.safe_dump(document))
    return path


@pytest.fixture
def bag(samples_dir: Path, tmp_path: Path) -> Path:
    """Make a 2 s recording: 20 frames of the clip at 10 fps with camera info, on 2001's time."""
    path = tmp_path / 'road'
    assert make_bag('', str(path), 10.0, frames=first_frames(samples_dir / CLIP, 20),
                    start_ns=BAG_START) == 20
    return path


class Probe:
    """A node of this test: /clock, /diagnostics, detections and camera info, as received."""

    def __init__(self, context) -> None:
        self.node = Node('sim_time_probe', context=context)
        self.clock: Inbox = Inbox()
        self.diagnostics: Inbox = Inbox()
        self.detections: Inbox = Inbox()
        self.infos: Inbox = Inbox()
        self.node.create_subscription(Clock, '/clock',
                                      lambda m: self.clock(stamp_to_ns(m.clock)), 100)
        self.node.create_subscription(
            DiagnosticArray, '/diagnostics',
            lambda m: self.diagnostics((m.status[0].name, stamp_to_ns(m.header.stamp))), 100)
        self.node.create_subscription(
            Detection2DArray, '/detections',
            lambda m: self.detections(stamp_to_ns(m.header.stamp)), 100)
        self.node.create_subscription(
            CameraInfo, '/camera/camera_info',
            lambda m: self.infos(stamp_to_ns(m.header.stamp)), qos_profile_sensor_data)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self.executor.spin, daemon=True)
        self._thread.start()

    def reports_since(self, before: int, what: str, timeout: float = 20.0) -> list:
        """Wait for /diagnostics of the detector and the bridge after the first ``before``."""
        return self.diagnostics.wait_for(
            lambda got: {'detector_node', 'cloud_bridge_node'} <= {
                name.split(':')[0] for name, _ in got[before:]}, timeout, what)[before:]

    def close(self) -> None:
        self.executor.shutdown()
        self._thread.join(5.0)
        self.node.destroy_node()


@pytest.fixture
def probe(ros_context) -> Iterator[Probe]:
    """Give a probe node spinning in the test's domain."""
    node = Probe(ros_context)
    yield node
    node.close()


@pytest.fixture
def env(domain_id: int, tmp_path: Path) -> Iterator[Dict[str, str]]:
    """Give a shell environment as the README sets it up; stop the ros2 daemon after."""
    environment = ros2_env(domain_id, tmp_path / 'ros_log')
    yield environment
    stop_daemon(environment)


def on_bag_time(stamps: List[int], first: int = BAG_START) -> bool:
    """Whether every stamp lies on the bag's 2 s (plus a diagnostics period)."""
    return bool(stamps) and all(first <= s <= BAG_START + 4 * SECOND for s in stamps)


def test_launch_with_a_wildcard_section_runs_on_the_bag_clock(
        env: Dict[str, str], model_path: Path, tmp_path: Path, bag: Path,
        probe: Probe) -> None:
    command = [str(BIN / 'ros2'), 'launch', 'vehicle_detection', 'replay.launch.py',
               f'config:={sim_time_config(tmp_path)}', f'model:={model_path}']
    with Terminal(command, env) as terminal:
        terminal.wait_for('detector ready')
        terminal.wait_for('cloud bridge ready')
        assert 'Boolean value is: True' in ros2(env, 'param', 'get', '/detector_node',
                                                'use_sim_time', '--timeout', '10').stdout
        for value in ('false', 'true'):
            changed = ros2(env, 'param', 'set', '/cloud_bridge_node', 'use_sim_time', value,
                           '--timeout', '10', check=False)
            assert 'Set parameter successful' in changed.stdout, changed.stdout + changed.stderr
        before = len(probe.diagnostics.messages)  # the bridge was on the system clock a moment
        # Half speed: the bag's 2 s of time last 4 s, so that on a loaded machine the nodes'
        # /clock subscriptions are matched to the new player while the bag still plays.
        played = subprocess.run([CLI, 'bag', 'play', str(bag), '--clock', '--rate', '0.5'],
                                env=env, capture_output=True, text=True, timeout=60)
        assert played.returncode == 0 and '20/20' in played.stderr, played.stderr
        clock = probe.clock.wait_count(20)
        # Nodes on sim time report on /diagnostics at the bag's time, once per its second.
        diagnostics = probe.reports_since(before, 'diagnostics of both nodes')
        code = terminal.interrupt()
    assert_clean_stop(terminal, code, NODES[1:])
    assert on_bag_time(clock) and clock == sorted(clock), clock[:5]
    assert max(clock) >= BAG_START + 19 * SECOND // 10
    assert on_bag_time([stamp for _, stamp in diagnostics]), diagnostics


def test_run_with_a_wildcard_section_and_a_looped_offset_replay(
        env: Dict[str, str], model_path: Path, tmp_path: Path, bag: Path,
        probe: Probe) -> None:
    # Each loop plays 0.9 s of the bag's time. A sim-time timer whose period is longer than
    # the loop fires once, at the first /clock, and never again: on a backward jump rcl sets
    # its next call a whole period ahead, past the loop's end. So the nodes here report
    # every 0.25 s of the bag's time, and the test waits for reports after the clock went back.
    command = [CLI, 'run', '--replay', '--config', str(sim_time_config(tmp_path, 0.25)),
               '--model', str(model_path), '--quiet']
    with Terminal(command, env) as system:
        system.wait_for('detector ready')
        player = Terminal([CLI, 'bag', 'play', str(bag), '--clock', '--loop',
                           '--start-offset', '1'], env)
        with player:
            # Played from 1 s in, twice at least: the clock goes back to the offset.
            clock = probe.clock.wait_for(
                lambda got: any(b < a for a, b in itertools.pairwise(got)), 20, 'a second loop')
            detections = probe.detections.wait_count(5)
            looped = len(probe.diagnostics.messages)
            try:
                diagnostics = probe.reports_since(
                    looped, 'diagnostics of both nodes after the clock went back')
            except AssertionError as error:
                raise AssertionError(f'{error}; /clock {len(probe.clock.messages)}, '
                                     f'/detections {len(probe.detections.messages)}\n'
                                     f'{system.text()[-3000:]}\n{player.text()[-1000:]}'
                                     ) from None
            assert player.interrupt() == 0
        assert system.interrupt() == 0
    start = BAG_START + SECOND
    assert on_bag_time(clock, start), clock[:5]
    assert min(clock) < start + SECOND // 10  # each loop starts at the offset
    assert on_bag_time(detections, start), detections
    infos = probe.infos.messages
    assert infos and on_bag_time(infos, start)  # camera_info goes with the images
    assert on_bag_time([stamp for _, stamp in diagnostics]), diagnostics
    assert 'summary: frames=' in system.text()
