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

``vehicle-detection run`` plays the road clip in a loop (camera ``fps`` set to
what the detector takes, so it runs flat out), with the real YOLOX-Nano model,
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
``--tracemalloc`` runs both processes under tracemalloc and prints the lines
whose memory grew most after the warm-up; ``--malloc-stats`` logs glibc's heap
in use and free (see ``traced.py``). ``make soak`` runs it steady and flaky.

Targets: RSS growth <= 1 MB/h of real time per process, threads and open files
flat, outbox and logs within their limits. The last line is one JSON object.

    python bench/soak.py --minutes 30 [--flaky] [--tracemalloc]
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import random
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Dict, List, Optional

from soak_tools import (
    detector_rate, disk_bytes, FlakyProxy, Probe, process_figures, seed_outbox, seed_server,
    slope)
from traced import growth

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
LINES = 'road 0,0.55 1,0.55 towards/away'
ZONES = 'shoulder 0,0.7 0.3,0.7 0.3,1 0,1 dwell=3'
MB = 1024 * 1024


def start_processes(args: argparse.Namespace, folder: Path, env: Dict[str, str]
                    ) -> Dict[str, Any]:
    """Start the server (and register the device), the proxy and the edge."""
    sys.path.insert(0, str(REPO / 'test'))
    from cloud_helpers import add_device, free_port, wait_http
    db, storage = f'sqlite:///{folder}/cloud.db', str(folder / 'images')
    key = add_device('soak', db, storage)
    if args.seed:  # a server and a box that have run for a while (see seed_server)
        seed_server(db, 'soak', args.seed)
        seed_outbox(folder / 'edge', args.history_mb)
    port = free_port()
    traced = [sys.executable, str(REPO / 'bench' / 'traced.py'),
              *([] if args.tracemalloc else ['--malloc-only']), str(folder / 'traces'),
              str(args.trace_every)] if args.tracemalloc or args.malloc_stats else []
    server_cmd = [*traced, 'vehicle_detection.cloud.server.cli:main'] if traced \
        else [str(BIN / 'vehicle-detection-cloud')]
    server_log = open(folder / 'server.log', 'wb')
    server = subprocess.Popen(
        [*server_cmd, 'serve', '--db', db, '--storage', storage, '--port', str(port),
         '--public-dashboard', '--rate-limit', '0'],
        stdout=server_log, stderr=subprocess.STDOUT, env=env)
    wait_http(f'http://127.0.0.1:{port}/api/v1/health', process=server)
    proxy = FlakyProxy(port, args.flaky_period, args.flaky_down) if args.flaky else None
    url = proxy.url if proxy else f'http://127.0.0.1:{port}'
    sets = {'camera_node.loop': 'true', 'camera_node.fps': f'{args.fps:.1f}',
            'cloud_bridge_node.data_dir': str(folder / 'edge'),
            'cloud_bridge_node.device_id': 'soak',
            # The alert's frame must still be in the ring when its snapshot window ends.
            'cloud_bridge_node.frame_buffer': str(int(args.fps * 3) + 1),
            'cloud_bridge_node.counting_lines': LINES,
            'cloud_bridge_node.counting_zones': ZONES,
            'cloud_bridge_node.history_mb': str(args.history_mb)}
    edge_cmd = [*traced, 'vehicle_detection.cli.main:main'] if traced \
        else [str(BIN / 'vehicle-detection')]
    options = [item for name, value in sets.items() for item in ('--set', f'{name}={value}')]
    edge_log = open(folder / 'edge.log', 'wb')
    edge = subprocess.Popen(
        [*edge_cmd, 'run', '--config', str(REPO / 'config' / 'config.yaml'), '--quiet',
         '--source', args.clip, '--model', args.model, '--cloud-url', url, *options],
        stdout=edge_log, stderr=subprocess.STDOUT, env={**env, 'VD_CLOUD_API_KEY': key})
    return {'server': server, 'edge': edge, 'proxy': proxy, 'logs': [server_log, edge_log],
            'url': f'http://127.0.0.1:{port}'}


