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

"""Run the detector on an image, a folder or a video, without ROS; one JSON line per frame."""

from __future__ import annotations

import argparse
import json
import sys
from typing import IO

from vehicle_detection.core.camera.sources import (
    ImageFolderSource,
    SourceError,
    open_source,
    parse_source,
)
from vehicle_detection.core.detection.backends.base import BackendUnavailable, ModelLoadError
from vehicle_detection.core.detection.classes import LabelsError
from vehicle_detection.core.detection.decoders import LayoutError
from vehicle_detection.core.detection.detector import Detector, DetectorSettings
from vehicle_detection.core.detection.node_config import DETECTOR_PARAMS
from vehicle_detection.core.params import ParamError, spec_map, validate_values

# The detector node's parameters that ``detect`` takes: option -> parameter. Defaults,
# choices, ranges and help come from the node's specs.
OPTIONS = {'--backend': 'backend', '--model-type': 'model_type', '--classes': 'classes',
           '--confidence': 'confidence_threshold', '--iou': 'nms_iou_threshold',
           '--labels-file': 'labels_file'}


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


def run(args: argparse.Namespace) -> int:
    """Detect frame by frame and write one JSON object per frame."""
    values = {name: getattr(args, name) for name in OPTIONS.values()}
    values['classes'] = [c.strip() for c in values['classes'].split(',') if c.strip()]
    try:
        checked = validate_values(DETECTOR_PARAMS, values)
    except ParamError as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    settings = DetectorSettings(args.model, backend=checked['backend'],
                                model_type=checked['model_type'],
                                classes=tuple(checked['classes']),
                                confidence_threshold=checked['confidence_threshold'],
                                nms_iou_threshold=checked['nms_iou_threshold'],
                                labels_file=checked['labels_file'], tracking=args.track)
    try:
        detector = Detector(settings)
        spec = parse_source(args.path)
        source = open_source(spec, loop=False)
    except (ModelLoadError, BackendUnavailable, LabelsError, LayoutError, SourceError,
            ValueError) as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    out: IO[str] = sys.stdout if args.output == '-' else open(args.output, 'w',
                                                              encoding='utf-8')
    frames = 0
    try:
        while True:
            try:
                image = source.read()
            except SourceError as error:
                print(f'error: {error}', file=sys.stderr)
                return 1
            if image is None:
                break
            detections, timing = detector.detect(image)
            record = {'frame': frames, 'width': image.shape[1], 'height': image.shape[0],
                      'inference_ms': round(timing.inference_ms, 2),
                      'detections': detections.to_records()}
            if isinstance(source, ImageFolderSource):
                record['file'] = source.last_path
            out.write(json.dumps(record) + '\n')
            frames += 1
    finally:
        source.close()
        if out is not sys.stdout:
            out.close()
    print(f'{frames} frames processed', file=sys.stderr)
    return 0
