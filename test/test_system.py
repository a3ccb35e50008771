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

"""The system as users run it: shared parameter building, launch files, runner, demo."""

from __future__ import annotations

import os
from pathlib import Path
import sqlite3
import subprocess
import sys

from cloud_helpers import free_port
import pytest

from vehicle_detection.core.system.config_file import ConfigError
from vehicle_detection.core.system.system_config import NODE_SPECS, system_parameters
from waiting import wait_until, Watched

REPO = Path(__file__).resolve().parents[1]
CONFIG = str(REPO / 'config' / 'config.yaml')
CLI = str(Path(sys.prefix) / 'bin' / 'vehicle-detection')
CLIP = 'highway_bridge_jitter.mp4'


def test_config_file_is_the_one_the_specs_generate() -> None:
    from vehicle_detection.core.system.config_render import render_config

    assert Path(CONFIG).read_text() == render_config(NODE_SPECS), (
        'config/config.yaml differs from the parameter specs: regenerate it with '
        '`python -m vehicle_detection.core.system.config_render > config/config.yaml`')


def test_config_file_lists_every_parameter_with_a_comment() -> None:
    text = Path(CONFIG).read_text()
    for node, specs in NODE_SPECS.items():
        assert f'\n{node}:\n  ros__parameters:' in text
        for spec in specs:
            line = f'    {spec.name}: '
            assert line in text, f'{node}.{spec.name} missing from config.yaml'
            before = text[:text.index(line, text.index(f'\n{node}:'))].rstrip().splitlines()[-1]
            assert before.strip().startswith('#'), f'{node}.{spec.name} has no comment'
    assert 'vdk_' not in text and '    api_key:' not in text  # no secret, no key parameter


def test_system_parameters_apply_file_overrides_and_shortcuts(tmp_path: Path) -> None:
    params = system_parameters(CONFIG, ['detector_node.confidence_threshold=0.5'],
                               source='/data/frames', model='/m.onnx',
                               cloud_url='https://cloud.example')
    assert set(params) == set(NODE_SPECS)
    assert params['camera_node']['source'] == '/data/frames'
    assert params['detector_node']['model_path'] == '/m.onnx'
    assert params['detector_node']['confidence_threshold'] == 0.5
    assert params['cloud_bridge_node']['api_base_url'] == 'https://cloud.example'
    replay = system_parameters(CONFIG, nodes=('detector_node', 'cloud_bridge_node'))
    assert set(replay) == {'detector_node', 'cloud_bridge_node'}
    with pytest.raises(ConfigError, match=r'cloud_bridge_node.*api_base_url'):
        system_parameters(CONFIG, cloud_url='ftp://nope')
    with pytest.raises(ConfigError, match='confidence_threshold'):
        system_parameters(CONFIG, ['detector_node.confidence_threshold=2.0'])


