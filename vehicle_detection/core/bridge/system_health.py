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

"""CPU, memory, temperature and, where readable, GPU load of this box for heartbeats."""

from __future__ import annotations

from pathlib import Path
import shutil
import subprocess
from typing import Any, Dict, Optional

import psutil

# Jetson boards expose the GPU load in per mille here.
JETSON_GPU_LOAD = ('/sys/devices/gpu.0/load', '/sys/devices/platform/gpu.0/load',
                   '/sys/devices/platform/17000000.ga10b/load')


def gpu_percent() -> Optional[float]:
    """Return the GPU load in percent (Jetson sysfs or nvidia-smi), None when unreadable."""
    for path in JETSON_GPU_LOAD:
        try:
            return int(Path(path).read_text().strip()) / 10.0
        except (OSError, ValueError):
            continue
    if shutil.which('nvidia-smi'):
        try:
            output = subprocess.run(
                ['nvidia-smi', '--query-gpu=utilization.gpu', '--format=csv,noheader,nounits'],
                capture_output=True, text=True, timeout=2, check=True).stdout
            return float(output.split()[0])
        except (OSError, subprocess.SubprocessError, ValueError, IndexError):
            return None
    return None


def system_figures() -> Dict[str, Any]:
    """Return CPU and memory percent, the hottest temperature and the GPU load if known."""
    figures: Dict[str, Any] = {'cpu_percent': psutil.cpu_percent(),
                               'memory_percent': psutil.virtual_memory().percent}
    sensors: Dict[str, Any] = getattr(psutil, 'sensors_temperatures', dict)()
    readings = [t.current for group in sensors.values() for t in group]
    if readings:
        figures['temperature_c'] = max(readings)
    gpu = gpu_percent()
    if gpu is not None:
        figures['gpu_percent'] = gpu
    return figures
