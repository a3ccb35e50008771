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

"""Check a configuration: model, backend, camera, cloud and key, disk. Exit 1 on a failure."""

from __future__ import annotations

import argparse

from vehicle_detection.cli.run import add_config_arguments, load_parameters
from vehicle_detection.core.config_file import ConfigError, default_config_path
from vehicle_detection.core.doctor import run_checks


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``vehicle-detection doctor``: those of ``run`` that shape the config."""
    add_config_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Print one line per check; return 1 when any failed."""
    try:
        params = load_parameters(args)
    except ConfigError as error:
        print(f'FAIL  config: {error}')
        return 1
    print(f'OK    config: {args.config or default_config_path()}')
    results = run_checks(params, report=lambda result: print(result.line(), flush=True))
    failed = [r.name for r in results if not r.ok]
    print(f'{len(results) - len(failed)} passed, {len(failed)} failed'
          + (f': {", ".join(failed)}' if failed else ''))
    return 1 if failed else 0
