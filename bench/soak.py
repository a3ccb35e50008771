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
Accelerated soak: the whole edge system and the real server, for ``--minutes``.

``vehicle-detection run`` plays the road clip in a loop (in real time, as a
camera would, capped at the rate the detector takes: it runs flat out), with
the real YOLOX-Nano model,
a counting line and a zone, and its bridge uploads to ``vehicle-detection-cloud
serve`` (SQLite) on this machine, through a proxy that drops the link for a
minute every five with ``--flaky``. Every ``--interval`` s it samples each
process's RSS, threads and open files, and the disk used by the outbox, the
snapshots, the logs and the server's database; after ``--warmup`` minutes it
fits the growth (least squares) and prints MB/h per process, per 100 000 frames
and per 100 000 alerts. The server starts with ``--seed`` alerts and the outbox
at its history limit, as after a month (SQLite's page caches fill in the
warm-up instead of growing with a new database); the bridge keeps a small
history (``--history-mb``) so that pruning runs during the soak.
``--arenas 2,0`` runs one edge per value side by side (each its own ROS
domain, outbox and device, the same server), with ``VD_MALLOC_ARENAS`` set to
it: the figures of both come from the same minutes on the same machine;
``--allocators glibc,jemalloc`` does the same with glibc's malloc and jemalloc
(``--server-allocator`` picks the server's).
``--tracemalloc`` runs both processes under tracemalloc and prints the lines
whose memory grew most after the warm-up; ``--malloc-stats`` logs glibc's heap
in use and free (see ``traced.py``). ``make soak`` runs it steady and flaky.

Targets: RSS growth <= 1 MB/h of real time per process, threads and open files
flat, outbox and logs within their limits. The last line is one JSON object.

    python bench/soak.py --minutes 30 [--flaky] [--arenas 2,0 | --allocators glibc,jemalloc]
        [--tracemalloc]
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Dict, List

from soak_report import (
    bytes_per_event, fit, print_growth, print_malloc, print_open_files, print_report,
    print_windows, verdict)
from soak_tools import (
    detector_rate, disk_bytes, FlakyProxy, note_open_files, Probe, process_figures, seed_outbox,
    seed_server)

from vehicle_detection.allocator import JEMALLOC_ENV, jemalloc_library

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
LINES = 'road 0,0.55 1,0.55 towards/away'
ZONES = 'shoulder 0,0.7 0.3,0.7 0.3,1 0,1 dwell=3'
MB = 1024 * 1024


# What each process runs with. As shipped the entry points relaunch with jemalloc, its
# background thread and Python's objects in it; the preload and options are set here
# too, for the processes traced.py starts in-process. jemalloc-pymalloc: Python's
# objects in pymalloc's arenas; jemalloc-lazy: without the background thread.
_JEMALLOC = {'VD_ALLOCATOR': 'jemalloc', 'LD_PRELOAD': jemalloc_library() or '', **JEMALLOC_ENV}
ALLOCATORS = {'glibc': {'VD_ALLOCATOR': 'glibc'},
              'jemalloc': _JEMALLOC,
              'jemalloc-pymalloc': {**_JEMALLOC, 'PYTHONMALLOC': 'pymalloc'},
              'jemalloc-lazy': {**_JEMALLOC, 'MALLOC_CONF': 'background_thread:false'},
              # Freed pages handed back at once: a reused extent is always fresh pages.
              'jemalloc-eager': {
                  **_JEMALLOC, 'MALLOC_CONF': 'background_thread:true,dirty_decay_ms:0'},
              # Freed pages handed back within about a second instead of ten: less of
              # them resident at any moment, most still reused before they go.
              'jemalloc-decay1s': {
                  **_JEMALLOC, 'MALLOC_CONF': 'background_thread:true,dirty_decay_ms:1000'},
              # Only allocations of 256 KiB and more (frames) in jemalloc's oversize arena,
              # which hands its pages back at once.
              'jemalloc-oversize': {
                  **_JEMALLOC, 'MALLOC_CONF': 'background_thread:true,oversize_threshold:262144'},
              # One arena for every thread (8 by default on 2 cores): Python's threads take
              # turns at the GIL anyway, and each arena holds pages of its own.
              'jemalloc-one-arena': {
                  **_JEMALLOC, 'MALLOC_CONF': 'background_thread:true,narenas:1'}}


def edge_names(args: argparse.Namespace) -> Dict[str, Dict[str, str]]:
    """Return each edge to run with the environment it adds ('edge' alone by default)."""
    if args.allocators:
        return {f'edge_{name}': ALLOCATORS[name] for name in args.allocators.split(',')}
    if not args.arenas:
        return {'edge': {}}
    return {f'edge_arenas{value}': {'VD_MALLOC_ARENAS': value, 'VD_ALLOCATOR': 'glibc'}
            for value in args.arenas.split(',')}


def start_processes(args: argparse.Namespace, folder: Path, env: Dict[str, str],
                    domains: Dict[str, int]) -> Dict[str, Any]:
    """Start the server (and register each edge's device), the proxy and the edges."""
    sys.path.insert(0, str(REPO / 'test'))
    from cloud_helpers import add_device, free_port, wait_http
    db, storage = f'sqlite:///{folder}/cloud.db', str(folder / 'images')
    keys = {edge: add_device(f'soak-{edge}', db, storage) for edge in domains}
    if args.seed:  # a server and a box that have run for a while (see seed_server)
        seed_server(db, f'soak-{next(iter(domains))}', args.seed)
        for edge in domains:
            seed_outbox(folder / edge, args.history_mb)
    port = free_port()
    traced = [sys.executable, str(REPO / 'bench' / 'traced.py'),
              *([] if args.tracemalloc else ['--malloc-only']), str(folder / 'traces'),
              str(args.trace_every)] if args.tracemalloc or args.malloc_stats else []
    server_cmd = [*traced, 'vehicle_detection.cloud.server.cli:main'] if traced \
        else [str(BIN / 'vehicle-detection-cloud')]
    logs = {'server': open(folder / 'server.log', 'wb')}
    running: Dict[str, Any] = {'server': subprocess.Popen(
        [*server_cmd, 'serve', '--db', db, '--storage', storage, '--port', str(port),
         '--public-dashboard', '--rate-limit', '0'],
        stdout=logs['server'], stderr=subprocess.STDOUT,
        env={**env, **ALLOCATORS[args.server_allocator]})}
    wait_http(f'http://127.0.0.1:{port}/api/v1/health', process=running['server'])
    proxy = FlakyProxy(port, args.flaky_period, args.flaky_down) if args.flaky else None
    url = proxy.url if proxy else f'http://127.0.0.1:{port}'
    edge_cmd = [*traced, 'vehicle_detection.cli.main:main'] if traced \
        else [str(BIN / 'vehicle-detection')]
    for edge, extra in edge_names(args).items():
        sets = {'camera_node.loop': 'true', 'camera_node.fps': f'{args.fps:.1f}',
                'cloud_bridge_node.data_dir': str(folder / edge),
                'cloud_bridge_node.device_id': f'soak-{edge}',
                # The alert's frame must still be in the ring when its snapshot window ends.
                'cloud_bridge_node.frame_buffer': str(int(args.fps * 3) + 1),
                'cloud_bridge_node.counting_lines': LINES,
                'cloud_bridge_node.counting_zones': ZONES,
                'cloud_bridge_node.history_mb': str(args.history_mb)}
        options = [item for name, value in sets.items() for item in ('--set', f'{name}={value}')]
        logs[edge] = open(folder / f'{edge}.log', 'wb')
        running[edge] = subprocess.Popen(
            [*edge_cmd, 'run', '--config', str(REPO / 'config' / 'config.yaml'), '--quiet',
             '--source', args.clip, '--model', args.model, '--cloud-url', url, *options],
            stdout=logs[edge], stderr=subprocess.STDOUT,
            env={**env, **extra, 'VD_CLOUD_API_KEY': keys[edge],
                 'ROS_DOMAIN_ID': str(domains[edge]), 'ROS_HOME': str(folder / f'{edge}-ros')})
    return {**running, 'proxy': proxy, 'logs': logs, 'url': f'http://127.0.0.1:{port}'}


def sample(started: float, running: Dict[str, Any], folder: Path,
           probes: Dict[str, Probe]) -> Dict[str, float]:
    """Take one sample of every process and folder."""
    row: Dict[str, float] = {'t': time.monotonic() - started}
    for name in (*probes, 'server'):
        for key, value in process_figures(running[name].pid).items():
            row[f'{name}_{key}'] = value
    for edge, probe in probes.items():
        data = folder / edge
        row[f'{edge}_outbox_db_bytes'] = disk_bytes(
            data / f'outbox.db{s}' for s in ('', '-wal', '-shm'))
        row[f'{edge}_snapshot_bytes'] = disk_bytes([data / 'snapshots'])
        row[f'{edge}_ros_log_bytes'] = disk_bytes([folder / f'{edge}-ros' / 'log'])
        row[f'{edge}_log_bytes'] = disk_bytes([folder / f'{edge}.log'])
        row[f'{edge}_frames'] = probe.number('detector_node', 'published')
        row[f'{edge}_alerts'] = probe.number('cloud_bridge_node', 'alerts_this_run')
        row[f'{edge}_queue_depth'] = probe.number('cloud_bridge_node', 'queue_depth')
        row[f'{edge}_history_pruned'] = probe.number('cloud_bridge_node', 'history_pruned')
    row['server_log_bytes'] = disk_bytes([folder / 'server.log'])
    row['server_db_bytes'] = disk_bytes(folder / f'cloud.db{s}' for s in ('', '-wal', '-shm'))
    row['server_images_bytes'] = disk_bytes([folder / 'images'])
    return row


def arguments() -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description='accelerated soak of edge + server')
    parser.add_argument('--minutes', type=float, default=30.0)
    parser.add_argument('--warmup', type=float, default=2.0, help='minutes left out of the fit')
    parser.add_argument('--interval', type=float, default=5.0, help='seconds between samples')
    parser.add_argument('--fps', type=float, default=0.0,
                        help='camera rate cap; 0: what the detector takes here (measured first)')
    parser.add_argument('--flaky', action='store_true',
                        help='drop the link for --flaky-down s in every --flaky-period s')
    parser.add_argument('--flaky-period', type=float, default=300.0)
    parser.add_argument('--flaky-down', type=float, default=60.0)
    parser.add_argument('--arenas', default='',
                        help='comma-separated VD_MALLOC_ARENAS values: one edge each, side by '
                        "side (0: glibc's default); empty: one edge as configured")
    parser.add_argument('--allocators', default='',
                        help='comma-separated allocators (VD_ALLOCATOR), one edge each side '
                        'by side: glibc, jemalloc; empty: one edge as shipped (jemalloc)')
    parser.add_argument('--server-allocator', default='jemalloc', choices=sorted(ALLOCATORS),
                        help="the server's allocator (VD_ALLOCATOR)")
    parser.add_argument('--history-mb', type=float, default=2.0,
                        help="the bridge's history_mb (small: pruning runs in the soak)")
    parser.add_argument('--ros-log-limit-mb', type=float, default=25.0,
                        help='bound expected of the ROS log folder')
    parser.add_argument('--seed', type=int, default=100_000,
                        help='alerts already on the server (the outbox starts at its '
                        'history_mb); 0: start empty')
    parser.add_argument('--tracemalloc', action='store_true',
                        help='trace allocations and print the lines that grew')
    parser.add_argument('--malloc-stats', action='store_true',
                        help="log glibc's heap in use and free (no tracemalloc)")
    parser.add_argument('--trace-every', type=float, default=120.0)
    parser.add_argument('--clip', default=str(REPO.parent / 'shared/samples/'
                                              'highway_bridge_jitter.mp4'))
    parser.add_argument('--model', default=str(REPO.parent / 'shared/models/yolox_nano.onnx'))
    parser.add_argument('--keep', default='', help='folder to keep the run in (default: temp)')
    args = parser.parse_args()
    if any(not value.isdigit() for value in args.arenas.split(',')) and args.arenas:
        parser.error(f'--arenas {args.arenas!r}: whole numbers >= 0, comma-separated')
    wanted = {*filter(None, args.allocators.split(',')), args.server_allocator}
    if any(name.startswith('jemalloc') for name in wanted) and jemalloc_library() is None:
        parser.error('jemalloc is not installed: apt-get install libjemalloc2')
    unknown = set(filter(None, args.allocators.split(','))) - set(ALLOCATORS)
    if unknown:
        parser.error(f'--allocators: unknown {", ".join(sorted(unknown))}; '
                     f'choose from {", ".join(ALLOCATORS)}')
    if args.allocators and args.arenas:
        parser.error('--allocators and --arenas each run edges side by side: give one')
    return args


