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
What ``bench/soak.py`` makes of its samples: growth per hour, the targets, the print-out.

Every sample is one flat dict: ``t`` (s), then per process (each edge by its
name, and ``server``) ``<name>_rss_mb``, ``_threads``, ``_fds`` and ``_cpu_s``; per edge
its frames, alerts, queue depth, history pruned and the bytes of its outbox,
snapshots, ROS logs and console log; the server's log, database and images.
:func:`fit` fits each series after the warm-up (least squares), :func:`verdict`
checks the targets, :func:`print_report` prints them. ``python bench/soak_report.py
RUN_DIR`` prints a kept run's medians, 30-minute windows and open files again.
"""

from __future__ import annotations

import argparse
from collections import Counter
import json
from pathlib import Path
import sqlite3
import statistics
from typing import Any, Dict, List, Optional, Sequence, Tuple

from soak_tools import slope
from traced import growth

MB = 1024 * 1024
RSS_TARGET_MB_H = 1.0
EDGE_DISK = ('outbox_db', 'snapshot', 'ros_log', 'log')
SERVER_DISK = ('server_log', 'server_db', 'server_images')


def fit(samples: List[Dict[str, float]], warmup_s: float,
        edges: Sequence[str]) -> Dict[str, Any]:
    """Fit the growth per hour of every sampled figure after the warm-up."""
    kept = [s for s in samples if s['t'] >= warmup_s]
    hours = (kept[-1]['t'] - kept[0]['t']) / 3600 if len(kept) > 1 else 0.0
    rates = {key: slope([(s['t'] / 3600, s[key]) for s in kept]) for key in kept[0]
             if key != 't'}
    # The second half alone tells a one-time step (a code path first run at the first
    # outage, caches filling) from growth that goes on: a leak grows in both halves.
    later = kept[len(kept) // 2:]
    result: Dict[str, Any] = {'fit_minutes': round(hours * 60, 1)}
    for edge in edges:
        result[f'{edge}_frames_per_h'] = round(rates[f'{edge}_frames'])
        result[f'{edge}_alerts_per_h'] = round(rates[f'{edge}_alerts'])
    all_frames = sum(rates[f'{edge}_frames'] for edge in edges)
    all_alerts = sum(rates[f'{edge}_alerts'] for edge in edges)
    for name in (*edges, 'server'):
        frames_h = rates[f'{name}_frames'] if name in edges else all_frames
        alerts_h = rates[f'{name}_alerts'] if name in edges else all_alerts
        mb_h = rates[f'{name}_rss_mb']
        result[f'{name}_rss_mb'] = [round(kept[0][f'{name}_rss_mb'], 1),
                                    round(kept[-1][f'{name}_rss_mb'], 1)]
        result[f'{name}_rss_mb_per_h'] = round(mb_h, 2)
        result[f'{name}_rss_mb_per_h_second_half'] = round(slope(
            [(s['t'] / 3600, s[f'{name}_rss_mb']) for s in later]), 2)
        result[f'{name}_rss_mb_per_100k_frames'] = round(mb_h / frames_h * 1e5, 3) \
            if frames_h else None
        result[f'{name}_rss_mb_per_100k_alerts'] = round(mb_h / alerts_h * 1e5, 2) \
            if alerts_h else None
        # CPU beside memory: an allocator that hands pages back sooner pays in page faults.
        result[f'{name}_cpu_percent'] = round(rates[f'{name}_cpu_s'] / 36, 1)
        result[f'{name}_cpu_ms_per_frame'] = round(rates[f'{name}_cpu_s'] / frames_h * 1e3, 2) \
            if frames_h else None
        for key in ('threads', 'fds'):
            values = [s[f'{name}_{key}'] for s in kept]
            result[f'{name}_{key}'] = [int(min(values)), int(max(values))]
            result[f'{name}_{key}_per_h'] = round(rates[f'{name}_{key}'], 2)
            # Flat: the last quarter's median no higher than the first quarter's (after the
            # warm-up) plus one; a request or an outage in flight comes and goes.
            quarter = max(1, len(values) // 4)
            result[f'{name}_{key}_flat'] = statistics.median(values[-quarter:]) <= \
                statistics.median(values[:quarter]) + 1
    disks = [f'{edge}_{what}' for edge in edges for what in EDGE_DISK] + list(SERVER_DISK)
    for name in disks:
        result[f'{name}_mb_per_h'] = round(rates[f'{name}_bytes'] / MB, 3)
        result[f'{name}_mb_max'] = round(max(s[f'{name}_bytes'] for s in kept) / MB, 2)
    return result


def verdict(result: Dict[str, Any], edges: Sequence[str], history_mb: float,
            ros_log_limit_mb: float) -> Dict[str, Any]:
    """Add the ratios to the targets and whether every one is met."""
    checks = {}
    for name in (*edges, 'server'):
        result[f'{name}_rss_ratio'] = round(result[f'{name}_rss_mb_per_h'] / RSS_TARGET_MB_H, 3)
        checks[f'{name}_rss'] = result[f'{name}_rss_ratio'] <= 1.0
        for key in ('threads', 'fds'):
            checks[f'{name}_{key}'] = result.pop(f'{name}_{key}_flat')
    for edge in edges:
        # The outbox's own limit, plus its WAL (cut back to 1 MB after each checkpoint).
        checks[f'{edge}_outbox_within_limit'] = \
            result[f'{edge}_outbox_db_mb_max'] <= history_mb * 1.05 + 8
        checks[f'{edge}_ros_logs_within_limit'] = \
            result[f'{edge}_ros_log_mb_max'] <= ros_log_limit_mb
    result['checks'] = checks
    result['meets_targets'] = all(checks.values())
    return result


def print_report(result: Dict[str, Any], edges: Sequence[str], history_mb: float,
                 folder: Path) -> None:
    """Print each edge's summary line and the fitted figures of every process."""
    for edge in edges:
        summary = [line for line in (folder / f'{edge}.log').read_text(
            errors='replace').splitlines() if line.startswith('summary:')]
        print(f'{edge}: ' + (summary[-1] if summary else 'printed no summary'))
    for name in (*edges, 'server'):
        print(f"{name}: RSS {result[f'{name}_rss_mb'][0]} -> {result[f'{name}_rss_mb'][1]} MB, "
              f"{result[f'{name}_rss_mb_per_h']} MB/h "
              f"({result[f'{name}_rss_mb_per_h_second_half']} over the second half; "
              f"{result[f'{name}_rss_mb_per_100k_frames']} MB per 100k frames, "
              f"{result[f'{name}_rss_mb_per_100k_alerts']} per 100k alerts); threads "
              f"{result[f'{name}_threads']}, open files {result[f'{name}_fds']}; CPU "
              f"{result[f'{name}_cpu_percent']} % of a core "
              f"({result[f'{name}_cpu_ms_per_frame']} ms per frame)")
    for edge in edges:
        print(f"{edge} disk MB/h: outbox {result[f'{edge}_outbox_db_mb_per_h']} (max "
              f"{result[f'{edge}_outbox_db_mb_max']} MB, history_mb {history_mb}), snapshots "
              f"{result[f'{edge}_snapshot_mb_per_h']}, ROS logs "
              f"{result[f'{edge}_ros_log_mb_per_h']} (max {result[f'{edge}_ros_log_mb_max']} "
              f"MB); {result[f'{edge}_outbox_bytes_per_event']} bytes per event kept")
    print(f"server disk MB/h: database {result['server_db_mb_per_h']}, images "
          f"{result['server_images_mb_per_h']}")


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


