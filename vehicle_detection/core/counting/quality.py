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
How well a count period was observed: its seconds seen and what degraded it.

A count of zero means "no traffic" only when the camera saw the road. Each
period therefore carries the seconds actually observed (frames closer than
``stall_s`` apart cover the time between them; a longer gap is a stall and
covers nothing) and flags:

- ``dark``: most of the period's frames are dark (a large share of black
  pixels: night, a covered lens);
- ``glare``: most of its frames hold blooms of lamps (very bright, strongly
  coloured pixels, as a CCTV sensor renders headlights at night or low sun);
- ``detections_collapsed``: far fewer vehicles per frame than the recent
  periods' usual level (the last hour), which had enough traffic to tell;
- ``stalled``: frames stopped for longer than ``stall_s`` within the period;
- ``camera_reconnected``: frames came back after such a stall.

A period with no frame at all is never sent ("no data"). The image figures
are two shares over a strided sample of each frame (about 10 000 pixels),
cheap beside the detector.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
import math
import statistics
from typing import Any, Deque, Dict, List, Optional, Tuple

import numpy as np

from vehicle_detection.wire import QUALITY_FLAGS
SAMPLE_PIXELS = 10_000  # pixels of a frame the light figures look at


@dataclass(frozen=True)
class QualityLimits:
    """When a period is flagged (defaults set on the shared day and night clips)."""

    stall_s: float = 5.0  # frames further apart than this: a stall, not observed
    dark_share: float = 0.08  # share of pixels darker than DARK_LUMA in a dark frame
    glare_share: float = 0.01  # share of lamp-bloom pixels in a glaring frame
    collapse_ratio: float = 0.25  # vehicles per frame below this share of the usual level
    usual_min: float = 1.0  # ...when the usual level is at least this many per frame
    history_s: float = 3600.0  # the recent periods the usual level is taken from


DARK_LUMA = 40.0
BLOOM_LEVEL = 200  # a bloom pixel: its brightest channel at least this...
BLOOM_CHROMA = 100  # ...and that much above its darkest channel


def frame_light(frame: np.ndarray) -> Tuple[float, float]:
    """
    Return a BGR frame's share of dark pixels and of lamp-bloom pixels.

    Looks at a strided sample of about ``SAMPLE_PIXELS`` pixels.
    """
    height, width = frame.shape[:2]
    stride = max(1, int(math.sqrt(height * width / SAMPLE_PIXELS)))
    sample = frame[::stride, ::stride]
    if sample.ndim == 2 or sample.shape[2] == 1:  # grey (mono8)
        grey = sample.reshape(sample.shape[0], sample.shape[1])
        return float(np.count_nonzero(grey < DARK_LUMA)) / grey.size, 0.0
    # Channel by channel in integers: numpy reduces a last axis of 3 slowly.
    blue, green, red = (sample[..., c].astype(np.int32) for c in range(3))
    luma = 29 * blue + 150 * green + 77 * red  # BT.601 weights, x 256
    brightest = np.maximum(np.maximum(blue, green), red)
    darkest = np.minimum(np.minimum(blue, green), red)
    bloom = (brightest >= BLOOM_LEVEL) & (brightest - darkest >= BLOOM_CHROMA)
    size = luma.size
    return (float(np.count_nonzero(luma < int(DARK_LUMA * 256))) / size,
            float(np.count_nonzero(bloom)) / size)


@dataclass(frozen=True)
class PeriodQuality:
    """What the wire's ``quality`` says of one period: flags and seconds observed."""

    flags: Tuple[str, ...]
    observed_s: float

    def to_json(self) -> Dict[str, Any]:
        """Return the wire form ``{"flags": [...], "observed_s": s}``."""
        return {'flags': list(self.flags), 'observed_s': round(self.observed_s, 1)}


@dataclass
class _Open:
    observed_s: float = 0.0
    frames: int = 0
    vehicles: int = 0
    flags: set = field(default_factory=set)
    dark: List[bool] = field(default_factory=list)
    glare: List[bool] = field(default_factory=list)


class QualityWatch:
    """The quality of one camera's count periods, fed frame by frame."""

    def __init__(self, period_s: int, limits: QualityLimits = QualityLimits()) -> None:
        self.period_s = period_s
        self.limits = limits
        self._open: Dict[int, _Open] = collections.defaultdict(_Open)
        self._last: Optional[float] = None  # stamp of the last frame
        self._usual: Deque[float] = collections.deque(
            maxlen=max(1, int(limits.history_s / period_s)))

    def light(self, stamp: float, dark_share: float, bloom_share: float) -> None:
        """Note one frame's light figures (:func:`frame_light`) and stamp (seconds)."""
        period = self._open[self._index(stamp)]
        period.dark.append(dark_share >= self.limits.dark_share)
        period.glare.append(bloom_share >= self.limits.glare_share)

    def frame(self, stamp: float, vehicles: int) -> None:
        """Note one frame: its stamp (seconds) and the vehicles detected in it."""
        if self._last is not None and stamp > self._last:
            gap = stamp - self._last
            if gap > self.limits.stall_s:
                self._open[self._index(self._last)].flags.add('stalled')
                self._open[self._index(stamp)].flags.update(('stalled', 'camera_reconnected'))
            else:
                self._cover(self._last, stamp)
        period = self._open[self._index(stamp)]
        period.frames += 1
        period.vehicles += vehicles
        if self._last is None or stamp > self._last:
            self._last = stamp

    def close(self, index: int) -> PeriodQuality:
        """Return the quality of period ``index`` (start = index x period_s) and forget it."""
        period = self._open.pop(index, _Open())
        for earlier in [i for i in self._open if i < index]:  # never sent: no frames of theirs
            del self._open[earlier]
        flags = set(period.flags)
        if period.dark and sum(period.dark) * 2 > len(period.dark):
            flags.add('dark')
        if period.glare and sum(period.glare) * 2 > len(period.glare):
            flags.add('glare')
        rate = period.vehicles / period.frames if period.frames else 0.0
        if len(self._usual) >= 3:
            usual = statistics.median(self._usual)
            if usual >= self.limits.usual_min and rate < self.limits.collapse_ratio * usual:
                flags.add('detections_collapsed')
        if period.frames and not flags & {'dark', 'glare', 'detections_collapsed'}:
            self._usual.append(rate)  # the usual level: periods seen well
        observed = min(float(self.period_s), period.observed_s)
        return PeriodQuality(tuple(f for f in QUALITY_FLAGS if f in flags), observed)

    def _index(self, stamp: float) -> int:
        return math.floor(stamp / self.period_s)

    def _cover(self, start: float, end: float) -> None:
        """Count [start, end) as observed, split over the periods it spans."""
        while start < end:
            index = self._index(start)
            stop = min(end, (index + 1) * self.period_s)
            self._open[index].observed_s += stop - start
            start = stop
