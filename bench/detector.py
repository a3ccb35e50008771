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
Detector benchmark on 1280x720 frames, measured side by side in one run.

(a) raw ``session.run`` on an already-prepared input tensor: the limit of
    this CPU with this model;
(b) the full path: ``camera_node`` (a folder of 720p frames offered at
    ``--offer`` times the rate of (a), 1.25 by default: more than it can
    handle) -> ``detector_node`` -> ``/detections``, each in its own process,
    received here.

Both use the node's ONNX Runtime settings (``--threads``, 0: its default of
half the cores).

Targets: throughput (b)/(a) >= 0.85; p95 latency from capture stamp to
``/detections`` <= 1.3 x p95 of (a) + 10 ms. The last line is one JSON object.

    python bench/detector.py [--model ../shared/models/yolox_nano.onnx] [--seconds 20]
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from bench_stats import percentile
import cv2
import numpy as np

from vehicle_detection.core.detection.detector import Detector, DetectorSettings
from vehicle_detection.ros.transport import tune_transport

REPO = Path(__file__).resolve().parents[1]


def raw_throughput(model: str, seconds: float, threads: int) -> dict:
    """Measure (a): back-to-back ``infer`` on a prepared tensor."""
    detector = Detector(DetectorSettings(model, backend='onnxruntime', tracking=False,
                                         threads=threads))
    tensor = np.random.default_rng(0).random((1, 3, *detector.input_hw), np.float32) * 255
    times = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        start = time.perf_counter()
        detector.backend.infer(tensor)
        times.append((time.perf_counter() - start) * 1e3)
    return {'fps': len(times) / sum(times) * 1e3, 'p50_ms': statistics.median(times),
            'p95_ms': percentile(times, 0.95), 'runs': len(times)}


def make_frames(folder: Path, samples: Path) -> None:
    """Write 720p frames made from the sample photos, shifted so that they differ."""
    photos = [cv2.imread(str(p)) for p in sorted(samples.iterdir())
              if p.suffix in ('.png', '.jpg')]
    for index in range(20):
        photo = photos[index % len(photos)]
        frame = cv2.resize(photo, (1280 + 40, 720 + 40))[index:index + 720, index:index + 1280]
        cv2.imwrite(str(folder / f'frame{index:03d}.png'), frame)


