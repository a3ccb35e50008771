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

"""A waitable inbox: tests wait for items with a timeout instead of sleeping (no ROS)."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from typing import Callable, Dict, Generic, List, TypeVar

T = TypeVar('T')


class Inbox(Generic[T]):
    """Items delivered by a callback, waitable from the test thread."""

    def __init__(self) -> None:
        self.messages: List[T] = []
        self._cond = threading.Condition()

    def __call__(self, item: T) -> None:
        with self._cond:
            self.messages.append(item)
            self._cond.notify_all()

    def wait_for(self, predicate: Callable[[List[T]], bool], timeout: float = 15.0,
                 what: str = 'messages') -> List[T]:
        """Block until ``predicate(messages)`` holds; fail the test after ``timeout``."""
        with self._cond:
            if not self._cond.wait_for(lambda: predicate(self.messages), timeout):
                raise AssertionError(f'timed out after {timeout} s waiting for {what}; '
                                     f'got {len(self.messages)} messages')
            return list(self.messages)

    def wait_count(self, count: int, timeout: float = 15.0) -> List[T]:
        """Block until at least ``count`` items arrived."""
        return self.wait_for(lambda items: len(items) >= count, timeout, f'{count} messages')


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0,
               what: str = 'condition', poll: float = 0.01) -> None:
    """Poll a state that has no event of its own (a stream, a queue, a server) until true."""
    pause = threading.Event()
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f'timed out after {timeout} s waiting for {what}'
        pause.wait(poll)


class Lines:
    """Collect the lines of a process's output stream; wait for one containing a text."""

    def __init__(self, stream) -> None:
        self.lines: List[str] = []
        self._cond = threading.Condition()
        self._closed = threading.Event()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream) -> None:
        try:
            for line in stream:
                with self._cond:
                    self.lines.append(line)
                    self._cond.notify_all()
        finally:
            self._closed.set()

    def wait_closed(self, timeout: float = 30.0) -> None:
        """Wait until the stream ended (every line is in :attr:`lines`)."""
        assert self._closed.wait(timeout), 'the output stream is still open'

    def wait_for(self, text: str, timeout: float = 60.0) -> None:
        with self._cond:
            assert self._cond.wait_for(lambda: any(text in line for line in self.lines),
                                       timeout), ''.join(self.lines[-30:])


class Watched:
    """
    A command whose stdout and stderr are read line by line while it runs.

    Use it, not ``Popen.communicate``, when a test waits for a line of a
    running process: ``communicate`` reads the stream a :class:`Lines` thread
    already reads, takes lines from it, and closes it under that thread.
    """

    def __init__(self, command: List[str], env: Dict[str, str]) -> None:
        self.process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True)
        self.out = Lines(self.process.stdout)
        self.err = Lines(self.process.stderr)

    @property
    def returncode(self) -> int | None:
        return self.process.returncode

    def finish(self, timeout: float = 60.0) -> str:
        """Wait for the exit and the end of both streams; return what it printed on stdout."""
        self.process.wait(timeout=timeout)
        self.out.wait_closed(timeout)
        self.err.wait_closed(timeout)
        return ''.join(self.out.lines)

    def interrupt(self, timeout: float = 60.0) -> str:
        """Stop it as Ctrl-C does; return its stdout (see :meth:`finish`)."""
        self.process.send_signal(signal.SIGINT)
        return self.finish(timeout)

    def stderr(self) -> str:
        """Return what it printed on stderr so far."""
        return ''.join(self.err.lines)

    def close(self) -> None:
        """Kill it if it still runs (a failed test), then reap it."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> 'Watched':
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
