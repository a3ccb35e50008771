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
The ROS 2 commands users type, for real: ros2 pkg/run/launch/topic/param/service.

Each test runs the installed ``ros2`` command line (``make test`` puts it in
the venv with ../shared/ros/install-ros2-cli) against the installed package,
on its own ROS domain, with a real cloud server where alerts are involved.
"""

from __future__ import annotations

import json
from pathlib import Path
import signal
import sqlite3
import subprocess
import sys
from typing import Dict, Iterator, Optional

from cloud_helpers import add_device, CloudServer
import cv2
import pytest
from ros_cli import (
    BIN, launched_node_exits, ros2, ros2_env, stop_daemon, Terminal, wait_listed)
from vehicle_detection.core.system.bag_tools import make_bag
from waiting import wait_until
import yaml

REPO = Path(__file__).resolve().parents[1]
NODES = ('camera_node', 'detector_node', 'cloud_bridge_node')
CLIP = 'highway_bridge_jitter.mp4'
DETECTIONS_TYPE = 'vision_msgs/msg/Detection2DArray'


@pytest.fixture
def env(domain_id: int, tmp_path: Path) -> Iterator[Dict[str, str]]:
    """Give a shell environment as the README sets it up; stop the ros2 daemon after."""
    environment = ros2_env(domain_id, tmp_path / 'ros_log')
    yield environment
    stop_daemon(environment)


LINE = 'bar 0,0.5 1,0.5 towards/away'  # across the clip's road: all its traffic drives away


def user_config(tmp_path: Path, camera: Optional[dict] = None, **bridge: object) -> Path:
    """Write the shipped config.yaml with the bridge's data in ``tmp_path`` (a user's copy)."""
    config = yaml.safe_load((REPO / 'config' / 'config.yaml').read_text())
    values = config['cloud_bridge_node']['ros__parameters']
    values.update(data_dir=str(tmp_path / 'edge'), **bridge)
    config['camera_node']['ros__parameters'].update(camera or {})
    path = tmp_path / 'config.yaml'
    path.write_text(yaml.safe_dump(config))
    return path


def alerts_with_snapshots(db: Path, replay: bool = False) -> list:
    """Return (class_name, image_path) of the server's alerts whose snapshot arrived."""
    with sqlite3.connect(db) as connection:
        return connection.execute('SELECT class_name, image_path FROM alerts '
                                  'WHERE image_path IS NOT NULL AND replay = ?',
                                  (int(replay),)).fetchall()


def assert_clean_stop(terminal: Terminal, code: int, nodes: tuple) -> None:
    """Check launch and every node ended with 0 and nothing printed a traceback."""
    text = terminal.text()
    exits = launched_node_exits(text)
    assert code == 0, text[-3000:]
    assert exits is not None and len(exits) == len(nodes), text[-3000:]
    # The whole output: the exit code of a node that died, and what it and launch said.
    assert all('finished cleanly' in line for line in exits), text[-3000:]
    assert 'Traceback' not in text and 'KeyboardInterrupt' not in text, text[-3000:]


def test_executables_are_where_ros_looks(env: Dict[str, str]) -> None:
    listed = ros2(env, 'pkg', 'executables', 'vehicle_detection').stdout.split('\n')
    for node in NODES:
        assert f'vehicle_detection {node}' in listed
    assert ros2(env, 'pkg', 'prefix', 'vehicle_detection').stdout.strip() == sys.prefix
    share = ros2(env, 'pkg', 'prefix', '--share', 'vehicle_detection').stdout.strip()
    assert (Path(share) / 'launch' / 'system.launch.py').is_file()
    assert (Path(share) / 'config' / 'config.yaml').is_file()


def test_ros2_run_a_node_and_ctrl_c(env: Dict[str, str], samples_dir: Path) -> None:
    command = [str(BIN / 'ros2'), 'run', 'vehicle_detection', 'camera_node',
               '--ros-args', '-p', f'source:={samples_dir}']
    with Terminal(command, env) as terminal:
        terminal.wait_for('camera source')
        wait_listed(env, 'topic', ['/camera/image_raw', '/camera/camera_info', '/diagnostics'])
        code = terminal.interrupt()
    assert code == 0, terminal.text()
    assert 'Traceback' not in terminal.text()


