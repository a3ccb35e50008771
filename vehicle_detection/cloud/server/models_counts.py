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
Bodies of the counts API (pydantic): the counts an edge posts and the series a read gets.

Fields, flags and limits come from the wire contract
(:mod:`vehicle_detection.wire_counts`, which the edge checks its records
with), the name and time rules from :mod:`.models`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, List, Literal, Optional, Tuple
import uuid

from pydantic import BaseModel, ConfigDict, Field, model_validator

from vehicle_detection.cloud.server.models import ClassName, Number, PlausibleTime, SafeName
from vehicle_detection.wire import (
    count_limits_problem, MAX_COUNT, MAX_COUNT_ROWS, MAX_PERIOD_S, QUALITY_FLAGS)
from vehicle_detection.wire_speeds import speeds_problems, vehicles_problems


class CountRowIn(BaseModel):
    """Vehicles of one class that crossed one line one way (``wire.COUNT_ROW_FIELDS``)."""

    model_config = ConfigDict(extra='forbid')

    line: SafeName
    direction: SafeName
    class_name: ClassName
    count: int = Field(ge=0, le=MAX_COUNT, strict=True)


class QualityIn(BaseModel):
    """What degraded a count period (``wire.QUALITY_FIELDS``): flags and seconds observed."""

    model_config = ConfigDict(extra='forbid')

    flags: List[Literal[QUALITY_FLAGS]] = Field(max_length=len(QUALITY_FLAGS))  # type: ignore
    observed_s: Number = Field(ge=0, le=MAX_PERIOD_S)

    @model_validator(mode='after')
    def _flags_are_distinct(self) -> 'QualityIn':
        if len(set(self.flags)) != len(self.flags):
            raise ValueError(f'quality flags must be distinct, of {", ".join(QUALITY_FLAGS)}')
        return self


class CountsIn(BaseModel):
    """``POST /api/v1/counts`` body: one period of one camera (``wire.COUNT_FIELDS``)."""

    model_config = ConfigDict(extra='forbid')

    record_id: uuid.UUID
    device_id: SafeName
    camera_id: SafeName
    period_start: PlausibleTime
    period_s: int = Field(gt=0, le=MAX_PERIOD_S, strict=True)
    counts: List[CountRowIn] = Field(max_length=MAX_COUNT_ROWS)
    replay: bool = Field(False, strict=True)  # counted in recorded images (a bag), not live
    scheme: Optional[SafeName] = None  # the class scheme of the class names (uk6, coco)
    quality: Optional[QualityIn] = None  # what degraded detection; seconds observed
    # Checked by the wire's own rules (wire_speeds), the edge's: [line, direction, class,
    # [[bin, vehicles], ...]] and [offset_s, line, direction, class, km/h or null] rows.
    speeds: Optional[List[Any]] = Field(None, json_schema_extra={
        'description': '2 km/h bins of measured speeds per line, direction and class'})
    vehicles: Optional[List[Any]] = Field(None, json_schema_extra={
        'description': 'one row per counted vehicle: offset_s, line, direction, class, km/h'})

    @model_validator(mode='after')
    def _rows_are_unique_and_within_limits(self) -> 'CountsIn':
        if self.quality is not None and self.quality.observed_s > self.period_s:
            raise ValueError(f'observed_s {self.quality.observed_s!r} is not a number of '
                             f'seconds in [0, {self.period_s}]')
        keys = self.count_keys()
        if len(set(keys)) != len(keys):
            raise ValueError('counts must name each (line, direction, class_name) once')
        problem = count_limits_problem(keys)
        if problem:
            raise ValueError(f'a count record of {problem}')
        counted = {(row.line, row.direction, row.class_name): row.count for row in self.counts}
        problems = [*(speeds_problems(self.speeds, counted) if self.speeds is not None else ()),
                    *(vehicles_problems(self.vehicles, self.period_s, counted)
                      if self.vehicles is not None else ())]
        if any(problems):
            raise ValueError('; '.join(p for p in problems if p))
        return self

    def count_keys(self) -> List[Tuple[str, str, str]]:
        """Return the (line, direction, class_name) of each row."""
        return [(row.line, row.direction, row.class_name) for row in self.counts]


class CountsCreated(BaseModel):
    """
    Answer to a counts post: 201 the first time, 200 when that period is stored already.

    200 answers a retry (the same record id) and a record of a stored period
    with the same counts (``stored_record_id`` names the stored record); a
    record with other counts for a stored period is a 409.
    """

    record_id: uuid.UUID
    created: bool
    device_id: str  # the key's device, under which the counts are filed
    stored_record_id: Optional[uuid.UUID] = None  # the record counted for that period


class CountBucket(BaseModel):
    """
    Vehicles of one class that crossed one line in one direction within one bucket.

    ``direction`` or ``class_name`` is null when the query summed over it (``by``).
    """

    start: datetime
    device_id: str
    line: str
    direction: Optional[str]
    class_name: Optional[str]
    count: int
    # Speeds of the vehicles measured in the bucket (from the merged 2 km/h bins), km/h;
    # null where none was measured (an uncalibrated camera).
    speed_n: int = 0
    speed_p15: Optional[float] = None
    speed_p50: Optional[float] = None
    speed_p85: Optional[float] = None
    speed_p95: Optional[float] = None
    speed_mean: Optional[float] = None


class CountCoverage(BaseModel):
    """
    Seconds of counting periods a device reported within one bucket (0: no data).

    ``observed_seconds``: of those, the seconds the camera saw (a period's
    ``observed_s`` where its record says it; else all of it); ``flags``: what
    degraded detection in any of the bucket's periods (``wire.QUALITY_FLAGS``):
    counts of a flagged bucket may be low; ``assessed``: every period said its
    quality (an older edge does not). ``scheme``: the class scheme of its
    class names (null: an edge that does not say).
    """

    start: datetime
    device_id: str
    seconds: int
    observed_seconds: int
    assessed: bool
    flags: List[str]
    scheme: Optional[str] = None


class CountSeries(BaseModel):
    """Counts aggregated into buckets (``GET /api/v1/counts``); buckets without rows had none."""

    bucket_s: int
    start: datetime
    end: datetime
    rows: List[CountBucket]
    coverage: List[CountCoverage]