def full_path(model: str, samples: Path, offered_fps: float, seconds: float,
              threads: int) -> dict:
    """Measure (b): camera and detector nodes as processes, /detections received here."""
    import rclpy
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from vision_msgs.msg import Detection2DArray

    from vehicle_detection.ros.image_conv import stamp_to_ns
    env = dict(os.environ, ROS_DOMAIN_ID=str(40 + os.getpid() % 30),
               ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST')
    os.environ.update(ROS_DOMAIN_ID=env['ROS_DOMAIN_ID'])
    bin_dir = Path(sys.prefix) / 'bin'
    with tempfile.TemporaryDirectory() as folder:
        make_frames(Path(folder), samples)
        processes = [
            subprocess.Popen([str(bin_dir / 'detector_node'), '--ros-args', '-p',
                              f'model_path:={model}', '-p', 'backend:=onnxruntime',
                              '-p', f'threads:={threads}'], env=env),
            subprocess.Popen([str(bin_dir / 'camera_node'), '--ros-args', '-p',
                              f'source:={folder}', '-p', 'loop:=true', '-p',
                              f'fps:={offered_fps:.1f}'], env=env)]
        context = Context()
        rclpy.init(context=context)
        node = Node('bench_detector', context=context)
        arrivals: list = []
        node.create_subscription(Detection2DArray, 'detections', lambda m: arrivals.append(
            (time.monotonic(), (time.time_ns() - stamp_to_ns(m.header.stamp)) / 1e6)), 10)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        threading.Thread(target=executor.spin, daemon=True).start()
        started = threading.Event()
        deadline = time.monotonic() + 60
        while len(arrivals) < 5 and time.monotonic() < deadline:
            started.wait(0.1)  # warm-up: model load and discovery, not measured
        begin = len(arrivals)
        cpu_before = [cpu_seconds(p.pid) for p in processes]
        started.wait(seconds)
        window = arrivals[begin:]
        cpu = [(cpu_seconds(p.pid) - before) / seconds
               for p, before in zip(processes, cpu_before)]
        for process in processes:
            process.send_signal(2)
        for process in processes:
            process.wait(timeout=20)
        executor.shutdown()
        node.destroy_node()
        context.try_shutdown()
    if len(window) < 2:
        raise SystemExit(f'(b) received {len(window)} /detections messages in {seconds:.0f} s: '
                         'see the node output above')
    latencies = [lat for _, lat in window]
    span = window[-1][0] - window[0][0]
    return {'fps': (len(window) - 1) / span, 'p50_ms': statistics.median(latencies),
            'p95_ms': percentile(latencies, 0.95), 'messages': len(window),
            'detector_cpu': cpu[0], 'camera_cpu': cpu[1]}


def cpu_seconds(pid: int) -> float:
    """Return the user+system CPU seconds a process has used (Linux /proc)."""
    fields = Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def main() -> None:
    """Measure (a) then (b) and report the ratios."""
    parser = argparse.ArgumentParser(description='detector throughput and latency, 720p')
    parser.add_argument('--model', default=str(REPO.parent / 'shared/models/yolox_nano.onnx'))
    parser.add_argument('--samples', default=str(REPO.parent / 'shared/samples'))
    parser.add_argument('--seconds', type=float, default=20.0)
    parser.add_argument('--offer', type=float, default=1.25,
                        help='camera rate as a multiple of the raw fps of (a)')
    parser.add_argument('--threads', type=int, default=0,
                        help='ONNX Runtime threads for (a) and the node (0: its default)')
    args = parser.parse_args()
    tune_transport()
    raw = raw_throughput(args.model, args.seconds / 2, args.threads)
    print(f'(a) raw session.run: {raw["fps"]:.1f} fps, p50 {raw["p50_ms"]:.1f} ms, '
          f'p95 {raw["p95_ms"]:.1f} ms')
    offered = args.offer * raw['fps']
    full = full_path(args.model, Path(args.samples), offered, args.seconds, args.threads)
    print(f'(b) camera ({offered:.0f} fps offered) -> detector -> /detections: '
          f'{full["fps"]:.1f} fps, p50 {full["p50_ms"]:.1f} ms, p95 {full["p95_ms"]:.1f} ms; '
          f'CPU cores used: camera {full["camera_cpu"]:.2f}, '
          f'detector {full["detector_cpu"]:.2f}')
    latency_limit = 1.3 * raw['p95_ms'] + 10.0
    result = {'raw_fps': round(raw['fps'], 2), 'raw_p50_ms': round(raw['p50_ms'], 2),
              'raw_p95_ms': round(raw['p95_ms'], 2), 'full_fps': round(full['fps'], 2),
              'full_p50_ms': round(full['p50_ms'], 2), 'full_p95_ms': round(full['p95_ms'], 2),
              'offered_fps': round(offered, 1),
              'camera_cpu_cores': round(full['camera_cpu'], 2),
              'detector_cpu_cores': round(full['detector_cpu'], 2),
              'throughput_ratio': round(full['fps'] / raw['fps'], 3),
              'latency_limit_ms': round(latency_limit, 2),
              'latency_over_limit': round(full['p95_ms'] / latency_limit, 3)}
    result['meets_targets'] = (result['throughput_ratio'] >= 0.85
                               and result['latency_over_limit'] <= 1.0)
    print(f'throughput (b)/(a) = {result["throughput_ratio"]} (target >= 0.85); p95 '
          f'{result["full_p95_ms"]} ms vs limit {result["latency_limit_ms"]} ms')
    print(json.dumps(result))


if __name__ == '__main__':
    main()