def test_system_launch_end_to_end(env: Dict[str, str], samples_dir: Path, model_path: Path,
                                  tmp_path: Path) -> None:
    db, storage = tmp_path / 'cloud.db', str(tmp_path / 'images')
    key = add_device('edge-1', f'sqlite:///{db}', storage)
    server = CloudServer(f'sqlite:///{db}', storage)
    command = [str(BIN / 'ros2'), 'launch', 'vehicle_detection', 'system.launch.py',
               # The clip plays in real time (19 s): looped, it outlasts the test.
               f'config:={user_config(tmp_path, {"loop": True}, counting_lines=LINE)}',
               f'source:={samples_dir / CLIP}', f'model:={model_path}',
               f'cloud_url:={server.url}']
    try:
        with Terminal(command, dict(env, VD_CLOUD_API_KEY=key)) as terminal:
            terminal.wait_for('detector ready')
            # Traffic counts as a user reads them: the latest status at once (transient local).
            counts = json.loads(ros2(env, 'topic', 'echo', '/traffic_counts',
                                     'std_msgs/msg/String', '--once', '--field', 'data',
                                     timeout=60).stdout.strip().splitlines()[0])
            assert counts['lines'][0]['name'] == 'bar' and counts['total'], counts
            assert {row['direction'] for row in counts['total']} == {'away'}
            refused = ros2(env, 'param', 'set', '/cloud_bridge_node', 'counting_lines',
                           'bar 0,0.5', '--timeout', '10', check=False)
            assert 'expected NAME X1,Y1 X2,Y2' in refused.stdout + refused.stderr
            # The type given: echo then subscribes at once instead of asking the graph,
            # which the CLI daemon may not have discovered yet. The first message with a
            # vehicle: the clip plays in real time, and the road is empty at moments.
            echo = ros2(env, 'topic', 'echo', '/detections', DETECTIONS_TYPE, '--once',
                        '--filter', 'len(m.detections) > 0', timeout=60).stdout
            for field in ('header:', 'frame_id: camera', 'detections:', 'class_id: car',
                          'score:', 'bbox:', 'size_x:', 'id: '):
                assert field in echo, echo[:2000]

            # --timeout: the CLI daemon, started by the first command, may not have
            # discovered the node yet.
            threshold = ('/detector_node', 'confidence_threshold', '--timeout', '10')
            assert 'Double value is: 0.35' in ros2(env, 'param', 'get', *threshold).stdout
            assert 'successful' in ros2(env, 'param', 'set', *threshold, '0.4').stdout
            assert 'Double value is: 0.4' in ros2(env, 'param', 'get', *threshold).stdout
            refused = ros2(env, 'param', 'set', *threshold, '2.0', check=False)
            assert 'Setting parameter failed' in refused.stdout + refused.stderr
            assert 'Max: 1.0' in refused.stdout + refused.stderr
            assert 'Double value is: 0.4' in ros2(env, 'param', 'get', *threshold).stdout

            wait_until(lambda: len(alerts_with_snapshots(db)) >= 3, timeout=90,
                       what='three alerts with their snapshot on the server', poll=0.5)
            health = ros2(env, 'service', 'call', '/cloud_bridge_node/health_check',
                          'std_srvs/srv/Trigger').stdout
            assert 'success=True' in health and 'link_state=up' in health, health

            assert ros2(env, 'lifecycle', 'nodes').stdout.split() == ['/detector_node']
            assert ros2(env, 'lifecycle', 'get', '/detector_node').stdout.startswith('active')
            assert 'Transitioning successful' in ros2(
                env, 'lifecycle', 'set', '/detector_node', 'deactivate').stdout
            assert ros2(env, 'lifecycle', 'get', '/detector_node').stdout.startswith('inactive')
            quiet = ros2(env, 'topic', 'echo', '/detections', DETECTIONS_TYPE, '--once',
                         '--timeout', '3', check=False)
            assert 'detections:' not in quiet.stdout  # frames still come; no detections
            assert 'Transitioning successful' in ros2(
                env, 'lifecycle', 'set', '/detector_node', 'activate').stdout
            assert 'detections:' in ros2(env, 'topic', 'echo', '/detections', DETECTIONS_TYPE,
                                         '--once', timeout=60).stdout
            code = terminal.interrupt()
        assert_clean_stop(terminal, code, NODES)
    finally:
        server.stop()
    classes = {name for name, _ in alerts_with_snapshots(db)}
    assert classes <= {'car', 'truck', 'bus', 'motorcycle'}, classes
    assert all((Path(storage) / path).stat().st_size > 1000
               for _, path in alerts_with_snapshots(db))


