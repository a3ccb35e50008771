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

"""The camera node's parameters and the configuration built from them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional

from vehicle_detection.core.camera.pacing import PACES
from vehicle_detection.core.camera.sources import parse_source
from vehicle_detection.core.params import setting, specs_of, validate_values


def _check_source(value: str) -> Optional[str]:
    try:
        parse_source(value)
    except ValueError as error:
        return str(error)
    return None


def _check_frame_id(value: str) -> Optional[str]:
    if not value or any(ch.isspace() for ch in value):
        return 'must be a non-empty name without spaces'
    return None


def check_camera(values: Mapping[str, Any]) -> Optional[str]:
    """Rules that span parameters."""
    if values['reconnect_initial'] > values['reconnect_max']:
        return (f'reconnect_initial ({values["reconnect_initial"]}) must not exceed '
                f'reconnect_max ({values["reconnect_max"]})')
    return None


@dataclass(frozen=True)
class CameraConfig:
    """The camera node's parameters, typed and validated: one field per parameter."""

    source: str = setting('0', 'Camera source: device index or /dev/videoN, video file, folder '
                          'of images (natural order), rtsp:// or http(s):// URL, or a GStreamer '
                          'pipeline.', check=_check_source)
    fps: float = setting(10.0, 'Publishing rate cap in frames per second: a live source drops '
                         'the frames over it, a video file plays in real time and skips them '
                         '(see pace); 0: no cap.', minimum=0.0, maximum=240.0)
    pace: str = setting('realtime', 'How a video file plays: realtime keeps its own clock like '
                        "a live camera (the fps cap skips frames; stamps follow the file's "
                        'timeline); every_frame publishes each frame, one per 1/fps (slower '
                        "than real time when fps is below the file's rate; as fast as they "
                        'decode with fps 0). Folders of images play one image per 1/fps.',
                        choices=PACES)
    width: int = setting(0, 'Resize frames to this width in pixels; 0 keeps the source width (or '
                         'the aspect ratio when only height is set).', minimum=0, maximum=8192)
    height: int = setting(0, 'Resize frames to this height in pixels; 0 keeps the source height '
                          '(or the aspect ratio when only width is set).', minimum=0, maximum=8192)
    frame_id: str = setting('camera', 'frame_id of the published images and camera info.',
                            check=_check_frame_id)
    loop: bool = setting(False, 'Restart a video file or image folder at its end.')
    stall_timeout: float = setting(5.0, 'Seconds without a frame before the source is considered '
                                   'stalled and reopened.', minimum=0.1, maximum=3600.0)
    reconnect_initial: float = setting(0.5, 'First delay in seconds before reopening a failed '
                                       'source; doubles after each failure.',
                                       minimum=0.01, maximum=600.0)
    reconnect_max: float = setting(30.0, 'Cap in seconds of the reconnect delay.',
                                   minimum=0.01, maximum=3600.0)
    qos_depth: int = setting(1, 'History depth of the sensor-data QoS of the image topics (read '
                             'at start).', minimum=1, maximum=100, read_only=True)
    diagnostics_period: float = setting(1.0, 'Seconds between /diagnostics reports (read at '
                                        'start).', minimum=0.1, maximum=60.0, read_only=True)

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> 'CameraConfig':
        """Build from parameter values, refusing invalid ones with a ParamError."""
        return cls(**validate_values(CAMERA_PARAMS, values, check_camera))


CAMERA_PARAMS = specs_of(CameraConfig)
