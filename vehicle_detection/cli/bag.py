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
rosbag2 tools: make a bag, play its images, compare a replay's detections.

``bag make`` writes a video or image folder as a bag, ``bag play`` publishes
its image topic (and can record the replay's /detections), ``bag compare``
matches those against a stored reference.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from typing import Any, Dict, List

from vehicle_detection.core.camera.sources import SourceError
from vehicle_detection.core.system.bag_tools import (
    compare, count_messages, ensure_new, load_records, make_bag, read_images, STORAGES,
    write_record)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``vehicle-detection bag``."""
    sub = parser.add_subparsers(dest='bag_command', required=True, metavar='ACTION')
    make = sub.add_parser('make', help='write a bag from a video or an image folder')
    make.add_argument('source', help='video file or image folder')
    make.add_argument('out', help='bag folder to create')
    make.add_argument('--fps', type=float, default=10.0, help='frame rate of the stamps')
    make.add_argument('--topic', default='/camera/image_raw')
    make.add_argument('--storage', choices=STORAGES, default='sqlite3')
    play = sub.add_parser('play', help="publish a bag's image topic, with progress")
    play.add_argument('bag')
    play.add_argument('--topic', default='/camera/image_raw')
    play.add_argument('--rate', type=float, default=1.0, help='speed factor (2: twice as fast)')
    play.add_argument('--record', default='', metavar='FILE.jsonl',
                      help='also write the /detections of the replay as JSON lines')
    play.add_argument('--settle', type=float, default=10.0,
                      help='seconds to wait for the last detections after the last frame')
    cmp = sub.add_parser('compare', help="compare a replay's detections with a reference")
    cmp.add_argument('run', help='JSON lines of the replay (bag play --record)')
    cmp.add_argument('reference', help='JSON lines of the reference')
    cmp.add_argument('--iou', type=float, default=0.5, help='IoU for a match')
    cmp.add_argument('--min-recall', type=float, default=0.0,
                     help='exit 1 when recall or precision is below this')


def run(args: argparse.Namespace) -> int:
    """Dispatch to the bag action."""
    try:
        if args.bag_command == 'make':
            ensure_new(args.out)
            count = make_bag(args.source, args.out, args.fps, args.topic, args.storage)
            print(f'wrote {count} frames to {args.out} ({args.storage}, {args.topic})')
            return 0 if count else 1
        if args.bag_command == 'compare':
            result = compare(load_records(args.run), load_records(args.reference), args.iou)
            print(f'frames {result.frames}: precision {result.precision:.3f}, recall '
                  f'{result.recall:.3f} (tp {result.true_positives}, fp '
                  f'{result.false_positives}, fn {result.false_negatives})')
            return 0 if min(result.precision, result.recall) >= args.min_recall else 1
        return play(args)
    except (ValueError, SourceError, OSError) as error:
        print(f'error: {error}', file=sys.stderr)
        return 2


def play(args: argparse.Namespace) -> int:
    """Publish the bag's images at the recorded pace (scaled by ``--rate``)."""
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import Image

    from vehicle_detection.ros.detection_msgs import to_sightings
    from vehicle_detection.ros.image_conv import stamp_to_ns
    from vehicle_detection.ros.qos import image_qos, reliable_qos
    from vehicle_detection.ros.spin import start_context
    from vision_msgs.msg import Detection2DArray

    total = count_messages(args.bag, args.topic)
    context = start_context()
    node = Node('bag_player', context=context)
    publisher = node.create_publisher(Image, args.topic, image_qos(5))
    received: Dict[int, List[Dict[str, Any]]] = {}
    last = threading.Event()
    last_stamp = [-1]

    def on_detections(msg: Detection2DArray) -> None:
        stamp = stamp_to_ns(msg.header.stamp)
        received[stamp] = [{'track_id': s.track_id, 'class_name': s.class_name,
                            'confidence': round(s.confidence, 4),
                            'bbox': [round(v, 1) for v in s.bbox]} for s in to_sightings(msg)]
        if stamp == last_stamp[0]:
            last.set()

    subscription = node.create_subscription(
        Detection2DArray, 'detections', on_detections,
        reliable_qos(100)) if args.record else None
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    pause = threading.Event()
    try:
        # Frames published before discovery completes are lost: wait for the detector
        # (and, when recording, for its /detections) to be matched, with a limit.
        deadline = time.monotonic() + args.settle
        while time.monotonic() < deadline and (
                publisher.get_subscription_count() == 0
                or (subscription is not None and subscription.get_publisher_count() == 0)):
            pause.wait(0.05)
        pause.wait(0.5)  # matching is seen here a little before the other side is ready
        start_wall, first = time.monotonic(), None
        for index, (timestamp, raw) in enumerate(read_images(args.bag, args.topic), 1):
            first = timestamp if first is None else first
            pause.wait(max(0.0, start_wall + (timestamp - first) / 1e9 / args.rate
                           - time.monotonic()))
            msg = deserialize_message(raw, Image)
            last_stamp[0] = stamp_to_ns(msg.header.stamp)
            publisher.publish(msg)
            done = int(30 * index / max(total, 1))
            print(f'\r[{"#" * done}{"." * (30 - done)}] {index}/{total}', end='',
                  file=sys.stderr, flush=True)
        print(file=sys.stderr)
        if args.record:
            last.wait(args.settle)
            with open(args.record, 'w', encoding='utf-8') as stream:
                for stamp in sorted(received):
                    write_record(stream, stamp, received[stamp])
            print(f'recorded detections of {len(received)} frames to {args.record}')
    except KeyboardInterrupt:
        print('\ninterrupted', file=sys.stderr)
    finally:
        executor.shutdown()
        spinner.join(5.0)
        node.destroy_node()
        context.try_shutdown()
    return 0