def test_system_launch_composed_layout(env: Dict[str, str], samples_dir: Path,
                                       model_path: Path, tmp_path: Path) -> None:
    db, storage = tmp_path / 'cloud.db', str(tmp_path / 'images')
    key = add_device('edge-1', f'sqlite:///{db}', storage)
    server = CloudServer(f'sqlite:///{db}', storage)
    command = [str(BIN / 'ros2'), 'launch', 'vehicle_detection', 'system.launch.py',
               'layout:=composed', f'config:={user_config(tmp_path)}',
               f'source:={samples_dir / CLIP}', f'model:={model_path}', f'cloud_url:={server.url}']
    try:
        with Terminal(command, dict(env, VD_CLOUD_API_KEY=key)) as terminal:
            terminal.wait_for('detector ready')
            expected = [*(f'/{n}' for n in NODES), '/vehicle_detection_monitor']
            assert sorted(wait_listed(env, 'node', expected)) == sorted(expected)
            wait_until(lambda: len(alerts_with_snapshots(db)) >= 3, timeout=90,
                       what='alerts from the composed process', poll=0.5)
            code = terminal.interrupt()
        assert_clean_stop(terminal, code, ('vehicle_detection',))
        assert 'summary: frames=' in terminal.text()
    finally:
        server.stop()
    bad = ros2(env, 'launch', 'vehicle_detection', 'system.launch.py', 'layout:=threads',
               check=False)
    assert bad.returncode != 0 and "'processes', 'composed'" in bad.stdout + bad.stderr


LAUNCH_ARGUMENTS = {
    'camera.launch.py': {'config', 'namespace', 'log_level', 'source', 'fps'},
    'replay.launch.py': {'config', 'namespace', 'log_level', 'model', 'cloud_url', 'layout',
                         'replay'},
    'system.launch.py': {'config', 'namespace', 'log_level', 'source', 'fps', 'model',
                         'cloud_url', 'layout', 'replay'},
}


@pytest.mark.parametrize('launch_file', sorted(LAUNCH_ARGUMENTS))
def test_launch_files_declare_their_nodes_arguments_and_refuse_others(
        env: Dict[str, str], launch_file: str) -> None:
    shown = ros2(env, 'launch', 'vehicle_detection', launch_file, '--show-args').stdout
    declared = {line.strip().strip("':") for line in shown.splitlines()
                if line.startswith("    '")}
    assert declared == LAUNCH_ARGUMENTS[launch_file], shown
    # A mistyped argument stops the launch before any node starts, naming it.
    refused = ros2(env, 'launch', 'vehicle_detection', launch_file, 'sorce:=/dev/video2',
                   'rate:=5', check=False, timeout=30)
    text = refused.stdout + refused.stderr
    assert refused.returncode != 0, text
    assert f"{launch_file} has no argument 'sorce'" in text and "'rate'" in text, text
    assert 'process started' not in text, text
    if 'source' in LAUNCH_ARGUMENTS[launch_file]:
        assert "'sorce' (did you mean 'source'?)" in text, text


def test_camera_launch_opens_the_source_given(env: Dict[str, str], samples_dir: Path) -> None:
    command = [str(BIN / 'ros2'), 'launch', 'vehicle_detection', 'camera.launch.py',
               f'source:={samples_dir}', 'fps:=2.5']
    with Terminal(command, env) as terminal:
        terminal.wait_for('camera source')
        # Ctrl-C as a user would, once the node is up: a SIGINT while launch still handles
        # its start-up events ends launch with 1 ('Task was destroyed but it is pending!',
        # launch's own race, once in a CI run), though the node stopped cleanly.
        wait_listed(env, 'node', ['/camera_node'])
        code = terminal.interrupt()
    assert f"camera source '{samples_dir}', fps cap 2.5" in terminal.text(), terminal.text()
    assert_clean_stop(terminal, code, ('camera_node',))


def first_frames(video: Path, count: int) -> Iterator:
    """Yield the first ``count`` frames of ``video``."""
    capture = cv2.VideoCapture(str(video))
    try:
        for _ in range(count):
            ok, frame = capture.read()
            if not ok:
                return
            yield frame
    finally:
        capture.release()


