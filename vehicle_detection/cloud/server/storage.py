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

from vehicle_detection.cloud.server import jpeg
from vehicle_detection.cloud.server.jpeg import check_jpeg, DEFAULT_MAX_PIXELS, ImageRefused

__all__ = ['DEFAULT_MAX_PIXELS', 'ImageRefused', 'ImageStore', 'LocalImageStore',
           'SnapshotConflict', 'StorageError', 'StorageFull', 'check_jpeg', 'make_thumbnail']

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


def make_thumbnail(data: bytes) -> bytes:
    """Return a small JPEG of a stored snapshot (:func:`jpeg.make_thumbnail`)."""
    try:
        return jpeg.make_thumbnail(data)
    except ValueError as error:
        raise StorageError(f'the snapshot cannot be decoded: {error}') from None


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
