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

"""``vehicle-detection``: run the system in one process and the tools around it."""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import List, Optional

from vehicle_detection.allocator import relaunch_with_jemalloc

# subcommand -> module with ``add_arguments(parser)`` and ``run(args) -> int``
COMMANDS = {
    'run': ('vehicle_detection.cli.run', 'run the nodes in one process'),
    'demo': ('vehicle_detection.cli.demo', 'cloud server + the nodes on this machine'),
    'doctor': ('vehicle_detection.cli.doctor', 'check model, camera, cloud, key and disk'),
    'bag': ('vehicle_detection.cli.bag', 'make, play and compare rosbag2 recordings'),
    'detect': ('vehicle_detection.cli.detect', 'detect vehicles in images or a video, no ROS'),
    'validate': ('vehicle_detection.cli.validate',
                 'field check: record a window, count it by hand, report the error'),
}
#: subcommands that run for months: they relaunch with jemalloc (see allocator.py)
LONG_RUNNING = ('run', 'demo')


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog='vehicle-detection',
        description='Vehicle detection on a road-side edge box, reported to a cloud server.')
    sub = parser.add_subparsers(dest='command', required=True, metavar='COMMAND')
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        command = sub.add_parser(name, help=help_text, description=module.__doc__)
        module.add_arguments(command)
        command.set_defaults(handler=module.run)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Parse arguments and run the chosen subcommand."""
    if argv is None and sys.argv[1:2] and sys.argv[1] in LONG_RUNNING:
        relaunch_with_jemalloc()  # the program, not a call in a test; before the imports
    args = build_parser().parse_args(argv)
    return int(args.handler(args))


if __name__ == '__main__':
    sys.exit(main())
