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
``vehicle-detection validate record``: the camera's frames and the system's counts, as a bag.

Subscribes to the image topic and to ``traffic_counts`` while the system
runs, and writes every frame as JPEG (``<topic>/compressed``) and every
counts status into one rosbag2, until ``--duration`` seconds of frames,
``--frames`` frames, or Ctrl-C. The executor only queues; encoding and
writing run on a thread of their own. After the last frame (Ctrl-C
included) it waits ``--settle`` seconds for the statuses of the frames
still in the detector, then closes the bag.
"""

from __future__ import annotations

import argparse
from pathlib import Path
import queue
import sys
import threading
import time
from typing import Any, Optional, Tuple

from vehicle_detection.core.system.bag_tools import ensure_new, STORAGES
from vehicle_detection.core.validation.recording import COUNTS_TOPIC, RecordingWriter

QUEUE_FRAMES = 64  # frames waiting for the writer: ~6 s at 10 fps
STOP_POLL_S = 0.1


def add_arguments(record: argparse.ArgumentParser) -> None:
    """Options of ``validate record``."""
    record.add_argument('out', help='bag folder to create')
    record.add_argument('--topic', default='/camera/image_raw', help='the camera image topic')
    record.add_argument('--counts-topic', default=COUNTS_TOPIC,
                        help="the bridge's counts status topic")
    record.add_argument('--duration', type=float, default=0.0, metavar='SECONDS',
                        help="stop after this many seconds of frames (by the frames' stamps; "
                             '0: until --frames or Ctrl-C)')
    record.add_argument('--frames', type=int, default=0, help='stop after this many frames')
    record.add_argument('--quality', type=int, default=85,
                        help='JPEG quality 1-100 (85: 21-28 KB a frame of the shared 352x288 and '
                             '426x320 clips)')
    record.add_argument('--reliability', choices=('best_effort', 'reliable'),
                        default='best_effort', help='QoS of the image subscription')
    record.add_argument('--settle', type=float, default=3.0, metavar='SECONDS',
                        help='wait this long after the last frame for its counts')
    record.add_argument('--counts-wait', type=float, default=10.0, metavar='SECONDS',
                        help="before the window opens, wait this long for the bridge's "
                             'counts publisher to be matched (its latest status first)')
    record.add_argument('--storage', choices=STORAGES, default='sqlite3')


def check(args: argparse.Namespace) -> None:
    """Refuse bad options before anything starts."""
    if min(args.duration, args.frames, args.settle, args.counts_wait) < 0:
        raise ValueError('--duration, --frames, --settle and --counts-wait must not be '
                         'negative')
    if not 1 <= args.quality <= 100:
        raise ValueError(f'--quality {args.quality}: 1 to 100')
    ensure_new(args.out)
    if not Path(args.out).resolve().parent.is_dir():
        raise ValueError(f'{args.out}: its folder does not exist')


class BagSink(threading.Thread):
    """Encodes frames and writes them and the statuses to the bag, off the executor."""

    def __init__(self, args: argparse.Namespace) -> None:
        super().__init__(name='validation-bag', daemon=True)
        self.args = args
        self.inbox: 'queue.Queue[Optional[Tuple[str, int, Any]]]' = queue.Queue(QUEUE_FRAMES)
        self.frames = self.statuses = self.dropped = 0
        self.first_ns: Optional[int] = None
        self.last_ns: Optional[int] = None
        self.error: Optional[BaseException] = None

    def offer(self, item: Tuple[str, int, Any]) -> None:
        """Queue a frame or status; a frame that finds the queue full is dropped (counted)."""
        try:
            self.inbox.put_nowait(item)
        except queue.Full:
            self.dropped += 1

    def run(self) -> None:
        """Write until the None that :meth:`finish` queues."""
        try:
            with RecordingWriter(self.args.out, self.args.topic, self.args.counts_topic,
                                 self.args.storage, self.args.quality) as writer:
                while (item := self.inbox.get()) is not None:
                    kind, stamp, payload = item
                    if kind == 'status':
                        writer.status(stamp, payload)
                        self.statuses += 1
                    else:
                        writer.frame(stamp, payload)
                        self.frames += 1
        except (OSError, ValueError) as error:  # the disk is full, or the bag cannot be made
            self.error = error
            while self.inbox.get() is not None:  # let the executor's puts go on to the end
                pass

    def finish(self) -> None:
        """Write what is queued, close the bag."""
        self.inbox.put(None)
        self.join()


def record(args: argparse.Namespace) -> int:
    """Record until the window is complete or Ctrl-C; print what the bag holds."""
    import json

    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from sensor_msgs.msg import Image
    from std_msgs.msg import String

    from vehicle_detection.ros.image_conv import ImageEncodingError, stamp_to_ns, to_bgr
    from vehicle_detection.ros.qos import COUNTS_RECORDER_QOS, image_qos
    from vehicle_detection.ros.spin import start_context, StopRequest

    check(args)
    sink = BagSink(args)
    sink.start()
    context = start_context()
    node = Node('validation_recorder', context=context)
    done = threading.Event()
    latest = {'frame_ns': 0, 'frames': 0}

    def on_image(msg: Image) -> None:
        try:
            frame = to_bgr(msg).copy()  # the message's buffer is not ours after the callback
        except ImageEncodingError as error:
            node.get_logger().warning(f'frame refused: {error}', throttle_duration_sec=10.0)
            return
        stamp = stamp_to_ns(msg.header.stamp)
        sink.first_ns = stamp if sink.first_ns is None else sink.first_ns
        sink.last_ns = latest['frame_ns'] = stamp
        sink.offer(('frame', stamp, frame))
        latest['frames'] += 1
        if (args.frames and latest['frames'] >= args.frames) or (
                args.duration and (stamp - sink.first_ns) / 1e9 >= args.duration):
            done.set()

    def on_status(msg: String) -> None:
        try:
            stamp = json.loads(msg.data).get('stamp')
        except (ValueError, AttributeError):
            stamp = None
        stamp_ns = round(stamp * 1e9) if isinstance(stamp, (int, float)) else (
            latest['frame_ns'] or time.time_ns())
        sink.inbox.put(('status', stamp_ns, msg.data))  # every status matters: wait for room

    counts = node.create_subscription(String, args.counts_topic, on_status,
                                      COUNTS_RECORDER_QOS)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    stop = StopRequest().install()
    try:
        # The window opens once the bridge's statuses reach us: a status it made while we were
        # not matched would be lost, and its crossings could not be placed in the window.
        matched_by = time.monotonic() + args.counts_wait
        while (context.ok() and not stop.is_set() and not counts.get_publisher_count()
               and time.monotonic() < matched_by):
            executor.spin_once(timeout_sec=STOP_POLL_S)
        if not counts.get_publisher_count():
            print(f'warning: nothing publishes {args.counts_topic} (is the bridge counting, in '
                  'this ROS_DOMAIN_ID?): recording frames; the report needs its counts',
                  file=sys.stderr, flush=True)
        images = node.create_subscription(Image, args.topic, on_image,
                                          image_qos(10, args.reliability))
        print(f'recording {args.topic} and {args.counts_topic} to {args.out} (Ctrl-C to '
              'stop)', file=sys.stderr, flush=True)
        while context.ok() and not stop.is_set() and not done.is_set():
            executor.spin_once(timeout_sec=STOP_POLL_S)
        node.destroy_subscription(images)  # the window is closed: no more frames
        # Ctrl-C too ends the window only: the counts of its last frames are still due.
        print(f'window closed; waiting {args.settle:g} s for its counts', file=sys.stderr,
              flush=True)
        settle_until = time.monotonic() + args.settle
        while context.ok() and time.monotonic() < settle_until:
            executor.spin_once(timeout_sec=STOP_POLL_S)
    finally:
        executor.shutdown()
        node.destroy_node()
        context.try_shutdown()
        sink.finish()
        stop.restore()
    return summarize(args, sink)


def summarize(args: argparse.Namespace, sink: BagSink) -> int:
    """Print what was recorded; 1 when the bag lacks frames or the system's counts."""
    if sink.error is not None:
        print(f'error: writing {args.out}: {sink.error}', file=sys.stderr)
        return 1
    span = (sink.last_ns - sink.first_ns) / 1e9 if sink.first_ns and sink.last_ns else 0.0
    size = sum(p.stat().st_size for p in Path(args.out).rglob('*') if p.is_file())
    print(f'recorded {sink.frames} frames over {span:.1f} s and {sink.statuses} counts '
          f'statuses to {args.out} ({size / 1e6:.1f} MB)'
          + (f'; {sink.dropped} frames dropped (the disk is slower than the camera)'
             if sink.dropped else ''))
    if not sink.frames:
        print(f'error: no frame on {args.topic}: is the camera running?', file=sys.stderr)
        return 1
    if not sink.statuses:
        print(f'error: no status on {args.counts_topic}: the bag holds no counts of the system '
              '(is the cloud bridge running, with counting_lines?)', file=sys.stderr)
        return 1
    return 0
