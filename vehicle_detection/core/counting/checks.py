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
Why counting cannot work as configured, for the bridge's log and /diagnostics.

Counting fails silently otherwise: lines in fractions wait for an image to
know its size, untracked detections cannot be counted, and a line or zone in
pixels outside the image never counts anything.
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

from vehicle_detection.core.events.geometry import Geometry


class CountingChecks:
    """The image size seen so far and the standing counting problems."""

    def __init__(self, image_topic: str) -> None:
        self.image_topic = image_topic
        self.size: Optional[Tuple[int, int]] = None  # of the last image
        self.waiting = ''  # why the last detections could not be counted
        self.outside = ''  # lines or zones outside the image

    @property
    def problem(self) -> str:
        """Return what /diagnostics warns about ('' when counting works)."""
        return '; '.join(filter(None, (self.waiting, self.outside)))

    def on_image(self, geometry: Geometry, size: Tuple[int, int]) -> str:
        """Note an image's size; return a new warning to log once ('' when none)."""
        if size == self.size:
            return ''
        self.size = size
        return self.recheck(geometry)

    def recheck(self, geometry: Geometry) -> str:
        """Check ``geometry`` against the last image; return a new warning ('' when none)."""
        outside = '; '.join(geometry.outside_image(*self.size)) if self.size else ''
        new = outside if outside != self.outside else ''
        self.outside = outside
        return new

    def on_detections(self, geometry: Geometry, track_ids: Sequence[int]) -> bool:
        """Note one frame's detections; return whether they can be counted now."""
        if geometry.needs_size and self.size is None:
            self.waiting = (f'counting waits for an image on {self.image_topic}: lines in '
                            'fractions of the image need its size')
            return False
        self.waiting = ('counting needs track ids: set tracking on the detector node'
                        if track_ids and all(t < 0 for t in track_ids) else '')
        return True
