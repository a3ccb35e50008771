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
The data quality of count periods on the server: stored, summed per bucket, as columns.

A record's flags are stored as a bit mask (bit i: ``wire.QUALITY_FLAGS[i]``),
so that a bucket's flags are the bitwise union of its periods', taken per
flag with ``max`` (the same SQL on SQLite and PostgreSQL). The coverage
columns of the CSV are made here, in one place.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Optional, Sequence

from sqlalchemy import case, func

from vehicle_detection.cloud.server.db import CountRecord
from vehicle_detection.cloud.server.models_counts import CountCoverage, CountsIn
from vehicle_detection.wire import QUALITY_FLAGS

CSV_COLUMNS = ('coverage_s', 'observed_s', 'quality', 'scheme')
# The aggregates of a bucket no stored record says anything of (observed: all of it).
NOT_ASSESSED = (None, None, 0, *(0 for _ in QUALITY_FLAGS))


def stored_quality(record: CountsIn) -> Dict[str, Any]:
    """Return the columns of a count record that keep its scheme and quality."""
    quality = record.quality
    return {'scheme': record.scheme,
            'quality_flags': None if quality is None else flag_mask(quality.flags),
            'observed_s': None if quality is None else float(quality.observed_s)}


def flag_mask(flags: Iterable[str]) -> int:
    """Return the bit mask of quality flags."""
    return sum(1 << QUALITY_FLAGS.index(flag) for flag in set(flags))


def coverage_aggregates(covered_s: Any) -> List[Any]:
    """
    Return the SQL aggregates of a bucket's quality: observed seconds, scheme, flag bits.

    ``covered_s``: the seconds of the bucket a record covers (a period may
    reach past the bucket's end); a record's observed seconds never exceed them.
    """
    observed = func.coalesce(CountRecord.observed_s, covered_s)
    flags = func.coalesce(CountRecord.quality_flags, 0)
    return [func.sum(case((observed < covered_s, observed), else_=covered_s)),
            func.max(CountRecord.scheme),
            func.min(case((CountRecord.quality_flags.is_(None), 0), else_=1)),
            *(func.max(case((flags.op('&')(1 << bit) != 0, 1), else_=0))
              for bit in range(len(QUALITY_FLAGS)))]


def coverage_entry(start: Any, device: str, size: int, covered: Any,
                   aggregates: Sequence[Any]) -> Dict[str, Any]:
    """Return a :class:`CountCoverage`'s fields from a row of :func:`coverage_aggregates`."""
    observed, scheme, assessed, *bits = aggregates
    seconds = min(size, int(covered))
    return {'start': start, 'device_id': device, 'seconds': seconds,
            'observed_seconds': seconds if observed is None
            else min(seconds, round(float(observed))),
            'assessed': bool(assessed),
            'flags': [flag for flag, bit in zip(QUALITY_FLAGS, bits) if bit],
            'scheme': scheme}


def csv_cells(coverage: Optional[CountCoverage]) -> List[str]:
    """
    Return a CSV row's coverage columns (``CSV_COLUMNS``): empty where none is known.

    ``quality`` is the bucket's flags, space-separated; ``ok`` where every
    period said its quality and none was flagged; empty where a period did not say.
    """
    if coverage is None:
        return ['', '', '', '']
    quality = ' '.join(coverage.flags) or ('ok' if coverage.assessed else '')
    return [str(coverage.seconds), str(coverage.observed_seconds), quality,
            coverage.scheme or '']