def sample(started: float, running: Dict[str, Any], folder: Path,
           diagnostics: Probe) -> Dict[str, float]:
    """Take one sample of every process and folder."""
    row: Dict[str, float] = {'t': time.monotonic() - started}
    for name in ('edge', 'server'):
        for key, value in process_figures(running[name].pid).items():
            row[f'{name}_{key}'] = value
    edge = folder / 'edge'
    row['outbox_db_bytes'] = disk_bytes(edge / f'outbox.db{s}' for s in ('', '-wal', '-shm'))
    row['snapshot_bytes'] = disk_bytes([edge / 'snapshots'])
    row['ros_log_bytes'] = disk_bytes([folder / 'ros' / 'log'])
    row['edge_log_bytes'] = disk_bytes([folder / 'edge.log'])
    row['server_log_bytes'] = disk_bytes([folder / 'server.log'])
    row['server_db_bytes'] = disk_bytes(folder / f'cloud.db{s}' for s in ('', '-wal', '-shm'))
    row['server_images_bytes'] = disk_bytes([folder / 'images'])
    row['frames'] = diagnostics.number('detector_node', 'published')
    row['alerts'] = diagnostics.number('cloud_bridge_node', 'alerts_this_run')
    row['queue_depth'] = diagnostics.number('cloud_bridge_node', 'queue_depth')
    row['history_pruned'] = diagnostics.number('cloud_bridge_node', 'history_pruned')
    return row


