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

"""Run the three nodes in one process (for machines without the ROS 2 command-line tools)."""

from __future__ import annotations

import argparse
from dataclasses import asdict
import sys
import time
from typing import Any, Dict, List, Optional

from rclpy.context import Context
from rclpy.node import Node
from rclpy.parameter import Parameter

from vehicle_detection.core.counting.session import counts_table
from vehicle_detection.core.system.config_file import ConfigError, default_config_path
from vehicle_detection.core.system.system_config import system_parameters
from vehicle_detection.nodes.camera_node import CameraNode
from vehicle_detection.nodes.cloud_bridge_node import CloudBridgeNode
from vehicle_detection.nodes.detector_node import DetectorNode
from vehicle_detection.ros.intra_process import ImageInput, ReceivedImage
from vehicle_detection.ros.qos import DETECTIONS_QOS, image_qos
from vehicle_detection.ros.spin import (
    NodeFactory, process_stop_request, spin_nodes, start_context)
from vision_msgs.msg import Detection2DArray

# A track id unseen this long is forgotten by the monitor (the tracker drops a lost
# track after 2 s): it counts distinct vehicles without keeping every id of a run.
RECENT_IDS_S = 60.0
ACTIVATION_RETRY_S = 5.0  # the detector's, while its model file is missing


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """Options that shape the node parameters (shared by ``run``, ``demo``, ``doctor``)."""
    parser.add_argument('--config', default=None,
                        help='ROS 2 parameter file (default: the installed config/config.yaml)')
    parser.add_argument('--set', dest='overrides', action='append', default=[],
                        metavar='NODE.PARAM=VALUE', help='override one parameter (repeatable)')
    parser.add_argument('--source', default='', help='shortcut for camera_node.source')
    parser.add_argument('--model', default='', help='shortcut for detector_node.model_path')
    parser.add_argument('--cloud-url', default='',
                        help='shortcut for cloud_bridge_node.api_base_url')


