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
Image transport benchmark: publish-to-callback latency of 720p bgr8 between processes.

One run measures, on the same machine, a publisher process and a subscriber
process over real Fast DDS for each combination of:

- transport set-up: ``jemalloc`` (what the nodes do where it is installed: they
  relaunch with jemalloc, ``allocator.py``, and take the large shared-memory
  profile), ``tuned`` (glibc's malloc, ``ros/transport.py``: heap-kept large
  buffers and the profile) and ``untuned`` (defaults);
- message building: ``array`` (``to_image_msg``: one memcpy into an
  ``array.array``, what the camera node publishes) and ``bytes``
  (``array.array('B', frame.tobytes())``, the plain bulk assignment);

plus, for scale, a plain NumPy copy of the frame. Prints median and p95 per
series, the ratios, and as its last line one JSON object with every figure.
Target: ``array`` median at most 5 ms with jemalloc and with tuned glibc.

    python bench/transport.py [--frames 80] [--rate 20]
"""

from __future__ import annotations

import argparse
import array
import json
import os
import statistics
import subprocess
import sys
import threading
import time

from bench_stats import percentile
import numpy as np

from vehicle_detection.allocator import CHOICE_ENV, jemalloc_library, relaunch_plan
from vehicle_detection.ros.transport import tune_transport

WIDTH, HEIGHT = 1280, 720
VARIANTS = ('array', 'bytes')
TARGET_MS = 5.0


def make_msg(variant: str, frame: np.ndarray):
    """Build the message the way ``variant`` does, stamped just before publishing."""
    from sensor_msgs.msg import Image

    from vehicle_detection.ros.image_conv import stamp_from_ns, to_image_msg
    if variant == 'array':
        msg = to_image_msg(frame, stamp_from_ns(0), 'bench')
    else:
        msg = Image(height=HEIGHT, width=WIDTH, encoding='bgr8', step=WIDTH * 3)
        msg.header.frame_id = 'bench'
        msg.data = array.array('B', frame.tobytes())
    msg.header.stamp = stamp_from_ns(time.time_ns())
    return msg


def start_ros(name: str):
    """Init rclpy in a fresh context and return (context, node)."""
    import rclpy
    from rclpy.context import Context
    from rclpy.node import Node
    context = Context()
    rclpy.init(context=context)
    return context, Node(name, context=context)


def qos():
    """Reliable, shallow: every frame is counted, none queue up."""
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    return QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)


def publisher(frames: int, rate: float) -> None:
    """Publish ``frames`` frames per variant at ``rate`` Hz once the subscriber matched."""
    from sensor_msgs.msg import Image
    context, node = start_ros('transport_pub')
    pubs = {v: node.create_publisher(Image, f'bench/{v}', qos()) for v in VARIANTS}
    deadline = time.monotonic() + 30
    while any(p.get_subscription_count() == 0 for p in pubs.values()):
        if time.monotonic() > deadline:
            raise SystemExit('subscriber never matched')
        time.sleep(0.05)
    frame = np.random.default_rng(0).integers(0, 255, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    time.sleep(0.5)  # discovery settles on both sides before timing starts
    for variant in VARIANTS:
        for _ in range(frames + 5):  # the first five warm up and are not counted
            start = time.monotonic()
            pubs[variant].publish(make_msg(variant, frame))
            time.sleep(max(0.0, 1.0 / rate - (time.monotonic() - start)))
    node.destroy_node()
    context.try_shutdown()


def subscriber(frames: int) -> None:
    """Collect latencies until every variant has its frames; print them as JSON."""
    from rclpy.executors import SingleThreadedExecutor
    from sensor_msgs.msg import Image

    from vehicle_detection.ros.image_conv import stamp_to_ns
    context, node = start_ros('transport_sub')
    latencies: dict = {v: [] for v in VARIANTS}
    done = threading.Event()

    def on_image(variant: str, msg) -> None:
        now = time.time_ns()
        view = np.frombuffer(msg.data, np.uint8)  # what a consumer does: no copy
        stamp_ns = stamp_to_ns(msg.header.stamp)
        assert view.size == WIDTH * HEIGHT * 3
        latencies[variant].append((now - stamp_ns) / 1e6)
        if all(len(v) >= frames + 5 for v in latencies.values()):
            done.set()

    for variant in VARIANTS:
        node.create_subscription(Image, f'bench/{variant}',
                                 lambda m, v=variant: on_image(v, m), qos())
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    threading.Thread(target=executor.spin, daemon=True).start()
    done.wait(timeout=120)
    executor.shutdown()
    node.destroy_node()
    context.try_shutdown()
    print(json.dumps({v: values[5:] for v, values in latencies.items()}))


def measure(setup: str, frames: int, rate: float) -> dict:
    """Run one publisher/subscriber pair with ``setup`` and return the latencies."""
    env = dict(os.environ, VD_BENCH_SETUP=setup,
               ROS_DOMAIN_ID=str(60 + os.getpid() % 30),
               ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST')
    if setup == 'jemalloc':
        # The preload and options the nodes relaunch with (a MALLOC_CONF of yours kept).
        plan = relaunch_plan({**env, CHOICE_ENV: 'jemalloc', 'LD_PRELOAD': ''},
                             jemalloc_library(), loaded=False)
        if plan is None:
            raise SystemExit('jemalloc is not installed: apt-get install libjemalloc2')
        env = plan
    args = ['--frames', str(frames), '--rate', str(rate)]
    sub = subprocess.Popen([sys.executable, __file__, '--role', 'sub', *args], env=env,
                           stdout=subprocess.PIPE, text=True)
    pub = subprocess.Popen([sys.executable, __file__, '--role', 'pub', *args], env=env)
    pub.wait(timeout=300)
    output, _ = sub.communicate(timeout=150)
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    """Measure every setup and variant, then report."""
    parser = argparse.ArgumentParser(description='720p image transport latency')
    parser.add_argument('--frames', type=int, default=80)
    parser.add_argument('--rate', type=float, default=20.0)
    parser.add_argument('--role', default='main', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role != 'main':
        if os.environ.get('VD_BENCH_SETUP') in ('tuned', 'jemalloc'):
            tune_transport()  # under jemalloc only the shared-memory profile applies
        (publisher(args.frames, args.rate) if args.role == 'pub' else subscriber(args.frames))
        return
    for name in ('FASTDDS_DEFAULT_PROFILES_FILE', 'FASTRTPS_DEFAULT_PROFILES_FILE'):
        os.environ.pop(name, None)
    result: dict = {'resolution': f'{WIDTH}x{HEIGHT}', 'frames': args.frames,
                    'rate_hz': args.rate, 'target_median_ms': TARGET_MS}
    for setup in ('jemalloc', 'tuned', 'untuned'):
        series = measure(setup, args.frames, args.rate)
        for variant, values in series.items():
            key = f'{setup}_{variant}'
            result[f'{key}_received'] = len(values)
            result[f'{key}_median_ms'] = round(statistics.median(values), 3)
            result[f'{key}_p95_ms'] = round(percentile(values, 0.95), 3)
            print(f'{setup:>8} {variant:>5}: median {result[f"{key}_median_ms"]:7.3f} ms, '
                  f'p95 {result[f"{key}_p95_ms"]:7.3f} ms ({len(values)} frames)')
    frame = np.random.default_rng(1).integers(0, 255, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    copies = []
    for _ in range(50):
        start = time.perf_counter()
        frame.copy()
        copies.append((time.perf_counter() - start) * 1e3)
    result['numpy_copy_ms'] = round(statistics.median(copies), 3)
    tuned = result['tuned_array_median_ms']
    result['tuned_array_median_over_target'] = round(tuned / TARGET_MS, 3)
    result['untuned_over_tuned_array_median'] = round(
        result['untuned_array_median_ms'] / tuned, 2)
    result['tuned_bytes_over_array_median'] = round(result['tuned_bytes_median_ms'] / tuned, 2)
    result['tuned_array_over_numpy_copy'] = round(tuned / result['numpy_copy_ms'], 1)
    result['jemalloc_over_tuned_array_median'] = round(
        result['jemalloc_array_median_ms'] / tuned, 2)
    shipped = result['jemalloc_array_median_ms']
    result['meets_target'] = max(tuned, shipped) <= TARGET_MS
    print(f'numpy copy of one frame: {result["numpy_copy_ms"]} ms; array median '
          f'{shipped} ms with jemalloc, {tuned} ms tuned glibc, vs target {TARGET_MS} ms')
    print(json.dumps(result))


if __name__ == '__main__':
    main()