def main() -> None:
    """Run the soak, then print the figures and one JSON line."""
    args = arguments()
    if args.fps <= 0:
        args.fps = round(detector_rate(args.model, args.clip), 1)
        print(f'detector takes {args.fps} fps here: the camera is capped at that rate',
              flush=True)
    folder = Path(args.keep or tempfile.mkdtemp(prefix='vd-soak-'))
    folder.mkdir(parents=True, exist_ok=True)
    first = random.randint(120, 200)  # away from the tests' domains (1-100)
    domains = {edge: first + index for index, edge in enumerate(edge_names(args))}
    env = {**os.environ, 'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST'}
    env.pop('ROS_LOG_DIR', None)
    probes = {edge: Probe(domain) for edge, domain in domains.items()}
    running = start_processes(args, folder, env, domains)
    started, samples = time.monotonic(), []
    pause = threading.Event()
    try:  # Ctrl-C ends the run early: the processes stop and what was sampled is fitted
        while time.monotonic() - started < args.minutes * 60:
            for name in (*domains, 'server'):
                if running[name].poll() is not None:
                    raise SystemExit(f'{name} exited with {running[name].returncode}; see '
                                     f'{folder}/{name}.log')
            samples.append(sample(started, running, folder, probes))
            with open(folder / 'samples.jsonl', 'a', encoding='utf-8') as out:
                out.write(json.dumps(samples[-1]) + '\n')
            if len(samples) % max(1, int(60 / args.interval)) == 0:
                print_progress(samples[-1], list(domains))
                note_open_files(folder / 'open_files.jsonl', samples[-1]['t'],
                                {name: running[name].pid for name in (*domains, 'server')})
            if len(samples) % max(1, int(20 / args.interval)) == 0:
                for probe in probes.values():
                    probe.vary_snapshots()
            pause.wait(args.interval)
    except KeyboardInterrupt:
        print('interrupted: what was sampled is fitted', flush=True)
    finally:
        stop(running, list(domains))
        for probe in probes.values():
            probe.close()
    if sum(s['t'] >= args.warmup * 60 for s in samples) < 2:
        raise SystemExit(f'stopped before two samples after the warm-up: nothing to fit '
                         f'(the run is in {folder})')
    report(args, folder, samples, running, list(domains))


