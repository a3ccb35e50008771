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
Drawing lines, zones and running counts over a frame (``/detections/image``).

Takes the status the bridge publishes on ``traffic_counts`` (see
:meth:`CountingSession.status`), as parsed JSON: anything malformed in it is
skipped, never raised, since the topic is open to any publisher.
"""

from __future__ import annotations

import json
import math
from typing import Any, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

LINE_COLOUR = (0, 220, 255)  # BGR: amber
ZONE_COLOUR = (255, 160, 0)  # BGR: azure
TEXT_COLOUR = (255, 255, 255)


def parse_status(text: str) -> Optional[Dict[str, Any]]:
    """Return the counts status in a ``traffic_counts`` message, None when it is not one."""
    try:
        status = json.loads(text)
    except ValueError:
        return None
    return status if isinstance(status, dict) else None


def draw_counts(canvas: np.ndarray, status: Dict[str, Any]) -> np.ndarray:
    """Draw the status's lines (with totals per direction) and zones on ``canvas``; return it."""
    totals = _totals(status.get('total'))
    for line in _items(status.get('lines')):
        a, b = _point(line.get('a')), _point(line.get('b'))
        directions = line.get('directions')
        if a is None or b is None or not isinstance(directions, list) or len(directions) != 2:
            continue
        name = str(line.get('name', ''))
        cv2.line(canvas, a, b, LINE_COLOUR, 2, cv2.LINE_AA)
        oneway = line.get('oneway')
        if oneway in directions:  # an arrow the way traffic may cross
            _arrow(canvas, a, b, 1 if oneway == directions[0] else -1)
        labels = [f'{d}: {totals.get((name, str(d)), 0)}' for d in directions]
        _label(canvas, f'{name}  ' + '  '.join(labels), (min(a[0], b[0]) + 4,
                                                         max(14, min(a[1], b[1]) - 6)))
    for zone in _items(status.get('zones')):
        polygon = [p for p in map(_point, _items_any(zone.get('polygon'))) if p is not None]
        if len(polygon) < 3:
            continue
        cv2.polylines(canvas, [np.array(polygon, np.int32)], True, ZONE_COLOUR, 2, cv2.LINE_AA)
        dwell = zone.get('dwell_s')
        suffix = f' (dwell {dwell:g} s)' if isinstance(dwell, (int, float)) and dwell else ''
        _label(canvas, f"{zone.get('name', '')}{suffix}", (polygon[0][0] + 4, polygon[0][1] + 16))
    return canvas


def _totals(rows: Any) -> Dict[Tuple[str, str], int]:
    totals: Dict[Tuple[str, str], int] = {}
    for row in _items(rows):
        count = row.get('count')
        if isinstance(count, int):
            key = (str(row.get('line')), str(row.get('direction')))
            totals[key] = totals.get(key, 0) + count
    return totals


def _items(value: Any) -> List[Dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _items_any(value: Any) -> Sequence[Any]:
    return value if isinstance(value, list) else []


def _point(value: Any) -> Optional[Tuple[int, int]]:
    if not (isinstance(value, list) and len(value) == 2
            and all(isinstance(v, (int, float)) and math.isfinite(v) for v in value)):
        return None
    x, y = value
    if not (-1e5 <= x <= 1e5 and -1e5 <= y <= 1e5):
        return None
    return round(x), round(y)


def _arrow(canvas: np.ndarray, a: Tuple[int, int], b: Tuple[int, int], side: int) -> None:
    """Draw an arrow across the middle of line a-b to its right (1) or left (-1) side."""
    dx, dy = b[0] - a[0], b[1] - a[1]
    length = math.hypot(dx, dy)
    if length < 1:
        return
    reach = min(30.0, length / 3) * side / length
    middle = ((a[0] + b[0]) // 2, (a[1] + b[1]) // 2)
    tip = (round(middle[0] - dy * reach), round(middle[1] + dx * reach))
    tail = (round(middle[0] + dy * reach), round(middle[1] - dx * reach))
    cv2.arrowedLine(canvas, tail, tip, LINE_COLOUR, 2, cv2.LINE_AA, tipLength=0.35)


def _label(canvas: np.ndarray, text: str, origin: Tuple[int, int]) -> None:
    text = text[:80]
    (width, height), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)
    x, y = origin
    cv2.rectangle(canvas, (x - 2, y - height - 4), (x + width + 2, y + 4), (0, 0, 0), -1)
    cv2.putText(canvas, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, 0.45, TEXT_COLOUR, 1,
                cv2.LINE_AA)
