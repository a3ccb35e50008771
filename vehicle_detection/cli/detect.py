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

from vehicle_detection.core.camera_sources import (
    ImageFolderSource, open_source, parse_source, SourceError)
from vehicle_detection.core.detection.backends.base import BackendUnavailable, ModelLoadError
from vehicle_detection.core.detection.classes import LabelsError, VEHICLE_CLASSES
from vehicle_detection.core.detection.decoders import LayoutError
from vehicle_detection.core.detection.detector import Detector, DetectorSettings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``vehicle-detection detect``."""
    parser.add_argument('path', help='image file, folder of images or video file')
    parser.add_argument('--model', required=True, help='ONNX detector model')
    parser.add_argument('--output', default='-', help='JSON lines file (default: stdout)')
    parser.add_argument('--backend', default='auto', choices=('auto', 'tensorrt', 'onnxruntime'))
    parser.add_argument('--model-type', default='auto')
    parser.add_argument('--classes', default=','.join(VEHICLE_CLASSES),
                        help='comma-separated class names to report; empty: all')
    parser.add_argument('--confidence', type=float, default=0.35)
    parser.add_argument('--iou', type=float, default=0.45)
    parser.add_argument('--labels-file', default='')
    parser.add_argument('--track', action='store_true', help='track across frames (videos)')


def run(args: argparse.Namespace) -> int:
    """Detect frame by frame and write one JSON object per frame."""
    classes = tuple(c.strip() for c in args.classes.split(',') if c.strip())
    settings = DetectorSettings(args.model, backend=args.backend, model_type=args.model_type,
                                classes=classes, confidence_threshold=args.confidence,
                                nms_iou_threshold=args.iou, labels_file=args.labels_file,
                                tracking=args.track)
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
