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
Health checks of a configuration, without ROS: one result per check, with a fix.

Used by ``vehicle-detection doctor``; every check catches its own failures so
that one broken part never hides the report on the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
import shutil
import threading
from typing import Any, Callable, Dict, List, Optional

import requests

from vehicle_detection.core.bridge.config import resolve_api_key
from vehicle_detection.core.camera.sources import open_source, parse_source, SourceError
from vehicle_detection.core.detection.backends.base import ModelLoadError
from vehicle_detection.core.detection.detector import Detector
from vehicle_detection.core.detection.node_config import detector_settings
from vehicle_detection.core.system.crosstalk import CROSSTALK_FIX, crowded_topic
from vehicle_detection.wire import API_KEY_HEADER, HEALTH_PATH, heartbeat_path

SOURCE_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class CheckResult:
    """One check: passed or not, what was found, and what to do about it."""

    name: str
    ok: bool
    detail: str
    fix: str = ''
    #: passed, but something will bite (shown as WARN with its fix; not a failure)
    warning: bool = False

    def line(self) -> str:
        """Return the report line."""
        label = 'FAIL' if not self.ok else 'WARN' if self.warning else 'OK  '
        text = f'{label}  {self.name}: {self.detail}'
        shown = self.fix and (not self.ok or self.warning)
        return f'{text}\n        -> {self.fix}' if shown else text


def check_model(values: Dict[str, Any]) -> CheckResult:
    """Load the model with the configured backend and run it once."""
    if not values['model_path']:
        return CheckResult('model', False, 'no model_path set',
                           'set detector_node.model_path (or --model)')
    try:
        detector = Detector(detector_settings(values))
    except ModelLoadError as error:  # the backend, the layout and the class names too
        return CheckResult('model', False, str(error),
                           'check the path, or export the model to ONNX (opset >= 11)')
    detail = f'{values["model_path"]}: {detector.describe()}'
    warnings = '; '.join(detector.warnings)
    detector.close()
    return CheckResult('model', True, detail + (f'; {warnings}' if warnings else ''))


def check_camera(values: Dict[str, Any]) -> CheckResult:
    """Open the source and read one frame, within a time limit."""
    source = str(values['source'])
    found: List[Any] = []

    def read() -> None:
        try:
            opened = open_source(parse_source(source), loop=False)
            found.append(opened.read())
            opened.close()
        except (SourceError, ValueError) as error:
            found.append(error)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(SOURCE_TIMEOUT_S)
    if not found:
        return CheckResult('camera', False, f'{source}: no frame within {SOURCE_TIMEOUT_S:.0f} s',
                           'check the cable/stream URL; a stream may need credentials')
    if isinstance(found[0], Exception) or found[0] is None:
        reason = found[0] if found[0] is not None else 'the source is empty'
        return CheckResult('camera', False, f'{source}: {reason}',
                           'fix camera_node.source (device, file, folder, URL or pipeline)')
    height, width = found[0].shape[:2]
    return CheckResult('camera', True, f'{source}: {width}x{height} frames')


def check_cloud(values: Dict[str, Any]) -> List[CheckResult]:
    """Check that the server answers and that the key belongs to this device."""
    if not values['enabled']:
        return [CheckResult('cloud', True, 'upload disabled (enabled: false)')]
    base = values['api_base_url'].rstrip('/')
    try:
        health = requests.get(base + HEALTH_PATH, timeout=5)
        reachable = CheckResult('cloud', health.ok, f'{base}: HTTP {health.status_code}',
                                'is the server running? see its log')
    except requests.RequestException as error:
        return [CheckResult('cloud', False, f'{base} unreachable: {type(error).__name__}',
                            'check cloud_bridge_node.api_base_url and the network; alerts '
                            'are kept in the outbox meanwhile')]
    try:
        key, where = resolve_api_key(values)
    except ValueError as error:
        return [reachable, CheckResult('api key', False, str(error), 'fix api_key_file')]
    if not key:
        return [reachable, CheckResult('api key', False, 'no key found',
                                       'export VD_CLOUD_API_KEY or set api_key_file; the '
                                       'operator creates one with `vehicle-detection-cloud '
                                       'add-device NAME`')]
    try:
        answer = requests.post(base + heartbeat_path(values['device_id']), json={},
                               headers={API_KEY_HEADER: key}, timeout=5)
    except requests.RequestException as error:
        return [reachable, CheckResult('api key', False, f'not checked: {error}')]
    if answer.status_code == 200:
        return [reachable, CheckResult('api key', True,
                                       f'valid for device {values["device_id"]} (from {where})')]
    fixes = {401: 'the key is unknown or revoked: ask the operator for a new one',
             403: f'the key belongs to another device than {values["device_id"]}: fix device_id'}
    return [reachable, CheckResult('api key', False, f'HTTP {answer.status_code} (from {where})',
                                   fixes.get(answer.status_code, 'see the server log'))]


def check_disk(values: Dict[str, Any]) -> CheckResult:
    """Check the free space where the outbox and snapshots live."""
    folder = Path(values['snapshot_dir'] or values['data_dir']).expanduser()
    existing = next((p for p in (folder, *folder.parents) if p.exists()), Path('/'))
    free_mb = shutil.disk_usage(existing).free / 1024 / 1024
    needed = values['max_storage_mb']
    ok = free_mb >= needed
    return CheckResult('disk', ok, f'{existing}: {free_mb:.0f} MB free, outbox may use up to '
                                   f'{needed:.0f} MB', 'free space or lower max_storage_mb')


def check_publishers(domain_id: int, publishers: Dict[str, List[str]]) -> CheckResult:
    """Warn when an input topic has more publishers than one system gives it (cross-talk)."""
    crowded = [crowded_topic(topic, names, domain_id) for topic, names in publishers.items()]
    warnings = '; '.join(filter(None, crowded))
    found = '; '.join(f'{topic}: {", ".join(names) or "no publisher"}'
                      for topic, names in publishers.items())
    return CheckResult('publishers', True, warnings or found, CROSSTALK_FIX,
                       warning=bool(warnings))


def run_checks(params: Dict[str, Dict[str, Any]],
               report: Optional[Callable[[CheckResult], None]] = None) -> List[CheckResult]:
    """Run every check on validated node parameters; report each as it completes."""
    results: List[CheckResult] = []
    checks: List[Callable[[], Any]] = [
        lambda: check_model(params['detector_node']),
        lambda: check_camera(params['camera_node']),
        lambda: check_cloud(params['cloud_bridge_node']),
        lambda: check_disk(params['cloud_bridge_node'])]
    for check in checks:
        outcome = check()
        for result in outcome if isinstance(outcome, list) else [outcome]:
            results.append(result)
            if report is not None:
                report(result)
    return results
