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
Vehicle speeds on the wire: 2 km/h bins, percentiles from them, and their checks.

A count record may carry, per line, direction and class, a sparse histogram
of the counted vehicles' speeds (``speeds``: bin ``b`` holds speeds in
``[2b, 2b + 2)`` km/h), and, when the device is asked to, one row per
counted vehicle (``vehicles``). Bins add up over any interval, so the server
gives the 15th/50th/85th/95th percentiles and the mean of any bucket from
the bins of its periods, with the same functions the edge uses. Standard
library only: the edge and the server check both fields here, with the
same words.
"""

from __future__ import annotations

import math
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Set, Tuple

from vehicle_detection.wire_values import class_name_problem, is_integer_in, is_number, \
    name_problems

SPEED_BIN_KMH = 2.0
MAX_SPEED_KMH = 400.0  # a speed above this is a measuring error, not a vehicle
MAX_SPEED_BIN = int(MAX_SPEED_KMH / SPEED_BIN_KMH) - 1  # 199: [398, 400) km/h
MAX_BIN_COUNT = 1_000_000_000
MAX_VEHICLE_ROWS = 20_000  # per record: about 1 MB of JSON, within the body limit
PERCENTILES = (15, 50, 85, 95)
Bins = Dict[int, int]  # bin -> vehicles
Key = Tuple[str, str, str]  # line, direction, class_name


def speed_bin(kmh: float) -> int:
    """Return the bin of a speed (km/h); speeds past the last bin go in it."""
    return min(MAX_SPEED_BIN, max(0, int(kmh // SPEED_BIN_KMH)))


def merge_bins(histograms: Iterable[Mapping[int, int]]) -> Bins:
    """Add histograms up (bins of several periods, lines or classes)."""
    merged: Bins = {}
    for bins in histograms:
        for index, count in bins.items():
            merged[index] = merged.get(index, 0) + count
    return merged


def percentile(bins: Mapping[int, int], share: float) -> Optional[float]:
    """
    Return the speed below which ``share`` (0-1) of the vehicles drove, None without any.

    Within the bin where that share is reached, its vehicles are taken as
    spread evenly over the bin's 2 km/h (linear interpolation): the answer
    is within a bin's width of the percentile of the speeds themselves.
    """
    total = sum(bins.values())
    if total <= 0:
        return None
    wanted, below = share * total, 0
    for index in sorted(bins):
        count = bins[index]
        if count and below + count >= wanted:
            return SPEED_BIN_KMH * (index + (wanted - below) / count)
        below += count
    return SPEED_BIN_KMH * (max(bins) + 1)


def mean_speed(bins: Mapping[int, int]) -> Optional[float]:
    """Return the mean speed taking each vehicle at its bin's centre, None without any."""
    total = sum(bins.values())
    if total <= 0:
        return None
    return SPEED_BIN_KMH * sum((index + 0.5) * count for index, count in bins.items()) / total


def speed_summary(bins: Mapping[int, int]) -> Dict[str, Optional[float]]:
    """Return p15/p50/p85/p95, mean (km/h, 1 decimal) and the vehicles measured."""
    summary: Dict[str, Optional[float]] = {
        f'speed_p{p}': _rounded(percentile(bins, p / 100.0)) for p in PERCENTILES}
    summary['speed_mean'] = _rounded(mean_speed(bins))
    summary['speed_n'] = float(sum(bins.values()))
    return summary


def _rounded(value: Optional[float]) -> Optional[float]:
    return None if value is None else round(value, 1)


