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

import threading
import time
from typing import Callable, Generic, List, TypeVar

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
