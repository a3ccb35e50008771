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
The log files a box writes, kept within a size.

ROS 2 (rcl_logging_spdlog) writes every process's log to
``<log dir>/<executable>_<pid>_<ms>.log``, one plain file per start that
never rotates, in ``$ROS_LOG_DIR``, else ``$ROS_HOME/log``, else
``~/.ros/log``. This package's processes log into their own sub-folder of
that (``vehicle_detection/``) unless ``ROS_LOG_DIR`` is set, and a
:class:`LogKeeper` thread bounds them: once the process's file passes
``VD_LOG_MAX_MB`` (10) it is copied to ``<file>.1`` and emptied (spdlog
appends, so it writes on from the start), and in the package's own folder the
files of processes no longer running are removed, oldest first, past
``VD_LOG_KEEP_MB`` (100). The demo's server output goes through
:func:`pipe_to_rotating_file`.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
from pathlib import Path
import re
import shutil
import threading
from typing import IO, List, Mapping, Optional

import psutil

MB = 1024 * 1024
FOLDER = 'vehicle_detection'  # our sub-folder of the ROS log folder
FILE_MB_ENV, KEEP_MB_ENV = 'VD_LOG_MAX_MB', 'VD_LOG_KEEP_MB'
DEFAULT_FILE_MB, DEFAULT_KEEP_MB = 10.0, 100.0
CHECK_EVERY_S = 60.0
# rcl_logging_spdlog's name of a process's file: <executable>_<pid>_<milliseconds>.log
ROS_LOG_NAME = re.compile(r'^.+_(\d+)_\d+\.log(\.1)?$')


def ros_log_dir(env: Mapping[str, str] = os.environ) -> Path:
    """Return the folder ROS 2 writes its log files to, as rcl decides it."""
    if env.get('ROS_LOG_DIR'):
        return Path(env['ROS_LOG_DIR']).expanduser()
    return Path(env.get('ROS_HOME') or '~/.ros').expanduser() / 'log'


def use_package_log_dir() -> Path:
    """Send this process's ROS log to our sub-folder unless ROS_LOG_DIR says otherwise."""
    if not os.environ.get('ROS_LOG_DIR'):
        os.environ['ROS_LOG_DIR'] = str(ros_log_dir() / FOLDER)
    return ros_log_dir()


def _limit(env_name: str, default_mb: float) -> int:
    try:
        return int(float(os.environ.get(env_name, default_mb)) * MB)
    except ValueError:
        return int(default_mb * MB)


def rotate(path: Path, max_bytes: int) -> bool:
    """
    Copy ``path`` to ``path.1`` and empty it once it is over ``max_bytes``.

    The writer keeps its descriptor: spdlog opens its file for appending, so
    after the truncation it writes on from the start. Returns whether it rotated.
    """
    try:
        if path.stat().st_size <= max_bytes:
            return False
        shutil.copyfile(path, path.with_name(path.name + '.1'))
        os.truncate(path, 0)
    except OSError:
        return False  # gone, or the disk is full: try at the next check
    return True


def prune(folder: Path, keep_bytes: int) -> List[Path]:
    """Remove the ROS log files of ended processes, oldest first, past ``keep_bytes``."""
    files = []
    for path in folder.iterdir() if folder.is_dir() else ():
        match = ROS_LOG_NAME.match(path.name)
        try:
            if match and path.is_file():
                files.append((path.stat().st_mtime, path, int(match.group(1))))
        except OSError:
            continue
    total = sum(path.stat().st_size for _, path, _ in files if path.exists())
    removed = []
    for _, path, pid in sorted(files):
        if total <= keep_bytes:
            break
        if psutil.pid_exists(pid) and pid != 0:
            continue  # a running process's file: it is rotated by its own keeper
        try:
            size = path.stat().st_size
            path.unlink()
        except OSError:
            continue
        total -= size
        removed.append(path)
    return removed


class LogKeeper:
    """Keeps this process's ROS log file, and our log folder, within their sizes."""

    def __init__(self, folder: Optional[Path] = None) -> None:
        self.folder = folder or ros_log_dir()
        self.max_bytes = _limit(FILE_MB_ENV, DEFAULT_FILE_MB)
        self.keep_bytes = _limit(KEEP_MB_ENV, DEFAULT_KEEP_MB)
        self.rotations = 0
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def own_file(self) -> Optional[Path]:
        """Return this process's ROS log file (None when there is none yet)."""
        found = sorted(self.folder.glob(f'*_{os.getpid()}_*.log'))
        return found[-1] if found else None

    def check(self) -> None:
        """Rotate our file when it is too big; prune our folder (not a folder of the user's)."""
        own = self.own_file()
        if own is not None and rotate(own, self.max_bytes):
            self.rotations += 1
        if self.folder.name == FOLDER:
            prune(self.folder, self.keep_bytes)

    def start(self) -> 'LogKeeper':
        """Check now and then every minute, on a daemon thread."""
        self._thread = threading.Thread(target=self._run, daemon=True, name='log-keeper')
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread."""
        self._stop.set()

    def _run(self) -> None:
        while True:
            self.check()
            if self._stop.wait(CHECK_EVERY_S):
                return


def folder_bytes(folder: Path) -> int:
    """Return the bytes of the files directly in ``folder`` (0 when it does not exist)."""
    total = 0
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    for entry in entries:
        try:
            if entry.is_file():
                total += entry.stat().st_size
        except OSError:
            continue
    return total


def pipe_to_rotating_file(stream: IO[bytes], path: Path, max_bytes: int = 10 * MB,
                          backups: int = 2) -> threading.Thread:
    """
    Copy a child's output to ``path``, rotated at ``max_bytes`` (``backups`` kept).

    The thread reads to the end of ``stream`` (the child never blocks on a
    full pipe) and closes the file there.
    """
    handler = logging.handlers.RotatingFileHandler(path, maxBytes=max_bytes,
                                                   backupCount=backups, encoding='utf-8')
    handler.setFormatter(logging.Formatter('%(message)s'))

    def copy() -> None:
        try:
            for line in iter(stream.readline, b''):
                handler.emit(logging.makeLogRecord(
                    {'msg': line.decode('utf-8', 'replace').rstrip('\n')}))
        finally:
            handler.close()

    thread = threading.Thread(target=copy, daemon=True, name=f'log-{path.name}')
    thread.start()
    return thread
