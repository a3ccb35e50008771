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
Snapshot storage behind a small interface (local disk now, object storage later).

Names come from :func:`vehicle_detection.wire.snapshot_name` only, and
every path is resolved and checked to stay under the root, so no request can
read or write outside it. Snapshots are written once: the first complete
file wins (hard link from a uniquely named temporary file), the same bytes
again is a no-op, different bytes a conflict. A full disk (no space, no
inodes, quota) is :class:`StorageFull`, never a half-written file.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
import errno
import hashlib
import logging
import os
from pathlib import Path
import tempfile
import time
from typing import Tuple

import cv2
import numpy as np
import simplejpeg

THUMBNAIL_WIDTH = 240
DEFAULT_MAX_PIXELS = 4096 * 4096
TEMPORARY_PREFIX = '.upload-'
STALE_TEMPORARY_S = 3600.0  # older temporary files are left-overs of a killed process
FULL_DISK = (errno.ENOSPC, errno.EDQUOT)
log = logging.getLogger(__name__)


class StorageError(RuntimeError):
    """A snapshot cannot be stored or read; the message says why."""


class StorageFull(StorageError):
    """No space (bytes, inodes or quota) is left for a snapshot."""


class SnapshotConflict(StorageError):
    """A different snapshot is already stored under that name."""


class ImageStore(ABC):
    """Where snapshot JPEGs live, addressed by their relative name."""

    @abstractmethod
    def put(self, name: str, data: bytes) -> bool:
        """Store ``data`` once; return False when the same bytes were there already."""

    @abstractmethod
    def get(self, name: str) -> bytes:
        """Return the stored bytes; raise :class:`StorageError` when absent."""

    @abstractmethod
    def delete(self, name: str) -> None:
        """Remove a snapshot (used to undo a put whose database update failed)."""

    def thumbnail(self, name: str) -> bytes:
        """Return a small JPEG of the snapshot (made on demand)."""
        return make_thumbnail(self.get(name))


class LocalImageStore(ImageStore):
    """Snapshots as files under a root folder, each written whole and once."""

    def __init__(self, root: str) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, name: str) -> Path:
        path = (self.root / name).resolve()
        if self.root not in path.parents:
            raise StorageError(f'{name!r} is outside the storage root')
        return path

    def put(self, name: str, data: bytes) -> bool:
        """Store ``data`` under ``name``: fsync, then link into place if nothing is there."""
        path = self._path(name)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = _write_temporary(path.parent, data, durable=True)
        except OSError as error:
            raise _storage_error(name, error) from error
        try:
            os.link(temporary, path)  # atomic and exclusive: one upload wins
            return True
        except FileExistsError:
            if _digest(path.read_bytes()) == _digest(data):
                return False
            raise SnapshotConflict(f'another snapshot is already stored as {name}') from None
        except OSError as error:
            raise _storage_error(name, error) from error
        finally:
            temporary.unlink(missing_ok=True)

    def get(self, name: str) -> bytes:
        """Return the bytes of ``name``."""
        try:
            return self._path(name).read_bytes()
        except OSError as error:
            raise StorageError(f'snapshot {name} is not readable: {error.strerror}') from error

    def thumbnail(self, name: str) -> bytes:
        """Return the cached thumbnail of ``name``, making it on first use."""
        cached = self._path(f'.thumbnails/{name}')
        if cached.exists():
            return cached.read_bytes()
        data = make_thumbnail(self.get(name))
        try:  # a cache: when the disk is full the thumbnail is still served
            cached.parent.mkdir(parents=True, exist_ok=True)
            temporary = _write_temporary(cached.parent, data, durable=False)
            os.replace(temporary, cached)
        except OSError as error:
            log.warning('thumbnail of %s not cached: %s', name, error.strerror)
        return data

    def delete(self, name: str) -> None:
        """Remove ``name`` and its thumbnail if present."""
        for path in (self._path(name), self._path(f'.thumbnails/{name}')):
            path.unlink(missing_ok=True)

    def remove_stale_temporaries(self, older_than_s: float = STALE_TEMPORARY_S) -> int:
        """Delete temporary files left by a killed process; return how many."""
        cutoff = time.time() - older_than_s
        removed = 0
        for path in self.root.rglob(TEMPORARY_PREFIX + '*'):
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except OSError:
                continue  # gone already, or not ours to remove
        return removed


def _write_temporary(folder: Path, data: bytes, durable: bool) -> Path:
    """Write ``data`` to a new uniquely named file in ``folder`` (removed on failure)."""
    handle, name = tempfile.mkstemp(dir=folder, prefix=TEMPORARY_PREFIX)
    try:
        with os.fdopen(handle, 'wb') as stream:
            stream.write(data)
            stream.flush()
            if durable:
                os.fsync(stream.fileno())
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return Path(name)


def _storage_error(name: str, error: OSError) -> StorageError:
    if error.errno in FULL_DISK:
        return StorageFull(f'no space left to store {name}: {error.strerror}')
    return StorageError(f'cannot store {name}: {error.strerror}')


def jpeg_size(data: bytes) -> Tuple[int, int]:
    """Return (width, height) from a JPEG's header; raise ValueError if it has none."""
    if not data.startswith(b'\xff\xd8\xff'):
        raise ValueError('not a JPEG (no JPEG start-of-image marker)')
    try:
        height, width, _, _ = simplejpeg.decode_jpeg_header(data)
    except ValueError as error:
        raise ValueError(f'the JPEG header cannot be read: {error}') from None
    return width, height


def check_jpeg(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> Tuple[int, int]:
    """
    Raise ValueError unless ``data`` is a whole JPEG of at most ``max_pixels``; return its size.

    The pixel count is read from the header before anything is decoded; then
    every entropy-coded block is decoded (at 1/8 scale, in grey: the cost is
    the walk, not the pixels) with libjpeg-turbo's warnings as errors, so a
    JPEG cut short, even with an end marker appended, is refused.
    """
    width, height = jpeg_size(data)
    if width * height > max_pixels:
        raise ValueError(f'the JPEG is {width}x{height} pixels, over the limit of '
                         f'{max_pixels} pixels')
    try:
        simplejpeg.decode_jpeg(data, colorspace='GRAY', strict=True, min_width=1,
                               min_height=1)
    except ValueError as error:
        raise ValueError(f'the JPEG data is corrupt or cut short: {error}') from None
    return width, height


def make_thumbnail(data: bytes) -> bytes:
    """
    Return a JPEG at most :data:`THUMBNAIL_WIDTH` pixels wide.

    The snapshot is decoded at the smallest scale that is still wider than the
    thumbnail (libjpeg's DCT scaling), so a large picture never costs its full
    size in memory.
    """
    width, height = jpeg_size(data)
    try:
        image = simplejpeg.decode_jpeg(data, colorspace='BGR', min_width=THUMBNAIL_WIDTH,
                                       min_height=1)
    except ValueError as error:
        raise StorageError(f'the snapshot cannot be decoded: {error}') from None
    if image.shape[1] > THUMBNAIL_WIDTH:
        image = cv2.resize(image, (THUMBNAIL_WIDTH, max(1, height * THUMBNAIL_WIDTH // width)),
                           interpolation=cv2.INTER_AREA)
    ok, encoded = cv2.imencode('.jpg', np.ascontiguousarray(image),
                               [cv2.IMWRITE_JPEG_QUALITY, 80])
    if not ok:
        raise StorageError('cannot encode the thumbnail')
    return encoded.tobytes()


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
