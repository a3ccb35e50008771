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

"""The replay mark: who sets it (``run --replay``, ``--live``, ``--set``) and what it sends."""

from __future__ import annotations

import argparse
from pathlib import Path
import subprocess
import sys
import uuid

import pytest

from vehicle_detection.cli import run
from vehicle_detection.core.system.system_config import system_parameters
from vehicle_detection.wire import Alert, CountRecord

CONFIG = str(Path(__file__).resolve().parents[1] / 'config' / 'config.yaml')


def bridge_replay(*argv: str) -> bool:
    parser = argparse.ArgumentParser()
    run.add_arguments(parser)
    args = parser.parse_args(list(argv))
    params = system_parameters(CONFIG, run.replay_overrides(args))
    return params['cloud_bridge_node']['replay']


def test_run_replay_marks_unless_the_user_says_otherwise() -> None:
    assert bridge_replay() is False  # a camera: live
    assert bridge_replay('--replay') is True
    assert bridge_replay('--replay', '--set', 'cloud_bridge_node.replay=false') is False
    assert bridge_replay('--replay', '--live') is False
    assert bridge_replay('--replay', '--live', '--set', 'cloud_bridge_node.replay=true') is False


def test_live_without_replay_is_refused() -> None:
    result = subprocess.run([str(Path(sys.prefix) / 'bin' / 'vehicle-detection'), 'run',
                             '--live'], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and '--live goes with --replay' in result.stderr


def test_the_mark_is_sent_only_on_replays() -> None:
    alert = Alert(str(uuid.uuid4()), 'edge-1', 'cam0', '2026-04-07T08:00:00.000000Z', 1, 'car',
                  0.9, (1.0, 2.0, 3.0, 4.0), 10, 10, replay=True)
    assert alert.to_json()['replay'] is True
    record = CountRecord(str(uuid.uuid4()), 'edge-1', 'cam0', '2026-04-07T08:00:00Z', 60, ())
    assert 'replay' not in record.to_json()
    with pytest.raises(ValueError, match='replay must be true or false'):
        CountRecord(str(uuid.uuid4()), 'edge-1', 'cam0', '2026-04-07T08:00:00Z', 60, (),
                    'yes')  # type: ignore[arg-type]
