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
Run the detector on an image, a folder or a video, without ROS; one JSON line per frame.

With ``--lines`` / ``--zones`` (the bridge's ``counting_lines`` and
``counting_zones`` syntax) vehicles are tracked and counted as the bridge
counts them: each frame's record lists its crossings and its events
(stopped vehicles, wrong-way drivers: the bridge's rules with its default
settings), and the totals per line, direction and class are printed at the
end (on stderr, so that stdout stays JSON lines).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Dict, IO, List, Sequence, Tuple

import numpy as np

from vehicle_detection.core.bridge.config import (
    BRIDGE_PARAMS, BridgeSettings, speed_trap_problem)
from vehicle_detection.core.bridge.watch import TrafficWatch
from vehicle_detection.core.camera.sources import (
    ImageFolderSource, open_source, parse_source, SourceError)
from vehicle_detection.core.counting.calibration import parse_calibration
from vehicle_detection.core.counting.config import parse_geometry
from vehicle_detection.core.counting.session import (
    aligned_table, counts_table, PeriodCounts, VehicleRow)
from vehicle_detection.core.detection.backends.base import ModelLoadError
from vehicle_detection.core.detection.detections import Detections
from vehicle_detection.core.detection.detector import Detector
from vehicle_detection.core.detection.node_config import DETECTOR_PARAMS, detector_settings
from vehicle_detection.core.params import ParamError, spec_map, validate_values

# The detector node's parameters that ``detect`` takes: option -> parameter. Defaults,
# choices, ranges and help come from the node's specs.
OPTIONS = {'--backend': 'backend', '--model-type': 'model_type', '--classes': 'classes',
           '--confidence': 'confidence_threshold', '--iou': 'nms_iou_threshold',
           '--labels-file': 'labels_file'}
DEFAULT_FPS = 10.0  # stamps of images (and of videos that declare no rate)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``vehicle-detection detect``."""
    parser.add_argument('path', help='image file, folder of images or video file')
    parser.add_argument('--model', required=True, help='ONNX detector model')
    parser.add_argument('--output', default='-', help='JSON lines file (default: stdout)')
    specs = spec_map(DETECTOR_PARAMS)
    for flag, name in OPTIONS.items():
        spec = specs[name]
        help_text = spec.description + (f' ({spec.constraints()})' if spec.constraints() else '')
        if isinstance(spec.default, list):  # a comma-separated list on the command line
            parser.add_argument(flag, dest=name, default=','.join(map(str, spec.default)),
                                help=help_text + ' Comma-separated.')
        else:
            parser.add_argument(flag, dest=name, type=spec.kind, default=spec.default,
                                choices=spec.choices, help=help_text)
    parser.add_argument('--track', action='store_true', help='track across frames (videos)')
    bridge = spec_map(BRIDGE_PARAMS)
    parser.add_argument('--lines', default='', help=bridge['counting_lines'].description
                        + ' Implies --track.')
    parser.add_argument('--zones', default='', help=bridge['counting_zones'].description
                        + ' Implies --track.')
    parser.add_argument('--speed-calibration', default='',
                        help=bridge['speed_calibration'].description.split(' The speed of')[0]
                        + ". Each counted vehicle's speed goes into its period; a table of "
                        'speeds per line, direction and class is printed at the end. '
                        'Needs --lines.')
    parser.add_argument('--scheme', default=bridge['class_scheme'].default,
                        choices=bridge['class_scheme'].choices,
                        help=bridge['class_scheme'].description.replace(' Read at start.', ''))
    parser.add_argument('--fps', type=float, default=0.0,
                        help='frame rate of the input, for tracking and dwell times '
                             "(default: the video's own; 10 for images)")


