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
Cloud server memory under concurrent snapshot uploads: worst-case JPEGs against baseline ones.

Starts ``vehicle-detection-cloud serve`` (default settings, one process) on
127.0.0.1 for each case, uploads ``--uploads`` snapshots at once, then fetches
their thumbnails at once, and samples the server's resident memory (psutil)
throughout:

- worst: the largest progressive JPEGs the server still accepts (a progressive
  file needs its whole coefficient array to decode: 12 MiB at the limit,
  1920x1088 with full-resolution chroma);
- baseline: baseline JPEGs of the same pixel count, as the edge sends;
- refused: 4096x4096 progressive JPEGs (96 MiB each to decode), which must be
  refused (415) from their headers.

The cases alternate for ``--rounds`` rounds, each on a fresh server; a case's
peak is its highest. Target: peak RSS of the worst case at most 2x the
baseline's, every worst and baseline upload stored, every refused one 415.
The last line is one JSON object.

    python bench/cloud_images.py [--uploads 16] [--rounds 2]
"""

from __future__ import annotations

import argparse
from concurrent.futures import ThreadPoolExecutor
import json
from pathlib import Path
import statistics
import sys
import tempfile
import time
from typing import Dict, List

import requests

TEST_HELPERS = Path(__file__).resolve().parents[1] / 'test'
MIB = 2 ** 20


def run_case(data: List[bytes], uploads: int) -> Dict[str, object]:
    """Upload ``data`` concurrently to a fresh server, then fetch thumbnails; return figures."""
    from cloud_helpers import add_device, alert_body, CloudServer, PeakMemory

    with tempfile.TemporaryDirectory() as folder:
        db, storage = f'sqlite:///{folder}/cloud.db', f'{folder}/images'
        key = add_device('edge-1', db, storage)
        server = CloudServer(db, storage)
        try:
            session = requests.Session()
            session.headers['X-API-Key'] = key
            events = []
            for _ in range(uploads):
                body = alert_body('edge-1')
                assert session.post(f'{server.url}/api/v1/alerts', json=body,
                                    timeout=10).status_code == 201
                events.append(body['event_id'])

            def upload(index: int) -> int:
                return requests.put(
                    f'{server.url}/api/v1/alerts/{events[index]}/image',
                    data=data[index % len(data)], timeout=120,
                    headers={'X-API-Key': key, 'Content-Type': 'image/jpeg'}).status_code

            def thumbnail(event: str) -> int:
                return requests.get(f'{server.url}/api/v1/alerts/{event}/image',
                                    params={'thumbnail': 'true'}, timeout=120).status_code

            with PeakMemory(server.process.pid, every_s=0.002) as memory:
                started = time.perf_counter()
                with ThreadPoolExecutor(uploads) as pool:
                    codes = list(pool.map(upload, range(uploads)))
                upload_s = time.perf_counter() - started
                stored = [e for e, code in zip(events, codes) if code == 201]
                with ThreadPoolExecutor(uploads) as pool:
                    thumbnails = list(pool.map(thumbnail, stored))
        finally:
            server.stop()
    return {'start_mb': memory.start_bytes / MIB, 'peak_mb': memory.peak_bytes / MIB,
            'codes': codes, 'thumbnails': thumbnails, 'upload_s': upload_s}


def main() -> None:
    """Run the cases side by side and print the figures, then one JSON line."""
    parser = argparse.ArgumentParser(description='cloud server memory under JPEG uploads')
    parser.add_argument('--uploads', type=int, default=16, help='concurrent uploads')
    parser.add_argument('--rounds', type=int, default=2)
    args = parser.parse_args()
    sys.path.insert(0, str(TEST_HELPERS))  # the tests' server and JPEG helpers, shared
    from cloud_helpers import flat_jpeg

    from vehicle_detection.cloud.server.jpeg import jpeg_layout, MAX_BUFFERED_BYTES

    # Distinct pictures (the server stores one file per content), the same in both cases.
    worst = [flat_jpeg(1920, 1088, progressive=True, full_chroma=True, seed=i)
             for i in range(args.uploads)]
    assert jpeg_layout(worst[0]).coefficient_bytes == MAX_BUFFERED_BYTES
    cases = {'worst': worst,
             'baseline': [flat_jpeg(1920, 1088, full_chroma=True, seed=i)
                          for i in range(args.uploads)],
             'refused': [flat_jpeg(4096, 4096, progressive=True, full_chroma=True, seed=i)
                         for i in range(args.uploads)]}
    runs: Dict[str, List[Dict[str, object]]] = {name: [] for name in cases}
    for _ in range(args.rounds):
        for name, data in cases.items():
            runs[name].append(run_case(data, args.uploads))
    peak = {name: max(float(r['peak_mb']) for r in found) for name, found in runs.items()}
    start = {name: statistics.median(float(r['start_mb']) for r in found)
             for name, found in runs.items()}
    codes = {name: sorted({c for r in found for c in r['codes']}) for name, found in runs.items()}
    thumbs = {name: sorted({c for r in found for c in r['thumbnails']})
              for name, found in runs.items()}
    result = {
        'uploads': args.uploads, 'rounds': args.rounds,
        'worst_peak_mb': round(peak['worst'], 1), 'baseline_peak_mb': round(peak['baseline'], 1),
        'refused_peak_mb': round(peak['refused'], 1), 'idle_mb': round(start['baseline'], 1),
        'worst_codes': codes['worst'], 'baseline_codes': codes['baseline'],
        'refused_codes': codes['refused'], 'thumbnail_codes': thumbs['worst'] + thumbs['baseline'],
        'refused_upload_s': round(max(float(r['upload_s']) for r in runs['refused']), 2)}
    result['peak_ratio'] = round(peak['worst'] / peak['baseline'], 3)
    result['refused_ratio'] = round(peak['refused'] / peak['baseline'], 3)
    result['meets_targets'] = (result['peak_ratio'] <= 2 and result['refused_ratio'] <= 2 and
                               codes['worst'] == codes['baseline'] == [201] and
                               codes['refused'] == [415] and
                               set(result['thumbnail_codes']) == {200})
    print(f'{args.uploads} concurrent uploads, then their thumbnails, {args.rounds} rounds: '
          f'peak RSS worst (1920x1088 progressive 4:4:4) {result["worst_peak_mb"]} MiB, '
          f'baseline (same pixels) {result["baseline_peak_mb"]} MiB, ratio '
          f'{result["peak_ratio"]} (target <= 2); 4096x4096 progressive: '
          f'{result["refused_codes"]} with peak {result["refused_peak_mb"]} MiB; '
          f'idle {result["idle_mb"]} MiB')
    print(json.dumps(result))


if __name__ == '__main__':
    main()
