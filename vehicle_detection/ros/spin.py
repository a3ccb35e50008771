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

"""Run nodes with clean shutdown on Ctrl-C, on external shutdown or after a time."""

from __future__ import annotations

import sys
import threading
from typing import Callable, List, Optional, Sequence

import rclpy
from rclpy.context import Context
from rclpy.exceptions import InvalidParameterValueException, ParameterException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node

from vehicle_detection.ros.transport import tune_transport

NodeFactory = Callable[[Context], Node]


def spin_nodes(context: Context, factories: Sequence[NodeFactory],
               duration: float = 0.0) -> int:
    """
    Create the nodes in ``context``, spin them, then shut everything down.

    Spins until Ctrl-C, an external shutdown or ``duration`` seconds (0: no
    limit). Returns 0 on a clean stop, 1 when a node refused its start-up
    parameters (the reason is printed, without a traceback).
    """
    nodes: List[Node] = []
    # One thread is enough: nodes do their slow work (inference, network, disk) in
    # their own threads, and the multi-threaded executor costs a core at 30 fps.
    executor = SingleThreadedExecutor(context=context)
    timer = threading.Timer(duration, context.try_shutdown) if duration > 0 else None
    code = 0
    try:
        for factory in factories:
            nodes.append(factory(context))
            executor.add_node(nodes[-1])
        if timer is not None:
            timer.start()
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except (ValueError, ParameterException, InvalidParameterValueException) as error:
        # Refused start-up parameters: say which and why, without a traceback.
        print(f'error: {error}', file=sys.stderr)
        code = 1
    finally:
        if timer is not None:
            timer.cancel()
        executor.shutdown()
        for node in reversed(nodes):
            close = getattr(node, 'close', None)
            if callable(close):
                close()
            node.destroy_node()
        context.try_shutdown()
    return code


def start_context(args: Optional[List[str]] = None) -> Context:
    """Tune the transport for large images, then init a fresh rclpy Context."""
    tune_transport()
    context = Context()
    rclpy.init(args=args, context=context)
    return context


def run_nodes(factories: Sequence[NodeFactory], args: Optional[List[str]] = None) -> int:
    """Entry-point helper: init a context from ``args`` and spin the nodes in it."""
    return spin_nodes(start_context(args if args is not None else sys.argv), factories)
