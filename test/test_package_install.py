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

"""The installed package: ament index, share folder, console scripts, package data."""

from __future__ import annotations

from pathlib import Path
import subprocess
import sys

from ament_index_python.packages import get_package_share_directory

REPO = Path(__file__).resolve().parents[1]


def test_share_folder_found_through_ament_index() -> None:
    share = Path(get_package_share_directory('vehicle_detection'))
    assert (share / 'package.xml').read_text() == (REPO / 'package.xml').read_text()
    assert (share / 'config' / 'config.yaml').read_text() == (
        REPO / 'config' / 'config.yaml').read_text()
    installed = {p.name for p in (share / 'launch').glob('*.launch.py')}
    assert installed and installed == {p.name for p in (REPO / 'launch').glob('*.launch.py')}


def test_console_scripts_installed() -> None:
    bin_dir = Path(sys.prefix) / 'bin'
    for script in ('camera_node', 'detector_node', 'cloud_bridge_node', 'vehicle-detection'):
        assert (bin_dir / script).exists(), f'{script} missing: run make test'
    result = subprocess.run([str(bin_dir / 'vehicle-detection'), '--help'],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and 'run' in result.stdout


def test_fastdds_profile_is_package_data() -> None:
    result = subprocess.run(
        [sys.executable, '-c', 'from vehicle_detection.ros import transport; '
         'print(transport.PROFILE.is_file(), transport.PROFILE)'],
        capture_output=True, text=True, timeout=60, cwd='/')
    assert result.stdout.startswith('True') and 'site-packages' in result.stdout