def print_progress(last: Dict[str, float], edges: List[str]) -> None:
    """Print a line a minute: each process's RSS, threads and files, the traffic."""
    parts = [f"{name} {last[f'{name}_rss_mb']:.1f} MB {last[f'{name}_threads']:.0f} thr "
             f"{last[f'{name}_fds']:.0f} fd" for name in (*edges, 'server')]
    parts += [f"{edge}: frames {last[f'{edge}_frames']:.0f} alerts {last[f'{edge}_alerts']:.0f}"
              f" queued {last[f'{edge}_queue_depth']:.0f} outbox "
              f"{last[f'{edge}_outbox_db_bytes'] / MB:.2f} MB" for edge in edges]
    print(f"{last['t'] / 60:5.1f} min: " + '; '.join(parts), flush=True)


def stop(running: Dict[str, Any], edges: List[str]) -> None:
    """Stop the edges (SIGINT: their summaries), the proxy and the server."""
    for name in (*edges, 'server'):
        process = running[name]
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if name == edges[-1] and running['proxy'] is not None:
            running['proxy'].stop()
    for log in running['logs'].values():
        log.close()


def report(args: argparse.Namespace, folder: Path, samples: List[Dict[str, float]],
           running: Dict[str, Any], edges: List[str]) -> None:
    """Print the fitted figures, the tracemalloc growth, and the JSON line."""
    result = verdict(fit(samples, args.warmup * 60, edges), edges, args.history_mb,
                     args.ros_log_limit_mb)
    head: Dict[str, Any] = {'minutes': args.minutes, 'flaky': args.flaky,
                            'camera_fps': args.fps, 'arenas': args.arenas,
                            'allocators': args.allocators,
                            'server_allocator': args.server_allocator,
                            'link_drops': running['proxy'].drops if running['proxy'] else 0}
    for edge in edges:
        last = samples[-1]
        head.update({f'{edge}_frames': int(last[f'{edge}_frames']),
                     f'{edge}_alerts': int(last[f'{edge}_alerts']),
                     f'{edge}_history_pruned': int(last[f'{edge}_history_pruned']),
                     f'{edge}_queue_depth_max': int(max(s[f'{edge}_queue_depth']
                                                        for s in samples))})
        result[f'{edge}_outbox_bytes_per_event'] = bytes_per_event(
            folder / edge / 'outbox.db')
    if len(edges) == 2:  # side by side: the second's growth over the first's
        first, second = (result[f'{edge}_rss_mb_per_h'] for edge in edges)
        result['rss_growth_ratio'] = round(first / second, 3) if second else None
    result = {**head, **result}
    print_report(result, edges, args.history_mb, folder)
    print_windows(samples, [*edges, 'server'], args.warmup * 60)
    print_open_files(folder / 'open_files.jsonl', args.warmup * 60)
    if args.tracemalloc:
        print_growth(folder / 'traces', args.warmup * 60, args.trace_every)
    if args.tracemalloc or args.malloc_stats:
        print_malloc(folder / 'traces', args.warmup * 60)
    print(f'run kept in {folder}')
    print(json.dumps(result))


if __name__ == '__main__':
    main()