def fit(samples: List[Dict[str, float]], warmup_s: float) -> Dict[str, Any]:
    """Fit the growth per hour of every sampled figure after the warm-up."""
    kept = [s for s in samples if s['t'] >= warmup_s]
    hours = (kept[-1]['t'] - kept[0]['t']) / 3600 if len(kept) > 1 else 0.0
    rates = {key: slope([(s['t'] / 3600, s[key]) for s in kept]) for key in kept[0]
             if key != 't'}
    frames_h, alerts_h = rates['frames'], rates['alerts']
    result: Dict[str, Any] = {'fit_minutes': round(hours * 60, 1),
                              'frames_per_h': round(frames_h), 'alerts_per_h': round(alerts_h)}
    for name in ('edge', 'server'):
        mb_h = rates[f'{name}_rss_mb']
        result[f'{name}_rss_mb'] = [round(kept[0][f'{name}_rss_mb'], 1),
                                    round(kept[-1][f'{name}_rss_mb'], 1)]
        result[f'{name}_rss_mb_per_h'] = round(mb_h, 2)
        result[f'{name}_rss_mb_per_100k_frames'] = round(mb_h / frames_h * 1e5, 3) \
            if frames_h else None
        result[f'{name}_rss_mb_per_100k_alerts'] = round(mb_h / alerts_h * 1e5, 2) \
            if alerts_h else None
        for key in ('threads', 'fds'):
            values = [s[f'{name}_{key}'] for s in kept]
            result[f'{name}_{key}'] = [int(min(values)), int(max(values))]
            result[f'{name}_{key}_per_h'] = round(rates[f'{name}_{key}'], 2)
            # Flat: the last quarter's median no higher than the first quarter's (after the
            # warm-up) plus one; a request or an outage in flight comes and goes.
            quarter = max(1, len(values) // 4)
            result[f'{name}_{key}_flat'] = statistics.median(values[-quarter:]) <= \
                statistics.median(values[:quarter]) + 1
    for key in ('outbox_db_bytes', 'snapshot_bytes', 'ros_log_bytes', 'edge_log_bytes',
                'server_log_bytes', 'server_db_bytes', 'server_images_bytes'):
        name = key.replace('_bytes', '')
        result[f'{name}_mb_per_h'] = round(rates[key] / MB, 3)
        result[f'{name}_mb_max'] = round(max(s[key] for s in kept) / MB, 2)
    return result


def verdict(result: Dict[str, Any], args: argparse.Namespace) -> Dict[str, Any]:
    """Add the ratios to the targets and whether every one is met."""
    checks = {}
    for name in ('edge', 'server'):
        result[f'{name}_rss_ratio'] = round(result[f'{name}_rss_mb_per_h'] / 1.0, 3)
        checks[f'{name}_rss'] = result[f'{name}_rss_ratio'] <= 1.0
        for key in ('threads', 'fds'):
            checks[f'{name}_{key}'] = result.pop(f'{name}_{key}_flat')
    # The outbox's own limit, plus its WAL (cut back to 4 MB after each checkpoint).
    checks['outbox_within_limit'] = result['outbox_db_mb_max'] <= args.history_mb * 1.05 + 8
    checks['ros_logs_within_limit'] = result['ros_log_mb_max'] <= args.ros_log_limit_mb
    result['checks'] = checks
    result['meets_targets'] = all(checks.values())
    return result


def main() -> None:
    """Run the soak, then print the figures and one JSON line."""
    parser = argparse.ArgumentParser(description='accelerated soak of edge + server')
    parser.add_argument('--minutes', type=float, default=30.0)
    parser.add_argument('--warmup', type=float, default=2.0, help='minutes left out of the fit')
    parser.add_argument('--interval', type=float, default=5.0, help='seconds between samples')
    parser.add_argument('--fps', type=float, default=0.0,
                        help='camera rate; 0: what the detector takes here (measured first)')
    parser.add_argument('--flaky', action='store_true',
                        help='drop the link for --flaky-down s in every --flaky-period s')
    parser.add_argument('--flaky-period', type=float, default=300.0)
    parser.add_argument('--flaky-down', type=float, default=60.0)
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
    if args.fps <= 0:
        args.fps = round(detector_rate(args.model, args.clip), 1)
        print(f'detector takes {args.fps} fps here: the camera plays the clip at that rate',
              flush=True)
    folder = Path(args.keep or tempfile.mkdtemp(prefix='vd-soak-'))
    folder.mkdir(parents=True, exist_ok=True)
    domain = random.randint(120, 200)  # away from the tests' domains (1-100)
    env = {**os.environ, 'ROS_DOMAIN_ID': str(domain), 'ROS_HOME': str(folder / 'ros'),
           'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST'}
    env.pop('ROS_LOG_DIR', None)
    diagnostics = Probe(domain)
    running = start_processes(args, folder, env)
    started, samples = time.monotonic(), []
    pause = threading.Event()
    try:
        while time.monotonic() - started < args.minutes * 60:
            for name in ('edge', 'server'):
                if running[name].poll() is not None:
                    raise SystemExit(f'{name} exited with {running[name].returncode}; see '
                                     f'{folder}/{name}.log')
            samples.append(sample(started, running, folder, diagnostics))
            with open(folder / 'samples.jsonl', 'a', encoding='utf-8') as out:
                out.write(json.dumps(samples[-1]) + '\n')
            if len(samples) % max(1, int(60 / args.interval)) == 0:
                last = samples[-1]
                print(f"{last['t'] / 60:5.1f} min: edge {last['edge_rss_mb']:.1f} MB "
                      f"{last['edge_threads']:.0f} thr {last['edge_fds']:.0f} fd, server "
                      f"{last['server_rss_mb']:.1f} MB; frames {last['frames']:.0f} alerts "
                      f"{last['alerts']:.0f} queued {last['queue_depth']:.0f}; outbox "
                      f"{last['outbox_db_bytes'] / MB:.2f} MB", flush=True)
            if len(samples) % max(1, int(20 / args.interval)) == 0:
                diagnostics.vary_snapshots()
            pause.wait(args.interval)
    finally:
        stop(running)
        diagnostics.close()
    report(args, folder, samples, running)


def stop(running: Dict[str, Any]) -> None:
    """Stop the edge (SIGINT: its summary), the proxy and the server."""
    for name in ('edge', 'server'):
        process = running[name]
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if name == 'edge' and running['proxy'] is not None:
            running['proxy'].stop()
    for log in running['logs']:
        log.close()


def report(args: argparse.Namespace, folder: Path, samples: List[Dict[str, float]],
           running: Dict[str, Any]) -> None:
    """Print the fitted figures, the tracemalloc growth, and the JSON line."""
    result = verdict(fit(samples, args.warmup * 60), args)
    result = {'minutes': args.minutes, 'flaky': args.flaky, 'camera_fps': args.fps,
              'frames': int(samples[-1]['frames']), 'alerts': int(samples[-1]['alerts']),
              'history_pruned': int(samples[-1]['history_pruned']),
              'queue_depth_max': int(max(s['queue_depth'] for s in samples)),
              'link_drops': running['proxy'].drops if running['proxy'] else 0, **result}
    result['outbox_bytes_per_event'] = bytes_per_event(folder / 'edge' / 'outbox.db')
    summary = [line for line in (folder / 'edge.log').read_text(errors='replace').splitlines()
               if line.startswith('summary:')]
    print(summary[-1] if summary else 'edge printed no summary')
    for name in ('edge', 'server'):
        print(f"{name}: RSS {result[f'{name}_rss_mb'][0]} -> {result[f'{name}_rss_mb'][1]} MB, "
              f"{result[f'{name}_rss_mb_per_h']} MB/h "
              f"({result[f'{name}_rss_mb_per_100k_frames']} MB per 100k frames, "
              f"{result[f'{name}_rss_mb_per_100k_alerts']} per 100k alerts); threads "
              f"{result[f'{name}_threads']}, open files {result[f'{name}_fds']}")
    print(f"disk MB/h: outbox {result['outbox_db_mb_per_h']} (max {result['outbox_db_mb_max']} "
          f"MB, history_mb {args.history_mb}), snapshots {result['snapshot_mb_per_h']}, ROS "
          f"logs {result['ros_log_mb_per_h']} (max {result['ros_log_mb_max']} MB), server db "
          f"{result['server_db_mb_per_h']}, server images {result['server_images_mb_per_h']}; "
          f"{result['outbox_bytes_per_event']} bytes per event kept in the outbox")
    if args.tracemalloc:
        print_growth(folder / 'traces', args.warmup * 60, args.trace_every)
    if args.tracemalloc or args.malloc_stats:
        print_malloc(folder / 'traces', args.warmup * 60)
    print(f'run kept in {folder}')
    print(json.dumps(result))


def bytes_per_event(path: Path) -> Optional[int]:
    """Return the outbox's bytes in use per event it holds (what a day of history costs)."""
    db = sqlite3.connect(f'file:{path}?mode=ro', uri=True)
    try:
        rows = db.execute('SELECT COUNT(*) FROM events').fetchone()[0]
        pages = db.execute('PRAGMA page_count').fetchone()[0] - db.execute(
            'PRAGMA freelist_count').fetchone()[0]
        return round(pages * db.execute('PRAGMA page_size').fetchone()[0] / rows) \
            if rows else None
    finally:
        db.close()


def print_malloc(traces: Path, warmup_s: float) -> None:
    """Print, per process, the growth per hour of glibc's heap in use and free after warm-up."""
    for path in sorted(traces.glob('*-malloc.jsonl')):
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        kept = [row for row in rows if row['t'] - rows[0]['t'] >= warmup_s] if rows else []
        if len(kept) < 2:
            continue
        rates = {key: round(slope([(row['t'] / 3600, row[key]) for row in kept]), 2)
                 for key in kept[0] if key != 't'}
        print(f"process {path.name.split('-')[0]}: per hour {rates} (last {kept[-1]})")


def print_growth(traces: Path, warmup_s: float, every_s: float) -> None:
    """Print, per traced process, the lines that grew most from after the warm-up to the end."""
    first_index = int(warmup_s // every_s)
    for pid in sorted({path.name.split('-')[0] for path in traces.glob('*.tracemalloc')}):
        snapshots = sorted(traces.glob(f'{pid}-*.tracemalloc'))
        first: Optional[Path] = snapshots[min(first_index, len(snapshots) - 1)]
        if first is None or first == snapshots[-1]:
            continue
        print(f'process {pid}: growth {first.name} -> {snapshots[-1].name}')
        for where, kb, count in growth(first, snapshots[-1]):
            print(f'  {kb:+9.1f} KB {count:+7d} blocks  {where}')


if __name__ == '__main__':
    main()