def load_parameters(args: argparse.Namespace) -> Dict[str, Dict[str, Any]]:
    """Return the validated node parameters the options describe (or raise ConfigError)."""
    return system_parameters(args.config or default_config_path(), args.overrides,
                             args.source, args.model, args.cloud_url)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``vehicle-detection run``."""
    add_config_arguments(parser)
    parser.add_argument('--duration', type=float, default=0.0,
                        help='stop after this many seconds (default: run until Ctrl-C)')
    parser.add_argument('--quiet', action='store_true', help='do not print each detection')
    parser.add_argument('--replay', action='store_true',
                        help='detector and bridge only, fed by `bag play` (like '
                             'replay.launch.py); alerts and counts are marked as replays')
    parser.add_argument('--live', action='store_true',
                        help='with --replay: the played images are live traffic (a camera '
                             'bridged through a bag); alerts and counts are not marked')


def replay_overrides(args: argparse.Namespace) -> List[str]:
    """
    Return ``args.overrides`` with the bridge's replay mark that ``--replay``/``--live`` imply.

    ``--replay`` marks (before the user's ``--set``, which may say otherwise);
    ``--live`` never marks, whatever the file or ``--set`` say.
    """
    overrides = list(args.overrides)
    if getattr(args, 'live', False):
        return [*overrides, 'cloud_bridge_node.replay=false']
    if getattr(args, 'replay', False):
        return ['cloud_bridge_node.replay=true', *overrides]
    return overrides


class Monitor(Node):
    """Counts frames, detections and tracked vehicles; prints a line per frame with vehicles."""

    def __init__(self, context: Context, quiet: bool) -> None:
        super().__init__('vehicle_detection_monitor', context=context)
        self.frames = self.detection_messages = self.detections = 0
        self.vehicles = 0  # distinct vehicles (tracker ids)
        self._recent_ids: Dict[str, float] = {}  # track id -> when last seen (monotonic)
        self._next_forget = 0.0
        self.clock = time.monotonic
        self._quiet = quiet
        self._images = ImageInput(self, 'camera/image_raw', image_qos(5),
                                  self._on_image)
        self.create_subscription(Detection2DArray, 'detections', self._on_detections,
                                 DETECTIONS_QOS)

    def _on_image(self, _image: ReceivedImage) -> None:
        self.frames += 1

    def close(self) -> None:
        """Stop taking in-process frames (called before the node is destroyed)."""
        self._images.close()

    def _on_detections(self, msg: Detection2DArray) -> None:
        self.detection_messages += 1
        self.detections += len(msg.detections)
        self._count_vehicles([d.id for d in msg.detections if d.id])
        if msg.detections and not self._quiet:
            found = ', '.join(f'{d.results[0].hypothesis.class_id}#{d.id} '
                              f'{d.results[0].hypothesis.score:.2f}'
                              for d in msg.detections if d.results)
            print(f'/detections {msg.header.stamp.sec}.{msg.header.stamp.nanosec:09d}: {found}',
                  flush=True)

    def _count_vehicles(self, track_ids: List[str]) -> None:
        now = self.clock()
        for track_id in track_ids:
            if track_id not in self._recent_ids:
                self.vehicles += 1
            self._recent_ids[track_id] = now
        if now >= self._next_forget:  # a run lasts months: keep the recent ids only
            self._recent_ids = {k: seen for k, seen in self._recent_ids.items()
                                if now - seen < RECENT_IDS_S}
            self._next_forget = now + RECENT_IDS_S


def retry_activation(detector: DetectorNode) -> DetectorNode:
    """
    Say why the detector did not activate, and try again every few seconds.

    This process is the detector's lifecycle manager: a model file that
    appears (or a ``model_path`` set with ``ros2 param set``) starts it.
    """
    if detector.activation_error and detector.settings.autostart:
        print(f'detector_node is not active: {detector.activation_error}; trying again every '
              f'{ACTIVATION_RETRY_S:.0f} s', file=sys.stderr, flush=True)

        def retry() -> None:
            if detector.lifecycle_state == 'inactive' and detector.activation_error:
                detector.trigger_activate()

        detector.create_timer(ACTIVATION_RETRY_S, retry)
    return detector


def as_overrides(values: Dict[str, Any]) -> List[Parameter]:
    """Turn validated values into rclpy parameter overrides."""
    return [Parameter(name, value=value) for name, value in values.items()]


def run(args: argparse.Namespace) -> int:
    """Start the nodes, spin until Ctrl-C or ``--duration``, print a summary."""
    if args.live and not args.replay:
        print('error: --live goes with --replay (a live camera is never marked as a replay)',
              file=sys.stderr)
        return 2
    args.overrides = replay_overrides(args)
    try:
        params = load_parameters(args)
    except ConfigError as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    made: Dict[str, Any] = {}

    def factory(name: str, make: Any) -> NodeFactory:
        def create(context: Context) -> Node:
            made[name] = make(context)
            return made[name]
        return create

    factories = [] if getattr(args, 'replay', False) else [
        factory('camera', lambda c: CameraNode(
            context=c, parameter_overrides=as_overrides(params['camera_node'])))]
    factories += [
        factory('detector', lambda c: retry_activation(DetectorNode(
            context=c, parameter_overrides=as_overrides(params['detector_node'])))),
        factory('bridge', lambda c: CloudBridgeNode(
            context=c, parameter_overrides=as_overrides(params['cloud_bridge_node']))),
        factory('monitor', lambda c: Monitor(c, args.quiet)),
    ]
    stop = process_stop_request()
    try:
        code = spin_nodes(start_context(), factories, args.duration, stop=stop)
        bridge = made.get('bridge')
        counting = bridge.watch.counting if bridge is not None else None
        if counting is not None and counting.geometry.lines:  # the counts, then the rest
            print('traffic counts of this run:\n' + counts_table(counting), end='', flush=True)
        print(summary(made.get('monitor'), bridge), flush=True)
    finally:
        stop.hold_until_exit()  # a second Ctrl-C during the exit is absorbed too
    return code


def summary(monitor: Optional[Monitor], bridge: Optional[CloudBridgeNode]) -> str:
    """Return the one-line summary printed at exit."""
    parts = [f'frames={monitor.frames if monitor else 0}',
             f'detection_messages={monitor.detection_messages if monitor else 0}',
             f'detections={monitor.detections if monitor else 0}',
             f'vehicles={monitor.vehicles if monitor else 0}']
    if bridge is not None and bridge.run_figures is not None:
        parts += [f'{name}={value}' for name, value in asdict(bridge.run_figures).items()]
    return 'summary: ' + ' '.join(parts)
