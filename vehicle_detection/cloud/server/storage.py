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

Names come from :func:`vehicle_detection.cloud.wire.snapshot_name` only, and
every path is resolved and checked to stay under the root, so no request can
read or write outside it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
import hashlib
import os
from pathlib import Path
import tempfile

import cv2
import numpy as np

THUMBNAIL_WIDTH = 240


class StorageError(RuntimeError):
    """A snapshot cannot be stored or read; the message says why."""


class SnapshotConflict(StorageError):
    """A different snapshot is already stored under that name."""


class ImageStore(ABC):
    """Where snapshot JPEGs live, addressed by their relative name."""

    @abstractmethod
    def put(self, name: str, data: bytes) -> None:
        """Store ``data`` atomically; the same bytes again is a no-op."""

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
    """Snapshots as files under a root folder, written by rename (never half a file)."""

    def __init__(self, root: str) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, name: str) -> Path:
        path = (self.root / name).resolve()
        if self.root not in path.parents:
            raise StorageError(f'{name!r} is outside the storage root')
        return path

    def put(self, name: str, data: bytes) -> None:
        """Store ``data`` under ``name`` with fsync and rename."""
        path = self._path(name)
        if path.exists():
            if _digest(path.read_bytes()) == _digest(data):
                return
            raise SnapshotConflict(f'another snapshot is already stored as {name}')
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix='.upload-')
        try:
            with os.fdopen(handle, 'wb') as stream:
                stream.write(data)
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(temporary, path)
        except OSError as error:
            Path(temporary).unlink(missing_ok=True)
            raise StorageError(f'cannot store {name}: {error.strerror}') from error

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
        cached.parent.mkdir(parents=True, exist_ok=True)
        temporary = cached.with_name(f'.{cached.name}.{os.getpid()}')
        temporary.write_bytes(data)
        os.replace(temporary, cached)
        return data

    def delete(self, name: str) -> None:
        """Remove ``name`` and its thumbnail if present."""
        for path in (self._path(name), self._path(f'.thumbnails/{name}')):
            path.unlink(missing_ok=True)


def decode_jpeg(data: bytes, mode: int = cv2.IMREAD_COLOR) -> np.ndarray:
    """Return the decoded image; raise ValueError unless ``data`` is a decodable JPEG."""
    if not data.startswith(b'\xff\xd8\xff'):
        raise ValueError('not a JPEG (no JPEG start-of-image marker)')
    if not data.rstrip(b'\x00').endswith(b'\xff\xd9'):
        raise ValueError('the JPEG is truncated (no end-of-image marker)')
    image = cv2.imdecode(np.frombuffer(data, np.uint8), mode)
    if image is None:
        raise ValueError('the JPEG data cannot be decoded')
    return image


def check_jpeg(data: bytes) -> None:
    """
    Raise ValueError unless ``data`` is a whole, decodable JPEG.

    Decodes at 1/8 scale in grey: libjpeg still walks every entropy-coded
    block, at a fraction of the cost of a full decode.
    """
    decode_jpeg(data, cv2.IMREAD_REDUCED_GRAYSCALE_8)


def make_thumbnail(data: bytes) -> bytes:
    """Return a JPEG at most :data:`THUMBNAIL_WIDTH` pixels wide."""
    image = decode_jpeg(data)
    height, width = image.shape[:2]
    if width > THUMBNAIL_WIDTH:
        image = cv2.resize(image, (THUMBNAIL_WIDTH, max(1, height * THUMBNAIL_WIDTH // width)),
                           interpolation=cv2.INTER_AREA)
    ok, encoded = cv2.imencode('.jpg', image, [cv2.IMWRITE_JPEG_QUALITY, 80])
    if not ok:
        raise StorageError('cannot encode the thumbnail')
    return encoded.tobytes()


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