def five_minute_medians(points: Sequence[Tuple[float, float]]) -> str:
    """Return the median of each 5 minutes of (seconds, value) points, comma-separated."""
    spans: Dict[int, List[float]] = {}
    for t, value in points:
        spans.setdefault(int(t // 300), []).append(value)
    return ', '.join(f'{statistics.median(values):.1f}' for _, values in sorted(spans.items()))


def print_windows(samples: List[Dict[str, float]], names: Sequence[str], warmup_s: float,
                  window_s: float = 1800.0) -> None:
    """
    Print each process's RSS as 5-minute medians, and fitted over each 30-minute window.

    A run longer than the target's 30 minutes shows how far fits of that length scatter
    (an allocator's cache wanders by a few MB) beside the one fit of the whole run.
    """
    kept = [s for s in samples if s['t'] >= warmup_s]
    if not kept:
        return
    # Windows every 10 minutes, the first from the warm-up's end, the last ending at most a
    # sample short of the run's.
    last = kept[-1]['t'] + 30
    starts = [max(start, warmup_s) for start in range(0, int(last - window_s) + 1, 600)]
    for name in names:
        windows = []
        for start in starts:
            end = start // 600 * 600 + window_s
            fitted = slope([(s['t'] / 3600, s[f'{name}_rss_mb']) for s in kept
                            if start <= s['t'] <= end])
            windows.append(f'{start / 60:.0f}-{end / 60:.0f}: {fitted:+.2f}')
        medians = five_minute_medians([(s['t'], s[f'{name}_rss_mb']) for s in kept])
        spread = f"; MB/h over 30-minute windows (minutes) {', '.join(windows)}" \
            if windows else ''
        print(f'{name} RSS median of each 5 minutes: {medians} MB{spread}')


def print_open_files(path: Path, warmup_s: float) -> None:
    """Print the open files each process gained or lost from the warm-up's end to the last."""
    rows = [json.loads(line) for line in path.read_text(encoding='utf-8').splitlines()] \
        if path.exists() else []
    after = [row for row in rows if row['t'] >= warmup_s]
    if len(after) < 2:
        return
    for name in (key for key in after[0] if key != 't'):
        first, last = Counter(after[0][name]), Counter(after[-1][name])
        gained, lost = last - first, first - last
        if gained or lost:
            print(f'{name} open files from minute {after[0]["t"] / 60:.0f} to '
                  f'{after[-1]["t"] / 60:.0f}: gained {dict(gained) or "none"}, '
                  f'lost {dict(lost) or "none"}')


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
        if 'je_resident_mb' in rows[0]:
            # jemalloc counts pages as resident from when it hands them out, the kernel once
            # written: a gap that shrinks while jemalloc's figures stay flat is pages first
            # written, which stops when it closes; memory taken would move jemalloc's too.
            gaps = five_minute_medians([(row['t'] - rows[0]['t'],
                                         row['je_resident_mb'] - row['rssanon_mb'])
                                        for row in rows])
            print(f"  jemalloc's resident minus the anonymous RSS, median of each 5 minutes: "
                  f'{gaps} MB')


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


def main() -> None:
    """Print a kept run's RSS medians, 30-minute windows and open files again."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument('run', type=Path, help='a folder kept by bench/soak.py --keep')
    parser.add_argument('--warmup', type=float, default=2.0, help='minutes left out')
    args = parser.parse_args()
    lines = (args.run / 'samples.jsonl').read_text(encoding='utf-8').splitlines()
    samples = [json.loads(line) for line in lines]
    names = [key[:-len('_rss_mb')] for key in samples[0] if key.endswith('_rss_mb')]
    print_windows(samples, names, args.warmup * 60)
    print_open_files(args.run / 'open_files.jsonl', args.warmup * 60)


if __name__ == '__main__':
    main()
