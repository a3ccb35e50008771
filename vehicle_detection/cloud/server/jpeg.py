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
Snapshot JPEGs: checked before they are stored, thumbnailed on demand, in bounded memory.

A baseline (single-scan) JPEG decodes a few rows of blocks at a time, so
checking one costs little whatever its size. A progressive or multi-scan
JPEG cannot be decoded that way: libjpeg keeps the whole coefficient array
(128 bytes per 8x8 block of every component: 100 MB for a 4096x4096 colour
picture, whatever the output scale). Such files are read from their headers
first and refused above :data:`MAX_BUFFERED_BYTES` (about two megapixels),
and they are decoded on :data:`BUFFERED_DECODES` threads of their own per process.
The edge sends baseline JPEGs (OpenCV's default); progressive ones come from
other clients.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
import math
import os
import threading
from typing import Any, Iterator, Optional, Tuple

import cv2
import numpy as np
import simplejpeg

THUMBNAIL_WIDTH = 240
DEFAULT_MAX_PIXELS = 4096 * 4096
#: progressive or multi-scan JPEGs: at most the coefficients of a 1920x1088 colour picture
#: with full-resolution chroma (4:4:4), 12.0 MiB; a 4:2:0 one may have twice the pixels
MAX_BUFFERED_BYTES = 1920 * 1088 * 3 * 2
BUFFERED_DECODES = 2  # threads per process that decode them: at most 2 x 12 MiB held
_BUFFERED_POOL: Optional[Tuple[int, ThreadPoolExecutor]] = None  # (pid, pool)
_POOL_LOCK = threading.Lock()
BLOCK_BYTES = 64 * 2  # one 8x8 block of 16-bit DCT coefficients
MIB = 1024 * 1024
# Frame markers: SOF0, SOF1 and SOF9 are sequential (decoded a row of blocks at a time
# when one scan holds every component); every other frame type is progressive, lossless or
# hierarchical, which libjpeg decodes (or refuses) with the whole coefficient array.
SEQUENTIAL_FRAMES = frozenset((0xC0, 0xC1, 0xC9))
OTHER_FRAMES = frozenset((0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF))
STANDALONE_MARKERS = frozenset((0x01, *range(0xD0, 0xD8)))  # TEM, RST0-7: no length


class ImageRefused(ValueError):
    """A JPEG the server will not store; the message says why (an HTTP 415)."""


@dataclass(frozen=True)
class JpegLayout:
    """What the headers of a JPEG say, up to its first scan."""

    width: int
    height: int
    frame: int  # the SOF marker's second byte
    sampling: Tuple[Tuple[int, int], ...]  # (horizontal, vertical) factor per component
    first_scan_components: int

    @property
    def buffered(self) -> bool:
        """Tell whether libjpeg must hold every coefficient (progressive or multi-scan)."""
        return (self.frame not in SEQUENTIAL_FRAMES or
                self.first_scan_components < len(self.sampling))

    @property
    def coefficient_bytes(self) -> int:
        """Return the size of the whole-image coefficient array libjpeg would allocate."""
        h_max = max(h for h, _ in self.sampling)
        v_max = max(v for _, v in self.sampling)
        blocks = 0
        for h, v in self.sampling:
            columns = math.ceil(math.ceil(self.width * h / h_max) / 8)
            rows = math.ceil(math.ceil(self.height * v / v_max) / 8)
            blocks += -(-columns // h) * h * (-(-rows // v) * v)  # padded to whole MCUs
        return blocks * BLOCK_BYTES


def _segments(data: bytes) -> Iterator[Tuple[int, bytes]]:
    """Yield (marker, payload) of each header segment after SOI, up to the first SOS."""
    position = 2
    while True:
        while position < len(data) and data[position] == 0xFF:
            position += 1  # fill bytes before a marker
        if position >= len(data) or data[position - 1] != 0xFF:
            raise ImageRefused('the JPEG headers are cut short or corrupt')
        marker = data[position]
        position += 1
        if marker in STANDALONE_MARKERS:
            continue
        if marker == 0xD9:
            raise ImageRefused('the JPEG ends before its first scan')
        if position + 2 > len(data):
            raise ImageRefused('the JPEG headers are cut short')
        length = int.from_bytes(data[position:position + 2], 'big')
        if length < 2 or position + length > len(data):
            raise ImageRefused(f'a JPEG header segment (0xFF{marker:02X}) has a bad length')
        yield marker, data[position + 2:position + length]
        if marker == 0xDA:
            return
        position += length


def jpeg_layout(data: bytes) -> JpegLayout:
    """Read a JPEG's frame and first scan headers; raise :class:`ImageRefused` if not a JPEG."""
    if not data.startswith(b'\xff\xd8\xff'):
        raise ImageRefused('not a JPEG (no JPEG start-of-image marker)')
    frame = None
    for marker, payload in _segments(data):
        if marker in SEQUENTIAL_FRAMES or marker in OTHER_FRAMES:
            if len(payload) < 6 or len(payload) < 6 + 3 * payload[5] or not payload[5]:
                raise ImageRefused('the JPEG frame header is corrupt')
            height = int.from_bytes(payload[1:3], 'big')
            width = int.from_bytes(payload[3:5], 'big')
            sampling = tuple((payload[7 + 3 * i] >> 4, payload[7 + 3 * i] & 15)
                             for i in range(payload[5]))
            if not all(1 <= h <= 4 and 1 <= v <= 4 for h, v in sampling):
                raise ImageRefused('the JPEG frame header has bad sampling factors')
            frame = (marker, width, height, sampling)
        elif marker == 0xDA:
            if frame is None or not payload:
                raise ImageRefused('the JPEG has a scan before its frame header')
            marker, width, height, sampling = frame
            return JpegLayout(width, height, marker, sampling, payload[0])
    raise ImageRefused('the JPEG has no scan')  # not reached: _segments raises first


def check_jpeg(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> Tuple[int, int]:
    """
    Raise :class:`ImageRefused` unless ``data`` is a whole JPEG the server stores; return its size.

    The headers are read before anything is decoded: at most ``max_pixels``,
    and a progressive or multi-scan file at most :data:`MAX_BUFFERED_BYTES`
    of coefficients. Then every entropy-coded block is decoded (at 1/8
    scale, in grey: the cost is the walk, not the pixels) with
    libjpeg-turbo's warnings as errors, so a JPEG cut short, even with an
    end marker appended, is refused.
    """
    layout = jpeg_layout(data)
    width, height = layout.width, layout.height
    if not width or not height:
        raise ImageRefused('the JPEG header gives no image size')
    if width * height > max_pixels:
        raise ImageRefused(f'the JPEG is {width}x{height} pixels, over the limit of '
                           f'{max_pixels} pixels')
    if layout.buffered and layout.coefficient_bytes > MAX_BUFFERED_BYTES:
        raise ImageRefused(
            f'the JPEG is progressive or multi-scan: decoding its {width}x{height} pixels '
            f'takes {layout.coefficient_bytes / MIB:.1f} MiB, over the limit of '
            f'{MAX_BUFFERED_BYTES / MIB:.1f} MiB (about 1920x1088 in colour); send a '
            f'baseline JPEG (up to {max_pixels} pixels), as the edge does')
    try:
        _decode(layout, data, colorspace='GRAY', strict=True, min_width=1, min_height=1)
    except ValueError as error:
        raise ImageRefused(f'the JPEG data is corrupt or cut short: {error}') from None
    return width, height


def make_thumbnail(data: bytes) -> bytes:
    """
    Return a JPEG at most :data:`THUMBNAIL_WIDTH` pixels wide (ValueError if it cannot).

    The snapshot is decoded at the smallest scale that is still wider than the
    thumbnail (libjpeg's DCT scaling), so a large picture never costs its full
    size in memory; a stored progressive one passed :func:`check_jpeg` and is
    decoded on the same few threads.
    """
    layout = jpeg_layout(data)
    image = _decode(layout, data, colorspace='BGR', min_width=THUMBNAIL_WIDTH, min_height=1)
    if image.shape[1] > THUMBNAIL_WIDTH:
        height = max(1, layout.height * THUMBNAIL_WIDTH // max(1, layout.width))
        image = cv2.resize(image, (THUMBNAIL_WIDTH, height), interpolation=cv2.INTER_AREA)
    ok, encoded = cv2.imencode('.jpg', np.ascontiguousarray(image),
                               [cv2.IMWRITE_JPEG_QUALITY, 80])
    if not ok:
        raise ValueError('cannot encode the thumbnail')
    return encoded.tobytes()


def _decode(layout: JpegLayout, data: bytes, **options: Any) -> np.ndarray:
    """
    Decode ``data`` (simplejpeg options); a buffered file on one of the few decoding threads.

    Those threads bound the decodes at once, and also what stays allocated:
    glibc keeps a freed 12 MiB array in the arena of the thread that used it,
    so decoding on any of the server's 40 request threads would keep up to
    40 of them (measured: 16 concurrent uploads, 310 MiB against 120 MiB).
    """
    if not layout.buffered:
        return simplejpeg.decode_jpeg(data, **options)
    return _buffered_pool().submit(simplejpeg.decode_jpeg, data, **options).result()


def _buffered_pool() -> ThreadPoolExecutor:
    """Return this process's pool of decoding threads, started on first use (after a fork)."""
    global _BUFFERED_POOL
    with _POOL_LOCK:
        if _BUFFERED_POOL is None or _BUFFERED_POOL[0] != os.getpid():
            _BUFFERED_POOL = (os.getpid(), ThreadPoolExecutor(
                BUFFERED_DECODES, thread_name_prefix='buffered-jpeg'))
        return _BUFFERED_POOL[1]
