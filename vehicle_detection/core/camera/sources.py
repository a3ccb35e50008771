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
Frame sources behind one interface: devices, files, folders, streams, GStreamer.

A source is described by one string (the camera node's ``source`` parameter)
and opened by :func:`open_source`. Every failure is a :class:`SourceError`
whose message says what failed, so the stream supervisor can log it and retry.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from enum import Enum
import os
from pathlib import Path
import re
from typing import Dict, List, Optional, Set, Tuple, Union

import cv2
import numpy as np

IMAGE_EXTENSIONS = frozenset({'.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp', '.ppm'})
STREAM_SCHEMES = ('rtsp://', 'rtsps://', 'rtmp://', 'http://', 'https://', 'udp://', 'tcp://')
_DEVICE_PATH = re.compile(r'^/dev/video(\d+)$')


class SourceError(RuntimeError):
    """A source could not be opened or read; the message says why."""


class SourceKind(str, Enum):
    """How a source string is opened."""

    DEVICE = 'device'
    STREAM = 'stream'
    GSTREAMER = 'gstreamer'
    PATH = 'path'  # a file or folder, resolved each time it is opened


@dataclass(frozen=True)
class SourceSpec:
    """A parsed ``source`` string."""

    kind: SourceKind
    target: Union[int, str]

    @property
    def live(self) -> bool:
        """Live sources drop frames to stay current; recorded ones are paced."""
        return self.kind is not SourceKind.PATH


def parse_source(source: str) -> SourceSpec:
    """Classify a ``source`` string; raise ``ValueError`` when it cannot be a source."""
    text = source.strip()
    if not text:
        raise ValueError('source is empty: give a device index, /dev/videoN, a file, '
                         'a folder, a stream URL or a GStreamer pipeline')
    if text.isdigit():
        return SourceSpec(SourceKind.DEVICE, int(text))
    match = _DEVICE_PATH.match(text)
    if match:
        return SourceSpec(SourceKind.DEVICE, text)
    if text.lower().startswith(STREAM_SCHEMES):
        return SourceSpec(SourceKind.STREAM, text)
    if '!' in text:
        if 'appsink' not in text:
            text += ' ! videoconvert ! video/x-raw,format=BGR ! appsink drop=true max-buffers=1'
        return SourceSpec(SourceKind.GSTREAMER, text)
    if '://' in text:
        raise ValueError(f'unsupported URL scheme in {text!r}: use one of '
                         + ', '.join(STREAM_SCHEMES))
    return SourceSpec(SourceKind.PATH, os.path.expanduser(text))


def natural_key(name: str) -> Tuple[object, ...]:
    """Sort key that orders ``frame2`` before ``frame10``."""
    return tuple(int(part) if part.isdigit() else part.lower()
                 for part in re.split(r'(\d+)', name))


@dataclass
class SourceHistory:
    """
    What earlier generations of a non-looping source already delivered.

    A finished folder is reopened later only for files it has not played; a
    finished video file only when it has changed on disk.
    """

    seen_files: Set[str] = field(default_factory=set)
    finished: Set[Tuple[str, int, int]] = field(default_factory=set)


class FrameSource(ABC):
    """An open source of BGR frames."""

    live: bool = False
    #: seconds of the frame read last on the recording's own timeline (its number
    #: over the rate the file declares, loops included); None where there is no
    #: such timeline (live sources, image folders, files that declare no rate)
    position: Optional[float] = None

    @abstractmethod
    def read(self) -> Optional[np.ndarray]:
        """
        Return the next BGR frame, None at the end of a finite source.

        Raises :class:`SourceError` when the source fails.
        """

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the source."""


# A looping folder decodes each image once while its frames fit in this many bytes:
# decoding a 720p PNG costs ~14 ms, which at replay rates would take whole cores.
LOOP_CACHE_BYTES = 512 * 1024 * 1024


class ImageFolderSource(FrameSource):
    """Images of a folder (or one image file) in natural order."""

    def __init__(self, files: List[str], loop: bool, history: SourceHistory,
                 cache_bytes: int = LOOP_CACHE_BYTES) -> None:
        self._files = files
        self._loop = loop
        self._history = history
        self._index = 0
        self.last_path = ''  # the file of the frame read last
        # Decoded frames of a looping folder, keyed by path and (mtime, size), so
        # that an image replaced on disk is decoded again.
        self._cache: Dict[str, Tuple[Tuple[int, int], np.ndarray]] = {}
        self._cache_room = cache_bytes if loop else 0

    def read(self) -> Optional[np.ndarray]:
        """Return the next decodable image; a broken file is an error."""
        if self._loop:
            if not self._files:
                return None
            path = self._files[self._index % len(self._files)]
        else:
            pending = [f for f in self._files[self._index:] if f not in self._history.seen_files]
            if not pending:
                return None
            path = pending[0]
            self._index = self._files.index(path)
        self._index += 1
        self.last_path = path
        if not self._loop:
            self._history.seen_files.add(path)
            return _decode(path)
        return self._cached_decode(path)

    def _cached_decode(self, path: str) -> np.ndarray:
        try:
            stat = os.stat(path)
        except OSError as error:
            raise SourceError(f'image {path} disappeared') from error
        version = (stat.st_mtime_ns, stat.st_size)
        cached = self._cache.get(path)
        if cached is not None and cached[0] == version:
            return cached[1]
        image = _decode(path)
        if cached is not None:
            self._cache_room += cached[1].nbytes
            del self._cache[path]
        if image.nbytes <= self._cache_room:
            image.flags.writeable = False  # shared by every loop: nobody may draw on it
            self._cache[path] = (version, image)
            self._cache_room -= image.nbytes
        return image


def _decode(path: str) -> np.ndarray:
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        if not os.path.exists(path):
            raise SourceError(f'image {path} disappeared')
        raise SourceError(f'cannot decode image {path}')
    return image


class VideoCaptureSource(FrameSource):
    """OpenCV capture: device, video file, network stream or GStreamer pipeline."""

    def __init__(self, capture: 'cv2.VideoCapture', name: str, live: bool, loop: bool,
                 signature: Optional[Tuple[str, int, int]], history: SourceHistory) -> None:
        self._capture = capture
        self._name = name
        self.live = live
        self._loop = loop
        self._signature = signature
        self._history = history
        self._frames = 0
        self._looped = 0  # frames of the loops played before this one
        self._rate = 0.0 if live else self.frame_rate

    @property
    def frame_rate(self) -> float:
        """Return the rate the source declares (frames per second), 0 when it declares none."""
        rate = float(self._capture.get(cv2.CAP_PROP_FPS) or 0.0)
        return rate if 0.0 < rate < 1000.0 else 0.0

    def read(self) -> Optional[np.ndarray]:
        """Read a frame; a live source that returns nothing has failed."""
        ok, frame = self._capture.read()
        if ok and frame is not None:
            self._frames += 1
            if self._rate:
                self.position = (self._looped + self._frames - 1) / self._rate
            return frame
        if self.live:
            raise SourceError(f'{self._name}: no frame from the stream')
        if self._frames == 0:
            raise SourceError(f'{self._name}: no decodable frame in the file')
        if self._loop:
            self._capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            self._looped += self._frames
            self._frames = 0
            return self.read()
        if self._signature is not None:
            self._history.finished.add(self._signature)
        return None

    def close(self) -> None:
        """Release the capture."""
        self._capture.release()


class FinishedSource(FrameSource):
    """A recorded source that already played to its end and has not changed."""

    def read(self) -> Optional[np.ndarray]:
        """Nothing left to play."""
        return None


def _file_signature(path: str) -> Tuple[str, int, int]:
    stat = os.stat(path)
    return (os.path.abspath(path), stat.st_size, stat.st_mtime_ns)


def _open_capture(target: Union[int, str], api: int, name: str) -> 'cv2.VideoCapture':
    capture = cv2.VideoCapture(target, api)
    if not capture.isOpened():
        capture.release()
        raise SourceError(f'cannot open {name}')
    return capture


def open_source(spec: SourceSpec, loop: bool = False,
                history: Optional[SourceHistory] = None) -> FrameSource:
    """Open ``spec``; raise :class:`SourceError` saying why when it cannot be opened."""
    history = history if history is not None else SourceHistory()
    if spec.kind is SourceKind.DEVICE:
        capture = _open_capture(spec.target, cv2.CAP_ANY, f'camera device {spec.target}')
        capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # keep the newest frame, not a backlog
        return VideoCaptureSource(capture, f'camera device {spec.target}', True, False,
                                  None, history)
    if spec.kind is SourceKind.STREAM:
        capture = _open_capture(spec.target, cv2.CAP_FFMPEG, f'stream {spec.target}')
        return VideoCaptureSource(capture, f'stream {spec.target}', True, False, None, history)
    if spec.kind is SourceKind.GSTREAMER:
        capture = _open_capture(spec.target, cv2.CAP_GSTREAMER,
                                f'GStreamer pipeline (is OpenCV built with GStreamer?) '
                                f'{spec.target}')
        return VideoCaptureSource(capture, 'GStreamer pipeline', True, False, None, history)
    return _open_path(str(spec.target), loop, history)


def _open_path(path: str, loop: bool, history: SourceHistory) -> FrameSource:
    if os.path.isdir(path):
        try:
            names = os.listdir(path)
        except OSError as error:
            raise SourceError(f'cannot list folder {path}: {error.strerror}') from error
        files = [os.path.join(path, name) for name in sorted(names, key=natural_key)
                 if Path(name).suffix.lower() in IMAGE_EXTENSIONS]
        if not files:
            raise SourceError(f'folder {path} holds no images '
                              f'({", ".join(sorted(IMAGE_EXTENSIONS))})')
        return ImageFolderSource(files, loop, history)
    if not os.path.exists(path):
        raise SourceError(f'{path} does not exist')
    if Path(path).suffix.lower() in IMAGE_EXTENSIONS:
        return ImageFolderSource([path], loop, history)
    signature = _file_signature(path)
    if not loop and signature in history.finished:
        return FinishedSource()
    capture = _open_capture(path, cv2.CAP_ANY, f'video file {path}')
    return VideoCaptureSource(capture, f'video file {path}', False, loop, signature, history)
