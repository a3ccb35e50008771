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
Check a configuration: model, backend, camera, cloud and key, disk. Exit 1 on a failure.

With ``--listen SECONDS`` it also subscribes to the detector's image topic as
the detector would and reports frames lost between processes.
"""

from __future__ import annotations

import argparse
from typing import Any, Dict, List

from vehicle_detection.cli.run import add_config_arguments, load_parameters
from vehicle_detection.core.system.config_file import ConfigError, default_config_path
from vehicle_detection.core.system.doctor import check_publishers, CheckResult, run_checks
from vehicle_detection.core.system.image_stream import (
    ASSUMED_FRAME, check_image_stream, check_socket_buffers, read_socket_buffers)

# Longest wait for a first publisher of the input topics; a running system is found in
# well under a second on this machine (the listening above waited for it already).
DISCOVERY_S = 3.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``vehicle-detection doctor``: those of ``run`` that shape the config."""
    add_config_arguments(parser)
    parser.add_argument('--listen', type=float, default=0.0, metavar='SECONDS',
                        help='also listen to the image topic this long and report lost '
                             'frames (the camera runs in another process)')


def stream_checks(params: Dict[str, Dict[str, Any]], seconds: float) -> List[CheckResult]:
    """Listen to the detector's image topic (when asked) and check the socket buffers."""
    results: List[CheckResult] = []
    frame_bytes = 0
    if seconds > 0:
        from vehicle_detection.ros.image_probe import listen_to_images
        from vehicle_detection.ros.transport import PROFILE
        detector = params['detector_node']
        sample = listen_to_images(detector['input_topic'], seconds,
                                  detector['image_reliability'])
        results.append(check_image_stream(sample, PROFILE))
        frame_bytes = sample.frame_bytes
    camera = params['camera_node']
    width, height = (camera['width'], camera['height']) if camera['width'] and camera[
        'height'] else ASSUMED_FRAME
    results.append(check_socket_buffers(frame_bytes or width * height * 3,
                                        *read_socket_buffers()))
    return results


def publisher_checks(params: Dict[str, Dict[str, Any]], seconds: float) -> List[CheckResult]:
    """With ``--listen``: warn when another system also publishes on the nodes' inputs."""
    if seconds <= 0:
        return []
    from vehicle_detection.ros.graph_watch import publishers_by_topic
    topics = (params['detector_node']['input_topic'],
              params['cloud_bridge_node']['image_topic'], 'detections')
    return [check_publishers(*publishers_by_topic(topics, wait_s=DISCOVERY_S))]


def run(args: argparse.Namespace) -> int:
    """Print one line per check; return 1 when any failed."""
    try:
        params = load_parameters(args)
    except ConfigError as error:
        print(f'FAIL  config: {error}')
        return 1
    print(f'OK    config: {args.config or default_config_path()}')
    results = run_checks(params, report=lambda result: print(result.line(), flush=True))
    for result in stream_checks(params, args.listen):
        print(result.line(), flush=True)
        results.append(result)
    for result in publisher_checks(params, args.listen):
        print(result.line(), flush=True)
        results.append(result)
    failed = [r.name for r in results if not r.ok]
    print(f'{len(results) - len(failed)} passed, {len(failed)} failed'
          + (f': {", ".join(failed)}' if failed else ''))
    return 1 if failed else 0
