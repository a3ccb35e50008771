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

"""Run nodes with clean shutdown on Ctrl-C, SIGTERM, external shutdown or after a time."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from types import FrameType
from typing import Callable, Dict, List, Optional, Sequence

import rclpy
from rclpy.context import Context
from rclpy.exceptions import InvalidParameterValueException, ParameterException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node

from vehicle_detection.allocator import relaunch_with_jemalloc
from vehicle_detection.core.system.log_files import LogKeeper, use_package_log_dir
from vehicle_detection.core.system.parent_watch import ParentWatch
from vehicle_detection.ros.transport import start_heap_trimming, tune_transport

NodeFactory = Callable[[Context], Node]
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# How often the spin loop looks at the stop request when no callback wakes it.
STOP_POLL_S = 0.1
_log_keeper: Optional[LogKeeper] = None  # one per process: ROS logging is per process


class StopRequest:
    """
    SIGINT and SIGTERM ask for a stop; they never raise inside shutdown code.

    A terminal's Ctrl-C reaches every process of ``ros2 launch``'s group, and
    launch then sends its own SIGINT (and SIGTERM after a grace time): a node
    gets two or three signals. Python's default turns each SIGINT into a
    ``KeyboardInterrupt`` wherever the main thread is, destroy_node included,
    and SIGTERM kills without any clean-up. Here every such signal only sets a
    flag, which the spin loop reads. rclpy installs its own handlers for the
    default context only (ours is a fresh one), and with them a SIGTERM can
    shut the context down under a running wait (an RCLError, not a clean
    stop). Installed in the main thread only (Python's rule); elsewhere it is
    a plain flag.

    With a :class:`ParentWatch`, the launch process going away is a stop
    request too (see ``core/system/parent_watch.py``).
    """

    def __init__(self, parent: Optional[ParentWatch] = None) -> None:
        """Create the flag; :meth:`install` hooks the signals up to it."""
        self._event = threading.Event()
        self.signal_name = ''
        self._previous: Dict[int, object] = {}
        self._parent = parent
        self.parent_gone = False

    def __call__(self, signum: int, frame: Optional[FrameType]) -> None:
        """Record the signal (the handler itself)."""
        self.signal_name = self.signal_name or signal.Signals(signum).name
        self._event.set()

    def install(self) -> 'StopRequest':
        """Handle SIGINT and SIGTERM from now on (main thread only)."""
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                self._previous[signum] = signal.signal(signum, self)
        return self

    def restore(self) -> None:
        """Put back the handlers that were there before."""
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]
        self._previous.clear()

    def hold_until_exit(self) -> None:
        """
        Ignore SIGINT and SIGTERM from now on: the process is on its way out.

        While Python finalizes it puts the default disposition back for every
        signal that has a Python handler, so a second Ctrl-C arriving then
        (0.1-0.3 s after the first, while DDS tears down) killed the process:
        launch reported "exit code -2". An ignored signal stays ignored. A
        hung exit is still ended by SIGKILL, launch's last resort.
        """
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                signal.signal(signum, signal.SIG_IGN)
        self._previous.clear()

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for a stop request; return whether one came."""
        return self._event.wait(timeout) or self.is_set()

    def is_set(self) -> bool:
        """Whether a stop was asked for (a signal, or the watched parent is gone)."""
        if not self._event.is_set() and self._parent is not None and self._parent.gone():
            self.parent_gone = True
            self._event.set()
        return self._event.is_set()


def detach_output() -> None:
    """
    Point stdout and stderr at /dev/null: their reader, the launch process, is gone.

    A write to its pipe would fail (BrokenPipeError, or exit code 120 when
    Python flushes at exit); the ROS log file still gets every log line.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    for descriptor in (1, 2):
        os.dup2(devnull, descriptor)
    os.close(devnull)


def spin_nodes(context: Context, factories: Sequence[NodeFactory],
               duration: float = 0.0, stop: Optional[StopRequest] = None) -> int:
    """
    Create the nodes in ``context``, spin them, then shut everything down.

    Spins until SIGINT (Ctrl-C), SIGTERM, an external shutdown, ``duration``
    seconds (0: no limit) or the parent that ``stop`` watches going away;
    then closes and destroys every node, still handling further signals as
    stop requests. A ``stop`` given by the caller stays installed (the
    caller ends with :meth:`StopRequest.hold_until_exit`); without one, the
    previous handlers are put back at the end. Returns 0 on a clean stop, 1
    when a node refused its start-up parameters (the reason is printed,
    without a traceback).
    """
    nodes: List[Node] = []
    # One thread is enough: nodes do their slow work (inference, network, disk) in
    # their own threads, and the multi-threaded executor costs a core at 30 fps.
    executor = SingleThreadedExecutor(context=context)
    owned = stop is None
    stop = StopRequest().install() if stop is None else stop
    deadline = time.monotonic() + duration if duration > 0 else float('inf')
    code = 0
    try:
        for factory in factories:
            nodes.append(factory(context))
            executor.add_node(nodes[-1])
        # spin_once with a timeout, not spin(): a Python signal handler runs only
        # when the main thread is back in Python, at the latest after STOP_POLL_S.
        while context.ok() and not stop.is_set() and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=STOP_POLL_S)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except (ValueError, ParameterException, InvalidParameterValueException) as error:
        # Refused start-up parameters: say which and why, without a traceback.
        print(f'error: {error}', file=sys.stderr)
        code = 1
    finally:
        if stop.parent_gone:
            for node in nodes[:1]:  # into the ROS log file; the terminal went with launch
                node.get_logger().warning('the launch process that started this node is gone: '
                                          'stopping')
            detach_output()
        executor.shutdown()
        for node in reversed(nodes):
            close = getattr(node, 'close', None)
            if callable(close):
                close()
            node.destroy_node()
        context.try_shutdown()
        if owned:
            stop.restore()
    return code


def start_context(args: Optional[List[str]] = None) -> Context:
    """
    Tune the transport for large images, then init a fresh rclpy Context.

    The process's ROS log file goes to our log folder and is kept within its
    size from then on (:mod:`log_files`); the heap is trimmed once a minute
    (see :mod:`transport`).
    """
    global _log_keeper
    tune_transport()
    start_heap_trimming()
    use_package_log_dir()
    context = Context()
    rclpy.init(args=args, context=context)
    if _log_keeper is None:
        _log_keeper = LogKeeper().start()
    return context


def process_stop_request() -> StopRequest:
    """
    Take SIGINT and SIGTERM as stop requests for the rest of this process's life.

    Also watches the parent when it is ``ros2 launch``. For entry points: call
    first, pass it to :func:`spin_nodes`, end with ``hold_until_exit()``.
    """
    return StopRequest(ParentWatch.of_this_process()).install()


def run_nodes(factories: Sequence[NodeFactory], args: Optional[List[str]] = None) -> int:
    """Entry-point helper: init a context from ``args`` and spin the nodes in it."""
    if args is None:  # a console script: the process runs for months
        relaunch_with_jemalloc()
    stop = process_stop_request()
    try:
        return spin_nodes(start_context(args if args is not None else sys.argv), factories,
                          stop=stop)
    finally:
        stop.hold_until_exit()