def test_demo_reports_vehicles_to_the_real_server(samples_dir: Path, model_path: Path,
                                                  tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != 'VD_CLOUD_API_KEY'}
    result = subprocess.run(
        [CLI, 'demo', '--config', CONFIG, '--source', str(samples_dir), '--model',
         str(model_path), '--set', 'camera_node.loop=true', '--set', 'camera_node.fps=4.0',
         '--set', 'cloud_bridge_node.min_track_hits=2', '--duration', '14', '--quiet',
         '--port', str(free_port()), '--data', str(tmp_path / 'var')],
        capture_output=True, text=True, timeout=180, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = result.stdout.strip().splitlines()[-2]
    assert summary.startswith('summary:') and 'pending=0' in summary, result.stdout[-2000:]
    assert 'Traceback' not in result.stderr
    rows = sqlite3.connect(tmp_path / 'var' / 'cloud.db').execute(
        'SELECT class_name, image_path FROM alerts').fetchall()
    assert rows, summary
    assert all(path for _, path in rows)  # every alert with its snapshot
    assert {name for name, _ in rows} <= {'car', 'truck', 'bus', 'motorcycle', 'bicycle'}
    for _, path in rows:
        assert (tmp_path / 'var' / 'images' / path).stat().st_size > 1000


def test_demo_stops_when_its_port_is_taken_or_its_server_dies(
        samples_dir: Path, model_path: Path, tmp_path: Path) -> None:
    from cloud_helpers import CloudServer

    env = {k: v for k, v in os.environ.items() if k != 'VD_CLOUD_API_KEY'}

    def demo(port: int, data: Path) -> subprocess.CompletedProcess:
        return subprocess.run(
            [CLI, 'demo', '--config', CONFIG, '--source', str(samples_dir), '--model',
             str(model_path), '--duration', '5', '--quiet', '--port', str(port), '--data',
             str(data)], capture_output=True, text=True, timeout=120, env=env)

    # Another server on the port answers /health like the demo's own would.
    other = CloudServer(f'sqlite:///{tmp_path}/other.db', str(tmp_path / 'other'))
    try:
        taken = demo(other.port, tmp_path / 'var')
    finally:
        other.stop()
    assert taken.returncode == 1, taken.stdout + taken.stderr
    assert f'error: port {other.port} on 127.0.0.1 is taken' in taken.stderr, taken.stderr
    assert 'make run PORT=8100' in taken.stderr
    assert 'dashboard:' not in taken.stdout and 'summary:' not in taken.stdout, taken.stdout
    # A server that cannot start: the reason comes from the end of its log.
    broken = tmp_path / 'broken'
    (broken / 'cloud.db').mkdir(parents=True)  # a folder where the database should be
    died = demo(free_port(), broken)
    assert died.returncode == 1, died.stdout + died.stderr
    assert 'error: the cloud server exited at its start' in died.stderr, died.stderr
    # serve's start-up check names the database and the fix (vehicle-detection-cloud check)
    assert 'FAIL  database: cannot use sqlite:' in died.stderr and 'fix: ' in died.stderr, \
        died.stderr
    assert 'dashboard:' not in died.stdout


def test_make_run_passes_port_to_the_demo() -> None:
    dry = subprocess.run(['make', '-n', '-C', str(REPO), 'run', 'PORT=8100'],
                         capture_output=True, text=True, timeout=60)
    demo = [line for line in dry.stdout.splitlines() if 'vehicle-detection demo' in line]
    assert demo and '--port 8100' in demo[0], dry.stdout + dry.stderr


def test_run_prints_the_counts_per_line_and_direction(samples_dir: Path, model_path: Path,
                                                      tmp_path: Path) -> None:
    result = subprocess.run(
        [CLI, 'run', '--config', CONFIG, '--source', str(samples_dir / CLIP), '--model',
         str(model_path), '--cloud-url', f'http://127.0.0.1:{free_port()}', '--quiet',
         '--set', f'cloud_bridge_node.data_dir={tmp_path / "edge"}',
         '--set', 'cloud_bridge_node.counting_lines=bar 0,0.5 1,0.5 towards/away',
         '--duration', '10'], capture_output=True, text=True, timeout=120,
        env=dict(os.environ, VD_CLOUD_API_KEY='vdk_unused'))
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    assert lines[-1].startswith('summary: frames=') and 'count_records_this_run=' in lines[-1]
    table = lines[lines.index('traffic counts of this run:') + 1:-1]
    assert table[0].split() == ['line', 'direction', 'class', 'count'], lines
    by_class = [row.split() for row in table[1:] if row.split()[2] != 'all']
    total = [row.split() for row in table[1:] if row.split()[2] == 'all']
    # The clip's traffic drives away; its first cars cross the middle within seconds.
    assert total and total[0][:2] == ['bar', 'away'] and int(total[0][3]) >= 1, table
    assert sum(int(row[3]) for row in by_class) == int(total[0][3]), table


def test_runner_reports_faults_without_crashing(tmp_path: Path) -> None:
    env = dict(os.environ, VD_CLOUD_API_KEY='vdk_unused')
    result = subprocess.run(
        [CLI, 'run', '--config', CONFIG, '--source', str(tmp_path / 'no-camera'),
         '--model', str(tmp_path / 'no-model.onnx'),
         '--cloud-url', f'http://127.0.0.1:{free_port()}',
         '--set', f'cloud_bridge_node.data_dir={tmp_path / "edge"}',
         '--set', 'cloud_bridge_node.health_interval=0.5', '--duration', '6', '--quiet'],
        capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'Traceback' not in result.stderr
    assert 'no-camera' in result.stderr  # the camera says what is wrong
    # The runner says why the detector is not active; the node says it once, not every 5 s.
    missing = tmp_path / 'no-model.onnx'
    assert (f'detector_node is not active: model file {missing} does not exist; trying again '
            'every 5 s') in result.stderr, result.stderr[-3000:]
    assert result.stderr.count(f'cannot activate: model file {missing}') == 1, result.stderr
    assert result.stdout.strip().splitlines()[-1].startswith('summary: frames=0')


def test_doctor_on_a_good_and_a_broken_configuration(samples_dir: Path, model_path: Path,
                                                     tmp_path: Path) -> None:
    from cloud_helpers import add_device, CloudServer

    db, storage = f'sqlite:///{tmp_path}/cloud.db', str(tmp_path / 'images')
    key = add_device('edge-1', db, storage)
    server = CloudServer(db, storage)
    common = [CLI, 'doctor', '--config', CONFIG, '--cloud-url', server.url,
              '--set', f'cloud_bridge_node.data_dir={tmp_path / "edge"}']
    try:
        good = subprocess.run([*common, '--source', str(samples_dir), '--model',
                               str(model_path)], capture_output=True, text=True, timeout=120,
                              env=dict(os.environ, VD_CLOUD_API_KEY=key))
        broken = subprocess.run([*common, '--source', str(tmp_path / 'nothing'), '--model',
                                 str(tmp_path / 'none.onnx')], capture_output=True, text=True,
                                timeout=120, env=dict(os.environ, VD_CLOUD_API_KEY='vdk_bad'))
    finally:
        server.stop()
    assert good.returncode == 0, good.stdout
    for name in ('model', 'camera', 'cloud', 'api key', 'disk'):
        assert f'OK    {name}:' in good.stdout, good.stdout
    assert broken.returncode == 1
    for name in ('model', 'camera', 'api key'):
        assert f'FAIL  {name}:' in broken.stdout, broken.stdout
    assert 'OK    cloud:' in broken.stdout and '->' in broken.stdout
    assert broken.stdout.strip().endswith('failed: model, camera, api key')


def test_runner_recovers_when_the_faults_are_removed(samples_dir: Path, model_path: Path,
                                                     tmp_path: Path) -> None:
    import shutil

    from cloud_helpers import add_device, CloudServer

    db, storage = f'sqlite:///{tmp_path}/cloud.db', str(tmp_path / 'images')
    key = add_device('edge-1', db, storage)
    port = free_port()
    camera, model = tmp_path / 'camera', tmp_path / 'model.onnx'
    runner = Watched(
        [CLI, 'run', '--config', CONFIG, '--source', str(camera), '--model', str(model),
         '--cloud-url', f'http://127.0.0.1:{port}', '--quiet',
         '--set', 'camera_node.loop=true', '--set', 'camera_node.fps=4.0',
         '--set', 'camera_node.reconnect_max=1.0',
         '--set', f'cloud_bridge_node.data_dir={tmp_path / "edge"}',
         '--set', 'cloud_bridge_node.health_interval=0.5',
         '--set', 'cloud_bridge_node.upload_interval=0.5',
         '--set', 'cloud_bridge_node.min_track_hits=2'],
        dict(os.environ, VD_CLOUD_API_KEY=key))
    server = None
    try:
        runner.err.wait_for('camera')  # each fault is reported...
        runner.err.wait_for('model.onnx')
        shutil.copytree(samples_dir, camera)  # ...then removed, one by one
        shutil.copy(model_path, model)
        runner.err.wait_for('detector ready', timeout=30)
        server = CloudServer(db, storage, port=port)
        wait_until(lambda: sqlite3.connect(tmp_path / 'cloud.db').execute(
            'SELECT COUNT(*) FROM alerts WHERE image_path IS NOT NULL').fetchone()[0] > 0,
            timeout=60, what='an alert with its snapshot on the server', poll=0.2)
        out = runner.interrupt(30)
    finally:
        runner.close()
        if server is not None:
            server.stop()
    assert runner.returncode == 0
    assert 'Traceback' not in runner.stderr()
    assert out.strip().splitlines()[-1].startswith('summary:')
