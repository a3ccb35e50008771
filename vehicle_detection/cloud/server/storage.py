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
Snapshot storage behind a small interface: local disk, or S3-compatible object storage.

Names come from :func:`vehicle_detection.wire.snapshot_name` only, and
every path is resolved and checked to stay under the root, so no request can
read or write outside it. Snapshots are written once: the first complete
file wins (hard link from a uniquely named temporary file), the same bytes
again is a no-op, different bytes a conflict. A full disk (no space, no
inodes, quota) is :class:`StorageFull`, never a half-written file.
:func:`stores.open_store` builds the store a ``--storage`` value names (a folder, or
``s3://bucket/prefix``: :mod:`object_store`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
import errno
import hashlib
import logging
import os
from pathlib import Path
import re
import tempfile
import time
from typing import Iterable, Iterator, List

from vehicle_detection.cloud.server import jpeg
from vehicle_detection.cloud.server.jpeg import check_jpeg, DEFAULT_MAX_PIXELS, ImageRefused

__all__ = ['DEFAULT_MAX_PIXELS', 'ImageRefused', 'ImageStore', 'LocalImageStore',
           'SnapshotConflict', 'SnapshotMissing', 'StorageError', 'StorageFull',
           'StorageUnavailable', 'StoredObject', 'check_jpeg', 'make_thumbnail']

TEMPORARY_PREFIX = '.upload-'
THUMBNAILS = '.thumbnails'  # thumbnails are cached under this folder of the root or prefix
S3_SCHEME = 's3://'
DAY_FOLDER = re.compile(r'\d{4}-\d{2}-\d{2}')  # snapshot_name's first part
_SAFE_PART = re.compile(r'[A-Za-z0-9_.-]+')
STALE_TEMPORARY_S = 3600.0  # older temporary files are left-overs of a killed process
FULL_DISK = (errno.ENOSPC, errno.EDQUOT)
RACING_DELETES = 3  # tries of one upload while deletes remove its file or day folder
log = logging.getLogger(__name__)


class StorageError(RuntimeError):
    """A snapshot cannot be stored or read; the message says why."""


class StorageFull(StorageError):
    """No space (bytes, inodes or quota) is left for a snapshot."""


class SnapshotConflict(StorageError):
    """A different snapshot is already stored under that name."""


class SnapshotMissing(StorageError):
    """No snapshot is stored under that name (a read answers 404)."""


class StorageUnavailable(StorageError):
    """The store cannot be reached or refused for now (answered 503: try again later)."""


@dataclass(frozen=True)
class StoredObject:
    """One stored file or object, as a listing gives it (for retention)."""

    name: str  # relative to the root or prefix, e.g. '2026-11-23/080910_cam0_<event>.jpg'
    size: int
    modified: float  # epoch seconds


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
        """Remove a snapshot and its thumbnail (used to undo a put whose row was not set)."""

    def thumbnail(self, name: str) -> bytes:
        """Return a small JPEG of the snapshot (made on demand)."""
        return make_thumbnail(self.get(name))

    @abstractmethod
    def check(self) -> None:
        """Raise :class:`StorageError` saying what to fix when the store cannot be used."""

    @abstractmethod
    def day_folders(self, thumbnails: bool = False) -> List[str]:
        """Return the ``YYYY-MM-DD`` folders holding snapshots (or their thumbnails)."""

    @abstractmethod
    def listing(self, folder: str) -> Iterator[List[StoredObject]]:
        """Yield the objects under ``folder`` (e.g. '2026-11-23'), a page at a time."""

    @abstractmethod
    def delete_many(self, names: Iterable[str]) -> None:
        """Remove these objects (exact names, as listed); absent ones are no error."""


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

    def check(self) -> None:
        """Raise :class:`StorageError` unless the root is a writable folder."""
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise StorageError(f'the storage folder {self.root} is not writable by this user')

    def put(self, name: str, data: bytes) -> bool:
        """Store ``data`` under ``name``: fsync, then link into place if nothing is there."""
        path = self._path(name)
        # A delete racing this upload (retention, or a losing upload taking back its file)
        # may remove the file or its day folder between two steps: then this one goes again.
        for _ in range(RACING_DELETES):
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                temporary = _write_temporary(path.parent, data, durable=True)
            except FileNotFoundError:
                continue  # the day folder went between mkdir and the write
            except OSError as error:
                raise _storage_error(name, error) from error
            try:
                os.link(temporary, path)  # atomic and exclusive: one upload wins
                return True
            except FileExistsError:
                try:
                    existing = path.read_bytes()
                except FileNotFoundError:
                    continue  # removed since the link failed: try to be the one stored
                if _digest(existing) == _digest(data):
                    return False
                raise SnapshotConflict(f'another snapshot is already stored as {name}') from None
            except FileNotFoundError:
                continue  # the day folder went before the link
            except OSError as error:
                raise _storage_error(name, error) from error
            finally:
                temporary.unlink(missing_ok=True)
        raise StorageError(f'snapshot {name} was removed while being stored, '
                           f'{RACING_DELETES} times: try again')

    def get(self, name: str) -> bytes:
        """Return the bytes of ``name``."""
        try:
            return self._path(name).read_bytes()
        except FileNotFoundError:
            raise SnapshotMissing(f'snapshot {name} is not stored') from None
        except OSError as error:
            raise StorageError(f'snapshot {name} is not readable: {error.strerror}') from error

    def thumbnail(self, name: str) -> bytes:
        """Return the cached thumbnail of ``name``, making it on first use."""
        cached = self._path(f'{THUMBNAILS}/{name}')
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
        self.delete_many([name, f'{THUMBNAILS}/{name}'])

    def delete_many(self, names: Iterable[str]) -> None:
        """Remove these files; a day folder left empty goes too."""
        folders = set()
        for name in names:
            path = self._path(name)
            try:
                path.unlink(missing_ok=True)
            except OSError as error:
                raise _storage_error(name, error) from error
            folders.add(path.parent)
        for folder in folders:
            if folder != self.root and DAY_FOLDER.fullmatch(folder.name):
                try:
                    folder.rmdir()
                except OSError:
                    pass  # not empty (or a new snapshot came): kept

    def day_folders(self, thumbnails: bool = False) -> List[str]:
        """Return the day folders under the root (or under its thumbnail folder)."""
        base = self.root / THUMBNAILS if thumbnails else self.root
        try:
            return sorted(entry.name for entry in os.scandir(base)
                          if entry.is_dir() and DAY_FOLDER.fullmatch(entry.name))
        except FileNotFoundError:
            return []

    def listing(self, folder: str, page: int = 1000) -> Iterator[List[StoredObject]]:
        """Yield the files of ``folder`` (not the temporary ones), ``page`` at a time."""
        base = self._path(folder)
        batch: List[StoredObject] = []
        try:
            entries = os.scandir(base)
        except FileNotFoundError:
            return
        with entries:
            for entry in entries:
                if entry.name.startswith(TEMPORARY_PREFIX) or not entry.is_file():
                    continue
                try:
                    stat = entry.stat()
                except FileNotFoundError:
                    continue  # removed meanwhile
                batch.append(StoredObject(f'{folder}/{entry.name}', stat.st_size, stat.st_mtime))
                if len(batch) >= page:
                    yield batch
                    batch = []
        if batch:
            yield batch

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


def checked_name(name: str) -> str:
    """Return ``name`` if it is relative, made of safe parts, and stays where it is put."""
    parts = name.split('/')
    if not all(_SAFE_PART.fullmatch(part) and part not in ('.', '..') for part in parts):
        raise StorageError(f'{name!r} is not a snapshot name')
    return name


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