def run(args: argparse.Namespace) -> int:
    """Detect frame by frame and write one JSON object per frame."""
    values = {name: getattr(args, name) for name in OPTIONS.values()}
    values['classes'] = [c.strip() for c in values['classes'].split(',') if c.strip()]
    try:
        checked = validate_values(DETECTOR_PARAMS, values)
        geometry = parse_geometry(args.lines, args.zones)
        if args.speed_calibration and not geometry.lines:
            raise ValueError('--speed-calibration measures counted vehicles: give --lines')
        parse_calibration(args.speed_calibration)
        trap = speed_trap_problem({'counting_lines': args.lines,
                                   'speed_calibration': args.speed_calibration})
        if trap:
            raise ValueError(trap)
        if not 0.0 <= args.fps <= 1000.0:
            raise ValueError(f'--fps {args.fps:g} is outside [0, 1000]')
    except (ParamError, ValueError) as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    settings = detector_settings({**checked, 'model_path': args.model,
                                  'tracking': args.track or bool(geometry)})
    try:
        detector = Detector(settings)
        spec = parse_source(args.path)
        source = open_source(spec, loop=False)
    except (ModelLoadError, SourceError, ValueError) as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    out: IO[str] = sys.stdout if args.output == '-' else open(args.output, 'w',
                                                              encoding='utf-8')
    frames = 0
    rate = args.fps or getattr(source, 'frame_rate', 0.0) or DEFAULT_FPS
    watch = TrafficWatch(BridgeSettings(counting_lines=args.lines, counting_zones=args.zones,
                                        speed_calibration=args.speed_calibration,
                                        count_vehicles=bool(args.speed_calibration),
                                        class_scheme=args.scheme))
    periods: List[PeriodCounts] = []  # closed ones: their vehicles carry the speeds
    try:
        while True:
            try:
                image = source.read()
            except SourceError as error:
                print(f'error: {error}', file=sys.stderr)
                return 1
            if image is None:
                break
            detections, timing = detector.detect(image, frames / rate)
            # time_s: the frame's moment in the video, which `bag compare` joins on.
            record = {'frame': frames, 'time_s': round(frames / rate, 6),
                      'width': image.shape[1], 'height': image.shape[0],
                      'inference_ms': round(timing.inference_ms, 2),
                      'detections': detections.to_records()}
            if geometry:
                record.update(count_frame(watch, detections, frames / rate,
                                          (image.shape[1], image.shape[0]), periods))
            if isinstance(source, ImageFolderSource):
                record['file'] = source.last_path
            out.write(json.dumps(record) + '\n')
            frames += 1
    finally:
        source.close()
        if out is not sys.stdout:
            out.close()
    print(f'{frames} frames processed', file=sys.stderr)
    if geometry.lines:
        print(counts_table(watch.counting), file=sys.stderr, end='')
    if args.speed_calibration:
        periods += watch.counting.flush()
        print(speeds_table([row for period in periods for row in period.vehicles]),
              file=sys.stderr, end='')
    return 0


def count_frame(watch: TrafficWatch, detections: Detections, stamp: float,
                size: Tuple[int, int], closed: List[PeriodCounts]) -> Dict[str, Any]:
    """Count one frame's tracked vehicles; return its crossings and events."""
    warning = watch.on_image(size)  # the size fractions need; lines outside the picture
    if warning:
        print(f'warning: {warning}', file=sys.stderr)
    watched = watch.update(detections.sightings(), round(stamp * 1e9))
    closed += watched.closed
    return {'crossings': [{'line': c.line, 'direction': c.direction, 'track_id': c.track_id,
                           'class_name': c.class_name} for c in watched.crossings],
            'events': [{'kind': e.kind, 'track_id': e.sighting.track_id,
                        'class_name': e.sighting.class_name, **e.places}
                       for e in watched.events if e.kind != 'vehicle']}


def speeds_table(vehicles: Sequence[VehicleRow]) -> str:
    """Return counted vehicles' speeds per line, direction and class: n, p50, p85 (km/h)."""
    speeds: Dict[Tuple[str, str, str], List[float]] = {}
    unmeasured = 0
    for _offset, line, direction, name, kmh in vehicles:
        if kmh is None:
            unmeasured += 1  # left the picture too soon, or cut by its edge
        else:
            speeds.setdefault((line, direction, name), []).append(kmh)
    rows = [('line', 'direction', 'class', 'vehicles', 'p50 km/h', 'p85 km/h')] + [
        (*key, str(len(values)), f'{np.percentile(values, 50):.1f}',
         f'{np.percentile(values, 85):.1f}') for key, values in sorted(speeds.items())]
    return aligned_table(rows) + (
        f'{unmeasured} counted vehicles without a speed\n' if unmeasured else '')