def speeds_problems(speeds: Any, counts: Mapping[Key, int]) -> List[Optional[str]]:
    """
    Say what is wrong with a record's ``speeds`` against its ``counts`` (key -> vehicles).

    Each entry is ``[line, direction, class_name, [[bin, count], ...]]``:
    a key of the record's counts, once, bins once each within
    ``[0, MAX_SPEED_BIN]``, and no more vehicles than that row counted.
    """
    if not isinstance(speeds, list):
        return ['speeds must be a list of [line, direction, class_name, bins]']
    problems: List[Optional[str]] = []
    seen: Set[Key] = set()
    for entry in speeds:
        if not (isinstance(entry, (list, tuple)) and len(entry) == 4
                and isinstance(entry[3], (list, tuple))):
            problems.append(f'speeds entry {entry!r} is not [line, direction, class_name, bins]')
            continue
        key_problems = _key_problems(entry[:3])
        if any(key_problems):
            problems.extend(key_problems)
            continue
        key: Key = (entry[0], entry[1], entry[2])
        if key in seen:
            problems.append(f'speeds name {"/".join(key)} twice')
        seen.add(key)
        bins = entry[3]
        if not all(isinstance(b, (list, tuple)) and len(b) == 2
                   and is_integer_in(b[0], 0, MAX_SPEED_BIN)
                   and is_integer_in(b[1], 1, MAX_BIN_COUNT) for b in bins):
            problems.append(f'speeds of {"/".join(key)}: bins must be [bin, count] pairs, bin '
                            f'an integer in [0, {MAX_SPEED_BIN}], count at least 1')
            continue
        if len({b[0] for b in bins}) != len(bins):
            problems.append(f'speeds of {"/".join(key)}: a bin named twice')
        measured = sum(b[1] for b in bins)
        if measured > counts.get(key, 0):
            problems.append(f'speeds of {"/".join(key)}: {measured} vehicles measured, '
                            f'{counts.get(key, 0)} counted')
    return problems


def vehicles_problems(vehicles: Any, period_s: Any, counts: Mapping[Key, int]
                      ) -> List[Optional[str]]:
    """
    Say what is wrong with a record's per-vehicle rows against its period and counts.

    Each row is ``[offset_s, line, direction, class_name, speed_kmh or null]``:
    seconds from the period's start (within it), a key of the record's counts,
    no more rows of a key than it counted, at most :data:`MAX_VEHICLE_ROWS`.
    """
    if not isinstance(vehicles, list):
        return ['vehicles must be a list of [offset_s, line, direction, class_name, speed_kmh]']
    if len(vehicles) > MAX_VEHICLE_ROWS:
        return [f'{len(vehicles)} vehicles: at most {MAX_VEHICLE_ROWS} in one record']
    problems: List[Optional[str]] = []
    per_key: Dict[Key, int] = {}
    span = period_s if is_number(period_s) else 0
    for row in vehicles:
        if not (isinstance(row, (list, tuple)) and len(row) == 5):
            problems.append(f'vehicle {row!r} is not [offset_s, line, direction, class_name, '
                            'speed_kmh]')
            continue
        offset, speed = row[0], row[4]
        key_problems = _key_problems(row[1:4])
        if any(key_problems):
            problems.extend(key_problems)
            continue
        if not (is_number(offset) and 0.0 <= offset < span):
            problems.append(f'vehicle offset {offset!r} is not seconds within the period '
                            f'[0, {span})')
        if speed is not None and not (is_number(speed) and 0.0 <= speed <= MAX_SPEED_KMH):
            problems.append(f'vehicle speed {speed!r} is not null or km/h in '
                            f'[0, {MAX_SPEED_KMH:g}]')
        key: Key = (row[1], row[2], row[3])
        per_key[key] = per_key.get(key, 0) + 1
    for key, rows in per_key.items():
        if rows > counts.get(key, 0):
            problems.append(f'vehicles of {"/".join(key)}: {rows} rows, {counts.get(key, 0)} '
                            'counted')
    return problems


def speed_kmh_problem(value: Any) -> Optional[str]:
    """Say what is wrong with an alert's ``speed_kmh`` (None when it is null or fine)."""
    if value is None or (is_number(value) and math.isfinite(value)
                         and 0.0 <= value <= MAX_SPEED_KMH):
        return None
    return f'speed_kmh {value!r} is not km/h in [0, {MAX_SPEED_KMH:g}]'


def _key_problems(key: Sequence[Any]) -> List[Optional[str]]:
    line, direction, class_name = key
    return [*name_problems(line=line, direction=direction),
            class_name_problem(class_name) if isinstance(class_name, str)
            else 'class name must be text']
