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

(a) raw ``session.run`` on an already-prepared input tensor (a sample photo,
    letterboxed): the limit of this CPU with this model;
(b) the full path: camera node (a folder of 720p frames offered at
    ``--offer`` times the rate of (a), 1.25 by default: more than it can
    handle) -> detector node -> ``/detections``, received in this process, in
    two layouts (``--layouts``):
    ``composed``: the product's main job, ``vehicle-detection run`` (camera,
    detector, cloud bridge with uploads off, console monitor in one process,
    frames handed over in-process); held to the targets;
    ``processes``: ``camera_node`` and ``detector_node`` processes, frames over
    DDS shared memory, as ``ros2 launch`` starts them; reported alongside.

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

from vehicle_detection.core.detection.detector import Detector, DetectorSettings
from vehicle_detection.ros.transport import tune_transport

REPO = Path(__file__).resolve().parents[1]
LAYOUTS = {'composed': 'camera + detector composed in one process (`vehicle-detection run`)',
           'processes': 'camera_node and detector_node processes'}


def raw_throughput(model: str, samples: Path, seconds: float, threads: int) -> dict:
    """Measure (a): back-to-back ``session.run`` on a prepared 720p sample photo."""
    detector = Detector(DetectorSettings(model, backend='onnxruntime', tracking=False,
                                         threads=threads))
    photo = cv2.imread(str(sorted(samples.glob('*.jpg'))[0]))
    tensor = detector.prepare(cv2.resize(photo, (1280, 720))).tensor
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


def node_processes(layout: str, model: str, folder: str, offered_fps: float, threads: int,
                   env: dict) -> list:
    """Start camera and detector: composed in one process, or one process each."""
    bin_dir = Path(sys.prefix) / 'bin'
    params = {'camera_node': {'loop': 'true', 'source': folder, 'fps': f'{offered_fps:.1f}'},
              'detector_node': {'model_path': model, 'backend': 'onnxruntime',
                                'threads': str(threads)}}
    if layout == 'composed':
        # The product's main job: camera, detector, cloud bridge (uploads off) and the
        # console monitor in one process, frames handed over in-process.
        params['cloud_bridge_node'] = {'enabled': 'false', 'data_dir': f'{folder}/var'}
        command = [str(bin_dir / 'vehicle-detection'), 'run', '--quiet']
        for node, values in params.items():
            for name, value in values.items():
                command += ['--set', f'{node}.{name}={value}']
        return [subprocess.Popen(command, env=env)]
    return [subprocess.Popen([str(bin_dir / node), '--ros-args'] + [
        arg for name, value in values.items() for arg in ('-p', f'{name}:={value}')], env=env)
        for node, values in params.items()]


def full_path(layout: str, model: str, samples: Path, offered_fps: float, seconds: float,
              threads: int) -> dict:
    """Measure (b): camera and detector nodes, /detections received in this process."""
    import rclpy
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from vision_msgs.msg import Detection2DArray

    from vehicle_detection.ros.image_conv import stamp_to_ns
    env = dict(os.environ, ROS_DOMAIN_ID=str(40 + os.getpid() % 30),
               ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST')
    os.environ.update(ROS_DOMAIN_ID=env['ROS_DOMAIN_ID'])
    with tempfile.TemporaryDirectory() as folder:
        make_frames(Path(folder), samples)
        processes = node_processes(layout, model, folder, offered_fps, threads, env)
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
        cpu = sum(cpu_seconds(p.pid) - before
                  for p, before in zip(processes, cpu_before)) / seconds
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
            'p95_ms': percentile(latencies, 0.95), 'messages': len(window), 'cpu': cpu}


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
    parser.add_argument('--layouts', default='composed,processes',
                        help='comma-separated (b) layouts; the first is held to the targets')
    args = parser.parse_args()
    layouts = [name for name in args.layouts.split(',') if name]
    if not layouts or set(layouts) - set(LAYOUTS):
        parser.error(f'--layouts takes {" and/or ".join(LAYOUTS)}, got {args.layouts!r}')
    tune_transport()
    raw = raw_throughput(args.model, Path(args.samples), args.seconds / 2, args.threads)
    print(f'(a) raw session.run: {raw["fps"]:.1f} fps, p50 {raw["p50_ms"]:.1f} ms, '
          f'p95 {raw["p95_ms"]:.1f} ms')
    offered = args.offer * raw['fps']
    latency_limit = 1.3 * raw['p95_ms'] + 10.0
    result: dict = {'raw_fps': round(raw['fps'], 2), 'raw_p50_ms': round(raw['p50_ms'], 2),
                    'raw_p95_ms': round(raw['p95_ms'], 2), 'offered_fps': round(offered, 1),
                    'latency_limit_ms': round(latency_limit, 2)}
    for layout in layouts:
        full = full_path(layout, args.model, Path(args.samples), offered, args.seconds,
                         args.threads)
        figures = {'fps': round(full['fps'], 2), 'p50_ms': round(full['p50_ms'], 2),
                   'p95_ms': round(full['p95_ms'], 2), 'cpu_cores': round(full['cpu'], 2),
                   'throughput_ratio': round(full['fps'] / raw['fps'], 3),
                   'latency_over_limit': round(full['p95_ms'] / latency_limit, 3)}
        print(f'(b) {LAYOUTS[layout]}, camera at {offered:.0f} fps -> /detections: '
              f'{figures["fps"]} fps, p50 {figures["p50_ms"]} ms, p95 {figures["p95_ms"]} ms, '
              f'{figures["cpu_cores"]} CPU cores; throughput (b)/(a) = '
              f'{figures["throughput_ratio"]} (target >= 0.85), p95 / limit '
              f'{latency_limit:.1f} ms = {figures["latency_over_limit"]} (target <= 1)')
        result[layout] = figures
    held = result[layouts[0]]
    result['throughput_ratio'] = held['throughput_ratio']
    result['latency_over_limit'] = held['latency_over_limit']
    result['meets_targets'] = (held['throughput_ratio'] >= 0.85
                               and held['latency_over_limit'] <= 1.0)
    print(json.dumps(result))


if __name__ == '__main__':
    main()