def test_replay_launch_with_a_played_bag(env: Dict[str, str], samples_dir: Path,
                                         model_path: Path, tmp_path: Path) -> None:
    bag = tmp_path / 'road'
    assert make_bag('', str(bag), 10.0, frames=first_frames(samples_dir / CLIP, 120)) == 120
    db, storage = tmp_path / 'cloud.db', str(tmp_path / 'images')
    key = add_device('edge-1', f'sqlite:///{db}', storage)
    server = CloudServer(f'sqlite:///{db}', storage)
    command = [str(BIN / 'ros2'), 'launch', 'vehicle_detection', 'replay.launch.py',
               f'config:={user_config(tmp_path)}', f'model:={model_path}',
               f'cloud_url:={server.url}']
    try:
        with Terminal(command, dict(env, VD_CLOUD_API_KEY=key)) as terminal:
            terminal.wait_for('detector ready')
            played = subprocess.run([str(BIN / 'vehicle-detection'), 'bag', 'play', str(bag)],
                                    env=env, capture_output=True, text=True, timeout=120)
            assert played.returncode == 0 and '120/120' in played.stderr, played.stderr
            wait_until(lambda: len(alerts_with_snapshots(db, replay=True)) >= 3, timeout=60,
                       what='alerts of the replay on the server, marked', poll=0.5)
            assert not alerts_with_snapshots(db)  # none passes for live traffic
            code = terminal.interrupt()
        assert_clean_stop(terminal, code, NODES[1:])
    finally:
        server.stop()


@pytest.mark.parametrize('sig', [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_run_cleanly_with_its_summary(env: Dict[str, str], samples_dir: Path,
                                                     model_path: Path, tmp_path: Path,
                                                     sig: int) -> None:
    command = [str(BIN / 'vehicle-detection'), 'run', '--config', str(user_config(tmp_path)),
               '--source', str(samples_dir / CLIP), '--model', str(model_path),
               '--cloud-url', 'http://127.0.0.1:9', '--quiet']
    with Terminal(command, env) as terminal:
        terminal.wait_for('detector ready')
        code = terminal.interrupt(sig)
    text = terminal.text()
    assert code == 0, text[-3000:]
    assert text.strip().splitlines()[-1].startswith('summary: frames='), text[-3000:]
    assert 'Traceback' not in text


@pytest.mark.parametrize('node', NODES)
def test_sigterm_stops_each_node_cleanly(env: Dict[str, str], samples_dir: Path,
                                         model_path: Path, tmp_path: Path, node: str) -> None:
    params = {'camera_node': f'source:={samples_dir / CLIP}',
              'detector_node': f'model_path:={model_path}',
              'cloud_bridge_node': f'data_dir:={tmp_path / "edge"}'}
    ready = {'camera_node': 'camera source', 'detector_node': 'detector ready',
             'cloud_bridge_node': 'cloud bridge ready'}
    command = [str(Path(sys.prefix) / 'lib' / 'vehicle_detection' / node),
               '--ros-args', '-p', params[node]]
    with Terminal(command, env) as terminal:
        terminal.wait_for(ready[node])
        code = terminal.interrupt(signal.SIGTERM)
    assert code == 0, terminal.text()[-3000:]
    assert 'Traceback' not in terminal.text()


def test_detector_without_its_model_stays_inactive_until_fixed(env: Dict[str, str],
                                                               model_path: Path,
                                                               tmp_path: Path) -> None:
    missing = tmp_path / 'missing.onnx'
    command = [str(BIN / 'ros2'), 'run', 'vehicle_detection', 'detector_node',
               '--ros-args', '-p', f'model_path:={missing}']
    with Terminal(command, env) as terminal:
        terminal.wait_for(f'cannot activate: model file {missing} does not exist')
        get = ('lifecycle', 'get', '/detector_node')
        state = []  # polled like wait_listed: the CLI daemon discovers the node over a moment
        wait_until(lambda: state.append(ros2(env, *get, check=False)) or state[-1].returncode == 0,
                   timeout=20, what='ros2 lifecycle get to find the node', poll=0.5)
        assert state[-1].stdout.startswith('inactive'), state[-1].stdout
        status = ros2(env, 'topic', 'echo', '/diagnostics', 'diagnostic_msgs/msg/DiagnosticArray',
                      '--once', timeout=30).stdout
        # ERROR, naming the file (the echo may fold the long message: one word each)
        assert 'level: "\\x02"' in status and 'activation failed' in status, status
        assert 'missing.onnx' in status, status
        assert 'successful' in ros2(env, 'param', 'set', '/detector_node', 'model_path',
                                    str(model_path)).stdout
        assert 'Transitioning successful' in ros2(env, 'lifecycle', 'set', '/detector_node',
                                                  'activate').stdout
        assert ros2(env, *get).stdout.startswith('active')
        terminal.wait_for('detector ready')
        code = terminal.interrupt()
    assert code == 0, terminal.text()[-3000:]
    assert terminal.text().count('cannot activate') == 1, terminal.text()[-3000:]
