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

"""The cloud bridge node's parameters and the core objects built from them."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Any, Mapping, Optional, Tuple
from urllib.parse import urlsplit

from vehicle_detection.core.params import IMAGE_RELIABILITY, ParamSpec
from vehicle_detection.wire import is_valid_name

API_KEY_ENV = 'VD_CLOUD_API_KEY'


def _name(value: Any) -> Optional[str]:
    return None if is_valid_name(str(value)) else 'letters, digits, "_", "." or "-" only'


def _url(value: Any) -> Optional[str]:
    return None if str(value).startswith(('http://', 'https://')) else \
        'must start with http:// or https://'


BRIDGE_PARAMS = (
    ParamSpec('enabled', True, 'Upload to the cloud; events are recorded locally either way.'),
    ParamSpec('api_base_url', 'http://127.0.0.1:8000', 'Cloud server URL (https:// '
              'unless the server is on this machine).', check=_url),
    ParamSpec('allow_insecure_http', False, 'Allow plain http:// to another machine: the '
              'API key and alerts then cross the network unencrypted.'),
    ParamSpec('api_key_file', '', f'File holding the API key (one line); the '
              f'{API_KEY_ENV} environment variable comes first. Never a parameter: any node '
              'could read it.'),
    ParamSpec('device_id', 'edge-1', "This device's name on the server.", check=_name),
    ParamSpec('camera_id', 'cam0', 'Camera name in alerts and snapshot names.', check=_name),
    ParamSpec('upload_interval', 5.0, 'Seconds before a failed upload round is tried again.',
              minimum=0.1, maximum=3600.0),
    ParamSpec('max_image_size_mb', 1.0, 'Largest snapshot sent, in MB.',
              minimum=0.01, maximum=5.0),
    ParamSpec('enable_image_upload', True, 'Send snapshots.'),
    ParamSpec('enable_alert_upload', True, 'Send alerts.'),
    ParamSpec('retry_attempts', 3, 'Tries per request in one upload round.',
              minimum=1, maximum=100),
    ParamSpec('retry_delay', 1.0, 'First retry delay in seconds (doubled each retry, with '
              'jitter, capped at 60 s).', minimum=0.01, maximum=600.0),
    ParamSpec('data_dir', '~/.local/share/vehicle_detection',
              'Folder of the outbox database (read at start).', read_only=True),
    ParamSpec('snapshot_dir', '', 'Folder of snapshots waiting for upload; empty: '
              'data_dir/snapshots (read at start).', read_only=True),
    ParamSpec('snapshot_quality', 70, 'JPEG quality of snapshots.', minimum=10, maximum=100),
    ParamSpec('snapshot_max_width', 640, 'Snapshots are scaled down to this width.',
              minimum=64, maximum=8192),
    ParamSpec('max_storage_mb', 1024.0, 'Bound on outbox + snapshots; the oldest unsent '
              'snapshots are evicted first, alerts never.', minimum=1.0, maximum=1e6),
    ParamSpec('monthly_budget_mb', 20480.0, 'Mobile data per calendar month; 0: no budget.',
              minimum=0.0, maximum=1e7),
    ParamSpec('min_track_hits', 3, 'Frames a track must be seen with at least '
              'min_alert_score before it alerts.', minimum=1, maximum=1000),
    ParamSpec('min_alert_score', 0.5, 'Score a sighting needs to count towards '
              'min_track_hits (tracks that never look like a vehicle do not alert).',
              minimum=0.0, maximum=1.0),
    ParamSpec('snapshot_window', 1.0, 'Seconds after a track is confirmed during which its '
              'best view (largest box x score) is chosen for the snapshot; keep frame_buffer '
              'above this many seconds of camera frames.', minimum=0.0, maximum=10.0),
    ParamSpec('track_cooldown', 60.0, 'Seconds during which a new track standing still '
              'where an alerted vehicle stood counts as that vehicle (moving vehicles always '
              'alert).', minimum=0.0, maximum=86400.0),
    ParamSpec('class_cooldown', 0.0, 'Minimum seconds between two alerts of one class; 0: '
              'none.', minimum=0.0, maximum=86400.0),
    ParamSpec('heartbeat_interval', 60.0, 'Seconds between heartbeats (read at start).',
              minimum=1.0, maximum=86400.0, read_only=True),
    ParamSpec('health_interval', 30.0, 'Seconds between GET /health checks (read at start).',
              minimum=0.5, maximum=3600.0, read_only=True),
    ParamSpec('image_topic', 'camera/image_raw', 'Images to take snapshots from (read at '
              'start).', read_only=True),
    IMAGE_RELIABILITY,
    ParamSpec('frame_buffer', 30, "Recent frames kept to find an alert's own frame "
              '(read at start).', minimum=1, maximum=1000, read_only=True),
    ParamSpec('diagnostics_period', 1.0, 'Seconds between /diagnostics reports (read at '
              'start).', minimum=0.1, maximum=60.0, read_only=True),
)


def insecure_url(url: str, allowed: bool) -> Optional[str]:
    """Say why ``url`` may not be used: plain http to another machine, unless ``allowed``."""
    parts = urlsplit(url)
    if parts.scheme != 'http' or allowed or _is_loopback(parts.hostname or ''):
        return None
    return (f'refusing plain http to {parts.hostname}: the API key and alerts would cross '
            'the network unencrypted; use https:// or set allow_insecure_http')


def _is_loopback(host: str) -> bool:
    if host == 'localhost':
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve_api_key(values: Mapping[str, Any]) -> Tuple[str, str]:
    """
    Return (key, where it came from): the environment, then the key file.

    Raises ValueError when ``api_key_file`` is set but cannot be read.
    """
    if os.environ.get(API_KEY_ENV):
        return os.environ[API_KEY_ENV].strip(), API_KEY_ENV
    if values['api_key_file']:
        path = Path(values['api_key_file']).expanduser()
        try:
            return path.read_text().strip(), str(path)
        except OSError as error:
            raise ValueError(f'api_key_file {path}: {error.strerror}') from error
    return '', 'nowhere'
