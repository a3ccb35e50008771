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

from dataclasses import dataclass
import ipaddress
import os
from pathlib import Path
from typing import Any, Mapping, Optional, Tuple
from urllib.parse import urlsplit

from vehicle_detection.core.counting.calibration import (
    Calibration, calibration_problem, parse_calibration, trap_lines_problem)
from vehicle_detection.core.counting.config import lines_problem, parse_geometry, zones_problem
from vehicle_detection.core.counting.schemes import SCHEMES
from vehicle_detection.core.events.geometry import Geometry
from vehicle_detection.core.params import from_spec, IMAGE_RELIABILITY, setting, specs_of
from vehicle_detection.wire import is_valid_name

API_KEY_ENV = 'VD_CLOUD_API_KEY'


def _name(value: Any) -> Optional[str]:
    return None if is_valid_name(str(value)) else 'letters, digits, "_", "." or "-" only'


def _url(value: Any) -> Optional[str]:
    return None if str(value).startswith(('http://', 'https://')) else \
        'must start with http:// or https://'


@dataclass(frozen=True)
class BridgeSettings:
    """The cloud bridge node's parameters, typed: one field per parameter."""

    enabled: bool = setting(True, 'Upload to the cloud; events are recorded locally either way.')
    api_base_url: str = setting('http://127.0.0.1:8000', 'Cloud server URL (https:// unless the '
                                'server is on this machine).', check=_url)
    allow_insecure_http: bool = setting(False, 'Allow plain http:// to another machine: the API '
                                        'key and alerts then cross the network unencrypted.')
    api_key_file: str = setting('', 'File holding the API key (one line); the VD_CLOUD_API_KEY '
                                'environment variable comes first. Never a parameter: any node '
                                'could read it.')
    device_id: str = setting('edge-1', "This device's name on the server.", check=_name)
    camera_id: str = setting('cam0', 'Camera name in alerts and snapshot names.', check=_name)
    upload_interval: float = setting(5.0, 'Seconds before a failed upload round is tried again '
                                     '(doubled while rounds keep failing, up to 60 s; a new '
                                     'event or the link coming back starts one at once).',
                                     minimum=0.1, maximum=3600.0)
    max_image_size_mb: float = setting(1.0, 'Largest snapshot sent, in MB.',
                                       minimum=0.01, maximum=5.0)
    enable_image_upload: bool = setting(True, 'Send snapshots.')
    enable_alert_upload: bool = setting(True, 'Send alerts.')
    retry_attempts: int = setting(3, 'Tries per request in one upload round.',
                                  minimum=1, maximum=100)
    retry_delay: float = setting(1.0, 'First retry delay in seconds (doubled each retry, with '
                                 'jitter, capped at 60 s).', minimum=0.01, maximum=600.0)
    max_retry_after: float = setting(300.0, 'Longest wait in seconds a server may ask for with '
                                     'Retry-After (seconds or an HTTP date); longer asks are cut '
                                     'to this. A new event ends the wait sooner.',
                                     minimum=1.0, maximum=86400.0)
    request_deadline: float = setting(60.0, 'Seconds one upload request may take in all '
                                      '(connect, send, the whole answer); one still running is '
                                      'cut off and retried. A snapshot of max_image_size_mb must '
                                      'go within it on the slowest link.',
                                      minimum=1.0, maximum=3600.0)
    data_dir: str = setting('~/.local/share/vehicle_detection', 'Folder of the outbox database '
                            '(read at start); one bridge per folder: a second bridge on it '
                            'refuses to start.', read_only=True)
    snapshot_dir: str = setting('', 'Folder of snapshots waiting for upload; empty: '
                                'data_dir/snapshots (read at start).', read_only=True)
    snapshot_quality: int = setting(70, 'JPEG quality of snapshots.', minimum=10, maximum=100)
    snapshot_max_width: int = setting(640, 'Snapshots are scaled down to this width.',
                                      minimum=64, maximum=8192)
    max_storage_mb: float = setting(1024.0, 'Bound on outbox + snapshots; the oldest unsent '
                                    'snapshots are evicted first, alerts never.',
                                    minimum=1.0, maximum=1e6)
    history_days: float = setting(30.0, 'Days sent events are kept in the outbox as local '
                                  'history, then deleted (oldest first; an event still to '
                                  'send never is); 0: no time limit.', minimum=0.0,
                                  maximum=3650.0)
    history_mb: float = setting(256.0, 'Largest outbox database in MB: past it the oldest sent '
                                'events are deleted first; keep it below max_storage_mb; 0: '
                                'no size limit.', minimum=0.0, maximum=1e6)
    monthly_budget_mb: float = setting(20480.0, 'Mobile data per calendar month; 0: no budget.',
                                       minimum=0.0, maximum=1e7)
    min_track_hits: int = setting(3, 'Frames a track must be seen with at least min_alert_score '
                                  'before it alerts.', minimum=1, maximum=1000)
    min_alert_score: float = setting(0.5, 'Score a sighting needs to count towards '
                                     'min_track_hits (tracks that never look like a vehicle do '
                                     'not alert).', minimum=0.0, maximum=1.0)
    snapshot_window: float = setting(1.0, 'Seconds after a track is confirmed during which its '
                                     'best view (largest box x score) is chosen for the '
                                     'snapshot (that frame is kept until the alert goes out, '
                                     'whatever the frame rate).', minimum=0.0, maximum=10.0)
    track_cooldown: float = setting(60.0, 'Seconds during which a new track standing still where '
                                    'an alerted vehicle stood counts as that vehicle (moving '
                                    'vehicles always alert).', minimum=0.0, maximum=86400.0)
    class_cooldown: float = setting(0.0, 'Minimum seconds between two alerts of one class; 0: '
                                    'none.', minimum=0.0, maximum=86400.0)
    replay: bool = setting(False, 'The images are recorded (a bag played in), not live: alerts '
                           'and counts are marked as replays, which the dashboard and the read '
                           'API leave out unless asked. replay.launch.py and `vehicle-detection '
                           'run --replay` set it.')
    counting_lines: str = setting(
        '', 'Counting lines, ";"-separated: NAME X1,Y1 X2,Y2 [FIRST/SECOND] '
        '[oneway=FIRST|SECOND]; a vehicle crossing to the right of the line drawn from the '
        'first point to the second (on the picture) counts as FIRST, the other way as SECOND; '
        'oneway= names the only direction allowed (a line over one carriageway): a vehicle '
        'crossing the other way raises one wrong_way alert with a snapshot. Coordinates in '
        '[0, 1] are fractions of the image, others pixels. Example: "stop_bar 0,0.62 1,0.62 '
        'towards/away; north 0,0.7 0.5,0.7 towards/away oneway=away".', check=lines_problem)
    counting_zones: str = setting(
        '', 'Zones, ";"-separated: NAME X,Y X,Y X,Y [...] [dwell=SECONDS]; a vehicle staying '
        'in a zone longer than its dwell limit raises one stopped_vehicle alert with a '
        'snapshot. Example: "shoulder 0.8,0.5 1,0.5 1,1 0.8,1 dwell=30".', check=zones_problem)
    speed_calibration: str = setting(
        '', 'Ground calibration for vehicle speeds (empty: no speeds). Either "image X,Y X,Y '
        'X,Y X,Y road E,N E,N E,N E,N": four points of the picture (pixels, or all in [0, 1] '
        'as fractions of the image) and where each lies on the road in metres (e.g. across, '
        'along; corners of lane markings: UK motorway lanes are 3.65 m wide, dashes repeat '
        'every 9 m); or "lines NAME NAME METRES": two counting lines that far apart along the '
        'road. The speed of each counted vehicle goes into 2 km/h bins per line, direction and '
        'class in the count records (the server gives p15/p50/p85/p95 and mean), and alerts '
        'carry speed_kmh.', check=calibration_problem)
    count_vehicles: bool = setting(
        False, 'Send one row per counted vehicle with each count record (seconds into the '
        'period, line, direction, class, km/h): about 40 bytes of JSON per vehicle (the '
        'server exports them at /api/v1/counts/vehicles).')
    count_period: int = setting(60, 'Seconds of one period of traffic counts sent to the '
                                'cloud (read at start).', minimum=10, maximum=86400,
                                read_only=True)
    class_scheme: str = setting('uk6', 'Classes the counts are in: uk6 (motorcycle, car, van, '
                                'bus, rigid_lorry, articulated_lorry, unclassified: from the '
                                "detector's label and the vehicle's size against the usual car "
                                "at that place in the picture) or coco (the detector's labels "
                                'as they are). Read at start.', choices=SCHEMES, read_only=True)
    stall_seconds: float = setting(5.0, 'Frames further apart than this are a stall: the gap is '
                                   'not counted as observed and the period is flagged stalled '
                                   '(read at start).', minimum=0.5, maximum=3600.0,
                                   read_only=True)
    heartbeat_interval: float = setting(60.0, 'Seconds between heartbeats (read at start).',
                                        minimum=1.0, maximum=86400.0, read_only=True)
    remote_config: bool = setting(
        True, 'Take the configuration an admin saves for this device on the dashboard '
        '(counting lines, zones and the other parameters changeable while running): fetched '
        'after a heartbeat when its version changed, checked like `ros2 param set` (all or '
        'nothing), kept in data_dir across restarts, and over the local configuration. '
        'false: the local configuration wins and new versions are reported refused '
        '(read at start).', read_only=True)
    health_interval: float = setting(30.0, 'Seconds between GET /health checks (read at start).',
                                     minimum=0.5, maximum=3600.0, read_only=True)
    image_topic: str = setting('camera/image_raw', 'Images to take snapshots from (read at '
                               'start).', read_only=True)
    image_reliability: str = from_spec(IMAGE_RELIABILITY)
    frame_buffer: int = setting(30, 'Recent frames kept to find the frame of a detection that '
                                'arrives after its image (read at start); the views alerts '
                                'still wait on are kept beside them.', minimum=1, maximum=1000,
                                read_only=True)
    diagnostics_period: float = setting(1.0, 'Seconds between /diagnostics reports (read at '
                                        'start).', minimum=0.1, maximum=60.0, read_only=True)

    @property
    def geometry(self) -> Geometry:
        """Return the counting lines and zones, parsed (they were checked as parameters)."""
        return parse_geometry(self.counting_lines, self.counting_zones)

    @property
    def calibration(self) -> Optional[Calibration]:
        """Return the speed calibration, parsed (None: no speeds)."""
        return parse_calibration(self.speed_calibration)


def speed_trap_problem(values: Mapping[str, Any]) -> Optional[str]:
    """Say which line a two-line speed calibration names that is no counting line."""
    try:
        names = [line.name for line, _ in parse_geometry(values['counting_lines'], '').lines]
    except ValueError:
        return None  # said by counting_lines' own check
    return trap_lines_problem(values['speed_calibration'], names)


BRIDGE_PARAMS = specs_of(BridgeSettings)


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
