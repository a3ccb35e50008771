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
``vehicle-detection bag play``: publish a bag's topics at the recorded pace.

Plays the image topic with the camera info beside it (or ``--topics``), from
``--start-offset`` seconds into the bag, at ``--rate``, once or ``--loop``;
with ``--clock`` it also publishes ``/clock`` from the bag's time (like ``ros2
bag play --clock``), so nodes with ``use_sim_time: true`` run on the bag's
time: their timers, their ``/diagnostics`` stamps. With ``--record`` the
replay's ``/detections`` are written as JSON lines for ``bag compare``.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from typing import Any, Dict, List, Optional, TYPE_CHECKING

from vehicle_detection.core.system.bag_compare import write_record
from vehicle_detection.core.system.bag_tools import (
    bag_topics, count_messages, first_message, header_stamp_ns, IMAGE_TYPE, images_before,
    INFO_TYPE, read_messages)
from vehicle_detection.core.system.image_stream import camera_info_topic

if TYPE_CHECKING:  # rclpy is imported when a bag is played, not with the CLI
    from vehicle_detection.ros.spin import StopRequest

CLOCK_HZ = 40.0  # /clock between messages, as ros2 bag play --clock


def add_arguments(play: argparse.ArgumentParser) -> None:
    """Options of ``bag play``."""
    play.add_argument('bag')
    play.add_argument('--topic', default='/camera/image_raw',
                      help='the image topic: progress, --record and --start-offset go by it')
    play.add_argument('--topics', nargs='*', default=None, metavar='TOPIC',
                      help='topics to publish with the image topic (default: the camera_info '
                           'beside it, when the bag has one; none given: the image only)')
    play.add_argument('--rate', type=float, default=1.0, help='speed factor (2: twice as fast)')
    play.add_argument('--clock', type=float, nargs='?', const=CLOCK_HZ, default=0.0,
                      metavar='HZ', help="publish /clock from the bag's time (default "
                                         f'{CLOCK_HZ:g} Hz between messages): nodes with '
                                         'use_sim_time: true follow the bag')
    play.add_argument('--loop', action='store_true', help='play again from the start (or '
                                                          'the offset) until Ctrl-C')
    play.add_argument('--start-offset', type=float, default=0.0, metavar='SECONDS',
                      help='start this many seconds into the bag')
    play.add_argument('--record', default='', metavar='FILE.jsonl',
                      help='also write the /detections of the replay as JSON lines')
    play.add_argument('--settle', type=float, default=10.0,
                      help='seconds to wait for the subscribers before the first frame and '
                           'for the last detections after the last frame')
    play.add_argument('--subscribers', type=int, default=1, metavar='N',
                      help='subscribers of the image topic to wait for (up to --settle) '
                           'before the first frame: 2 for the detector and a recorder such as '
                           '`validate record`')


class Player:
    """Publishers of one replay: the bag's topics, /clock, and the /detections recorder."""

    def __init__(self, node: Any, topics: Dict[str, str], clock_hz: float,
                 record: bool) -> None:
        """Create a publisher per topic (``topics``: name -> type) and the optional rest."""
        from rosgraph_msgs.msg import Clock
        from rosidl_runtime_py.utilities import get_message
        from vision_msgs.msg import Detection2DArray

        from vehicle_detection.ros.qos import image_qos, reliable_qos
        self.types = {topic: get_message(kind) for topic, kind in topics.items()}
        self.publishers = {
            topic: node.create_publisher(self.types[topic], topic, image_qos(5) if kind in (
                IMAGE_TYPE, INFO_TYPE) else reliable_qos(10)) for topic, kind in topics.items()}
        self.clock = node.create_publisher(Clock, '/clock', reliable_qos(1)) if clock_hz else None
        self.clock_message = Clock
        self.received: Dict[int, List[Dict[str, Any]]] = {}
        self.frames: Dict[int, int] = {}  # image stamp -> its index in the bag
        self.first_stamp = 0  # stamp of the bag's first image
        self.skipped = 0  # images before --start-offset
        self.last_stamp = -1
        self.last_arrived = threading.Event()
        self.subscription = node.create_subscription(
            Detection2DArray, 'detections', self._on_detections, reliable_qos(100)
        ) if record else None

    def _on_detections(self, msg: Any) -> None:
        from vehicle_detection.ros.detection_msgs import to_sightings
        from vehicle_detection.ros.image_conv import stamp_to_ns
        stamp = stamp_to_ns(msg.header.stamp)
        self.received[stamp] = [{'track_id': s.track_id, 'class_name': s.class_name,
                                 'confidence': round(s.confidence, 4),
                                 'bbox': [round(v, 1) for v in s.bbox]}
                                for s in to_sightings(msg)]
        if stamp == self.last_stamp:
            self.last_arrived.set()

    def tick(self, bag_time_ns: int) -> None:
        """Publish the bag's time on /clock (with --clock)."""
        if self.clock is not None:
            from vehicle_detection.ros.image_conv import stamp_from_ns
            self.clock.publish(self.clock_message(clock=stamp_from_ns(bag_time_ns)))

    def ready(self, image_topic: str, subscribers: int = 1) -> bool:
        """Whether the subscribers that matter are matched (the detector, its detections)."""
        return self.publishers[image_topic].get_subscription_count() >= subscribers and (
            self.subscription is None or self.subscription.get_publisher_count() > 0)


