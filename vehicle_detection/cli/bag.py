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
rosbag2 tools: make a bag, play its topics, compare a replay's detections.

``bag make`` writes a video or image folder as a bag (a video sampled like a
camera at ``--fps``: real time, frames skipped), ``bag play`` publishes it
(with ``/clock``, a loop, an offset; it can record the replay's /detections),
``bag compare`` matches those against a reference: another replay's record,
or ``vehicle-detection detect`` output of the same video.
"""

from __future__ import annotations

import argparse
import sys

from vehicle_detection.cli import bag_play
from vehicle_detection.core.camera.pacing import PACES
from vehicle_detection.core.camera.sources import SourceError
from vehicle_detection.core.system.bag_compare import compare, load_records, NoCommonFrames
from vehicle_detection.core.system.bag_tools import ensure_new, make_bag, STORAGES

MIN_RECALL = 0.9  # of a replay against its reference, by default


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``vehicle-detection bag``."""
    sub = parser.add_subparsers(dest='bag_command', required=True, metavar='ACTION')
    make = sub.add_parser('make', help='write a bag from a video or an image folder')
    make.add_argument('source', help='video file or image folder')
    make.add_argument('out', help='bag folder to create')
    make.add_argument('--fps', type=float, default=10.0,
                      help='camera rate: a video keeps its timeline and the frames a camera '
                           'at this rate takes (0: every frame); a folder gets one image per '
                           '1/fps')
    make.add_argument('--pace', choices=PACES, default='realtime',
                      help='every_frame: every frame of a video, re-timed at 1/fps')
    make.add_argument('--topic', default='/camera/image_raw')
    make.add_argument('--storage', choices=STORAGES, default='sqlite3')
    bag_play.add_arguments(sub.add_parser(
        'play', help="publish a bag's image topic (and more), with progress"))
    cmp = sub.add_parser('compare', help="compare a replay's detections with a reference",
                         description=__doc__)
    cmp.add_argument('run', help='JSON lines of the replay (bag play --record)')
    cmp.add_argument('reference', help='JSON lines of the reference: another replay of the '
                                       'bag, or `vehicle-detection detect` of its video')
    cmp.add_argument('--iou', type=float, default=0.5, help='IoU for a match')
    cmp.add_argument('--min-recall', type=float, default=MIN_RECALL,
                     help=f'exit 1 when recall is below this (default {MIN_RECALL})')
    cmp.add_argument('--min-precision', type=float, default=0.0,
                     help='exit 1 when precision is below this (default 0: not checked)')


def run(args: argparse.Namespace) -> int:
    """Dispatch to the bag action."""
    try:
        if args.bag_command == 'make':
            ensure_new(args.out)
            count = make_bag(args.source, args.out, args.fps, args.topic, args.storage,
                             pace=args.pace)
            print(f'wrote {count} frames to {args.out} ({args.storage}, {args.topic})')
            return 0 if count else 1
        if args.bag_command == 'compare':
            return compare_files(args)
        return bag_play.play(args)
    except (ValueError, SourceError, OSError) as error:
        print(f'error: {error}', file=sys.stderr)
        return 2


def compare_files(args: argparse.Namespace) -> int:
    """Print the comparison; 1 when it falls short of the minimums or joins no frame."""
    try:
        result = compare(load_records(args.run), load_records(args.reference), args.iou)
    except NoCommonFrames as error:
        print(f'FAIL {error}: were both made from the same bag or video?')
        return 1
    alone = (f', {result.unmatched_run_frames} replayed frames without a reference frame'
             if result.unmatched_run_frames else '')
    print(f'frames {result.frames} (joined by {result.joined_by}{alone}): precision '
          f'{result.precision:.3f}, recall {result.recall:.3f} (tp {result.true_positives}, '
          f'fp {result.false_positives}, fn {result.false_negatives})')
    short = [f'{name} {value:.3f} < {minimum:g}' for name, value, minimum in (
        ('recall', result.recall, args.min_recall),
        ('precision', result.precision, args.min_precision)) if value < minimum]
    if short:
        print(f'FAIL {", ".join(short)}')
        return 1
    return 0
