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
The systemd units in deploy/: systemd-analyze accepts them, and their commands run.

No systemd runs here: each unit's ExecStart is expanded as systemd expands
it (Environment=, EnvironmentFile=, ``${VAR}``, ``$VAR``, ``%d``), with the
installed paths moved into a temporary folder, and started; the stop is what
the unit asks of systemd (KillSignal to the main process alone with
KillMode=mixed, then SIGKILL to whatever is left).
"""

from __future__ import annotations

import os
from pathlib import Path
import re
import shlex
import shutil
import signal
import subprocess
import sys
from typing import Dict, Iterator, List

from cloud_helpers import free_port, require_tool, wait_http
import psutil
import pytest
from ros_cli import launched_node_exits, ros2_env, stop_daemon, Terminal
import yaml

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / 'deploy'
CLOUD_UNIT, EDGE_UNIT = 'vehicle-detection-cloud.service', 'vehicle-detection-edge.service'
VENV = '/opt/vehicle-detection/.venv'  # where the units expect the installation
CLIP = 'highway_bridge_jitter.mp4'


def unit_text(name: str, moves: Dict[str, str]) -> str:
    """Return a unit with the installation in this venv and each path of ``moves`` moved."""
    text = (DEPLOY / name).read_text().replace(VENV, sys.prefix)
    for old, new in moves.items():
        text = text.replace(old, new)
    return text


def directives(text: str, commented: bool = False) -> Dict[str, List[str]]:
    """
    Return each directive's values in order (continued lines joined).

    ``commented``: read the directives commented out with a leading ``#``
    (an alternative the unit offers) instead of the active ones.
    """
    found: Dict[str, List[str]] = {}
    lines = iter(text.splitlines())
    for line in lines:
        if commented:
            if not re.match(r'#[A-Z]\w*=', line):
                continue
            line = line[1:]
        elif line.startswith(('#', ';', '[')) or '=' not in line:
            continue
        while line.endswith('\\'):
            line = line[:-1] + ' ' + next(lines).lstrip('#').strip()
        key, value = line.split('=', 1)
        found.setdefault(key.strip(), []).append(value.strip())
    return found


def service_environment(unit: Dict[str, List[str]]) -> Dict[str, str]:
    """Return Environment= then EnvironmentFile= (which overrides), as systemd reads them."""
    environment: Dict[str, str] = {}
    for value in unit.get('Environment', []):
        for assignment in shlex.split(value):
            name, _, setting = assignment.partition('=')
            environment[name] = setting
    for value in unit.get('EnvironmentFile', []):
        path = Path(value.lstrip('-'))
        if not path.exists():
            assert value.startswith('-'), f'EnvironmentFile {path} is missing'
            continue
        for line in path.read_text().splitlines():
            if line.strip() and not line.lstrip().startswith(('#', ';')):
                name, _, setting = line.partition('=')
                environment[name.strip()] = setting.strip()
    return environment


def exec_start(command: str, environment: Dict[str, str], specifiers: Dict[str, str]
               ) -> List[str]:
    """Expand an ExecStart line: ``$VAR`` splits into words, ``${VAR}`` is one word."""
    words: List[str] = []
    for word in shlex.split(command):
        for specifier, value in specifiers.items():
            word = word.replace(specifier, value)
        if re.fullmatch(r'\$\w+', word):
            words += environment.get(word[1:], '').split()
        else:
            words.append(re.sub(r'\$\{(\w+)\}', lambda m: environment.get(m[1], ''), word))
    return words


def remaining_in_session(session: int, grace: float = 0.0) -> List[psutil.Process]:
    """
    Return the live processes of a session (the 'control group' of a test service).

    ``grace``: seconds to let exiting processes end (a worker's resource
    tracker, for one, sees its master gone a moment later).
    """
    left = []
    for process in psutil.process_iter():
        try:
            if os.getsid(process.pid) == session and process.status() != psutil.STATUS_ZOMBIE:
                left.append(process)
        except (OSError, psutil.Error):
            pass  # gone meanwhile
    if grace and left:  # a process that ended meanwhile may be a zombie: that ran nothing
        left = [process for process in psutil.wait_procs(left, timeout=grace)[1]
                if _running(process)]
    return left


def _running(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False  # gone


def test_units_pass_systemd_analyze_and_keep_their_promises(tmp_path: Path) -> None:
    analyze = shutil.which('systemd-analyze')
    require_tool(analyze is not None, 'systemd-analyze is not installed (apt-get install systemd)')
    assert analyze is not None
    exposure = {CLOUD_UNIT: 20, EDGE_UNIT: 40}  # systemd-analyze security, tenths: 2.0, 4.0
    for name in (CLOUD_UNIT, EDGE_UNIT):
        path = tmp_path / name  # ExecStart must exist: this venv's commands
        path.write_text(unit_text(name, {}))
        verify = subprocess.run([analyze, 'verify', str(path)], capture_output=True,
                                text=True, timeout=60)
        assert verify.returncode == 0 and not (verify.stdout + verify.stderr).strip(), \
            verify.stdout + verify.stderr  # an unknown or misspelt option is only a warning
        security = subprocess.run([analyze, 'security', '--offline=true',
                                   f'--threshold={exposure[name]}', str(path)],
                                  capture_output=True, text=True, timeout=60)
        assert security.returncode == 0, security.stdout[-1500:] + security.stderr
        unit = directives(path.read_text())
        assert unit['User'][0] not in ('root', '0') and unit['Restart'] == ['on-failure']
        for option in ('NoNewPrivileges', 'ProtectHome', 'PrivateTmp'):
            assert unit[option] == ['yes'], option
        assert unit['ProtectSystem'] == ['strict'] and unit['StateDirectory']
    edge = (DEPLOY / EDGE_UNIT).read_text()
    unit = directives(edge)
    assert unit['KillMode'] == ['mixed'] and unit['KillSignal'] == ['SIGINT']
    assert unit['LoadCredential'] == ['api-key:/etc/vehicle-detection/api-key']
    assert 'VD_CLOUD_API_KEY' not in edge and 'VD_CLOUD_API_KEY' not in (
        DEPLOY / 'edge.env').read_text().replace('#', '')


def test_the_server_unit_runs_and_stops_as_systemd_would(tmp_path: Path) -> None:
    state, etc = tmp_path / 'state', tmp_path / 'etc'
    etc.mkdir()
    port = free_port()
    (etc / 'cloud.env').write_text((DEPLOY / 'cloud.env').read_text().replace(
        '--port 8000', f'--port {port}'))
    unit = directives(unit_text(CLOUD_UNIT, {'/var/lib/vehicle-detection-cloud': str(state),
                                             '/etc/vehicle-detection': str(etc)}))
    environment = service_environment(unit)
    command = exec_start(unit['ExecStart'][0], environment, {})
    assert '--forwarded-allow-ips' in command and '--workers' in command, command
    state.mkdir()  # StateDirectory=
    log = tmp_path / 'server.log'
    server = subprocess.Popen(command, cwd=unit['WorkingDirectory'][0],
                              env=dict(os.environ, **environment), start_new_session=True,
                              stdin=subprocess.DEVNULL, stdout=log.open('wb'),
                              stderr=subprocess.STDOUT)
    try:
        wait_http(f'http://127.0.0.1:{port}/api/v1/health', process=server)
        assert (state / 'cloud.db').exists() and (state / 'images').is_dir()
        assert len(remaining_in_session(server.pid)) >= 4  # master, 3 workers (cloud.env)
        server.send_signal(getattr(signal, unit.get('KillSignal', ['SIGTERM'])[0]))
        code = server.wait(timeout=float(unit['TimeoutStopSec'][0]))
        left = remaining_in_session(server.pid, grace=1.0)  # systemd's SIGKILL finds these
    finally:
        for process in remaining_in_session(server.pid):
            process.kill()
        if server.poll() is None:
            server.kill()
            server.wait()
    assert code == 0, log.read_text()[-2000:]
    assert not left, [(process.name(), process.ppid()) for process in left]
    assert 'Traceback' not in log.read_text()


@pytest.fixture
def edge_config(tmp_path: Path, samples_dir: Path, model_path: Path) -> Path:
    """Write /etc/vehicle-detection as an installer would: config.yaml and the key."""
    etc = tmp_path / 'etc'
    etc.mkdir()
    config = yaml.safe_load((REPO / 'config' / 'config.yaml').read_text())
    config['camera_node']['ros__parameters']['source'] = str(samples_dir / CLIP)
    config['detector_node']['ros__parameters']['model_path'] = str(model_path)
    bridge = config['cloud_bridge_node']['ros__parameters']
    bridge['api_base_url'] = 'http://127.0.0.1:9'  # nothing there: events wait in the outbox
    bridge['api_key_file'] = str(tmp_path / 'credentials' / 'api-key')  # for ros2 launch
    (etc / 'config.yaml').write_text(yaml.safe_dump(config))
    return etc


@pytest.fixture
def edge_env(domain_id: int, tmp_path: Path) -> Iterator[Dict[str, str]]:
    """Give the environment of an installed system (ROS on PATH); stop the ros2 daemon after."""
    environment = ros2_env(domain_id, tmp_path / 'ros_log')
    yield environment
    stop_daemon(environment)


@pytest.mark.parametrize('layout', ['vehicle-detection run', 'ros2 launch'])
def test_the_edge_unit_stops_every_node_cleanly(edge_config: Path, edge_env: Dict[str, str],
                                                tmp_path: Path, layout: str) -> None:
    state, logs, credentials = tmp_path / 'state', tmp_path / 'log', tmp_path / 'credentials'
    for folder in (state, logs, credentials):  # StateDirectory=, LogsDirectory=, LoadCredential=
        folder.mkdir()
    (credentials / 'api-key').write_text('vd_test_key\n')
    text = unit_text(EDGE_UNIT, {'/var/lib/vehicle-detection-edge': str(state),
                                 '/var/log/vehicle-detection-edge': str(logs),
                                 '/etc/vehicle-detection': str(edge_config),
                                 '/usr/bin/ros2': str(Path(sys.prefix) / 'bin' / 'ros2')})
    unit = directives(text)
    line = unit['ExecStart'][0] if layout == 'vehicle-detection run' else \
        directives(text, commented=True)['ExecStart'][0]
    environment = dict(edge_env, **service_environment(unit))
    command = exec_start(line, environment, {'%d': str(credentials)})
    with Terminal(command, environment) as terminal:  # its own session: the service's cgroup
        try:
            terminal.wait_for('detector ready')
            terminal.wait_for(f'key from {credentials / "api-key"}')
            assert unit['KillMode'] == ['mixed']
            terminal.process.send_signal(getattr(signal, unit['KillSignal'][0]))  # main alone
            code = terminal.process.wait(timeout=float(unit['TimeoutStopSec'][0]))
            left = remaining_in_session(terminal.process.pid, grace=1.0)  # for the SIGKILL
            terminal.output.wait_closed()
        finally:  # what systemd's SIGKILL would do, also when the main process is gone
            for process in remaining_in_session(terminal.process.pid):
                process.kill()
    text = terminal.text()
    assert code == 0, text[-3000:]
    assert not left, [process.cmdline() for process in left]
    assert 'Traceback' not in text and 'KeyboardInterrupt' not in text, text[-3000:]
    if layout == 'ros2 launch':
        exits = launched_node_exits(text)
        assert exits is not None and len(exits) == 3, text[-3000:]
        assert all('finished cleanly' in exit_line for exit_line in exits), exits
        assert 'escalating' not in text  # every node stopped on its SIGINT, none on a timer
    else:
        assert text.strip().splitlines()[-1].startswith('summary: frames='), text[-3000:]
        assert (state / 'outbox').is_dir()