def chosen_topics(args: argparse.Namespace) -> Dict[str, str]:
    """Return topic -> type of what to play, refusing topics the bag lacks."""
    present = dict(bag_topics(args.bag))
    extra = args.topics if args.topics is not None else [
        camera_info_topic(args.topic)] if camera_info_topic(args.topic) in present else []
    wanted = [args.topic, *(t for t in extra if t != args.topic)]
    missing = [t for t in wanted if t not in present]
    if missing:
        raise ValueError(f'{args.bag} has no topic {", ".join(missing)} '
                         f'(topics: {", ".join(sorted(present))})')
    return {topic: present[topic] for topic in wanted}


def play(args: argparse.Namespace) -> int:
    """Publish the bag's topics at the recorded pace (scaled by ``--rate``)."""
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node

    from vehicle_detection.ros.spin import process_stop_request, start_context

    if args.rate <= 0 or args.start_offset < 0 or args.clock < 0 or args.subscribers < 0:
        raise ValueError('--rate must be positive, --start-offset, --clock and --subscribers '
                         'not negative')
    topics = chosen_topics(args)
    first_ns, first_raw = first_message(args.bag, args.topic)
    start_ns = first_ns + round(args.start_offset * 1e9)
    skipped = images_before(args.bag, args.topic, start_ns)[0] if args.start_offset else 0
    total = count_messages(args.bag, args.topic) - skipped
    if total <= 0:
        raise ValueError(f'--start-offset {args.start_offset:g}: the bag ends before that')
    # Ctrl-C only sets a flag that the loops read: as an exception it could land in the
    # middle of a publish or of the shutdown below (the player then exited 1).
    stop = process_stop_request()
    context = start_context()
    node = Node('bag_player', context=context)
    player = Player(node, topics, args.clock, bool(args.record))
    player.first_stamp, player.skipped = header_stamp_ns(first_raw), skipped
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    try:
        # Messages published before discovery completes are lost: wait for the
        # subscribers (and, when recording, for /detections) to be matched, with a limit.
        deadline = time.monotonic() + args.settle
        while time.monotonic() < deadline and not player.ready(args.topic, args.subscribers):
            if stop.wait(0.05):
                break
        matched = player.publishers[args.topic].get_subscription_count()
        if matched < args.subscribers and not stop.is_set():
            print(f'warning: {matched} of {args.subscribers} subscribers of {args.topic} '
                  f'matched in {args.settle:g} s: playing anyway (a subscriber matched later '
                  'misses the first frames)', file=sys.stderr)
        stop.wait(0.5)  # matching is seen here a little before the other side is ready
        while play_once(args, player, start_ns, total, stop) and args.loop:
            pass  # a pass asked to stop sends nothing more: 0, the loop ends
        if args.record and not stop.is_set():
            player.last_arrived.wait(args.settle)
        if stop.is_set():
            print('\ninterrupted', file=sys.stderr)
    finally:
        if args.record:
            save_record(args.record, player)
        executor.shutdown()
        spinner.join(5.0)
        node.destroy_node()
        context.try_shutdown()
        stop.hold_until_exit()
    return 0


def play_once(args: argparse.Namespace, player: Player, start_ns: int, total: int,
              stop: StopRequest) -> int:
    """Publish the bag once from ``start_ns`` until ``stop``; return the images sent."""
    from rclpy.serialization import deserialize_message

    from vehicle_detection.ros.image_conv import stamp_to_ns
    wall_start, bag_start = time.monotonic(), start_ns
    step = 1.0 / args.clock if args.clock else None
    index = 0
    for topic, _kind, timestamp, raw in read_messages(args.bag, list(player.publishers),
                                                      start_ns):
        if stop.is_set():  # asked between two waits (a fast --rate may not wait at all)
            break
        due = wall_start + (timestamp - bag_start) / 1e9 / args.rate
        while (now := time.monotonic()) < due:
            player.tick(min(timestamp, bag_start + round((now - wall_start) * args.rate * 1e9)))
            if stop.wait(min(due - now, step) if step else due - now):
                print(file=sys.stderr)
                return index
        player.tick(timestamp)
        msg = deserialize_message(raw, player.types[topic])
        if topic == args.topic:
            player.last_stamp = stamp_to_ns(msg.header.stamp)
            player.frames[player.last_stamp] = player.skipped + index
            index += 1
        player.publishers[topic].publish(msg)
        if topic == args.topic:
            done = int(30 * index / max(total, 1))
            print(f'\r[{"#" * done}{"." * (30 - done)}] {index}/{total}', end='',
                  file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return index


def save_record(path: str, player: Player) -> None:
    """Write the recorded detections, each with its frame's place in the bag."""
    with open(path, 'w', encoding='utf-8') as stream:
        for stamp in sorted(player.received):
            index: Optional[int] = player.frames.get(stamp)
            write_record(stream, stamp, player.received[stamp], index,
                         (stamp - player.first_stamp) / 1e9 if index is not None else None)
    print(f'recorded detections of {len(player.received)} frames to {path}')
