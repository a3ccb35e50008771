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
Write ``config/config.yaml`` from the parameter specs: the file is generated.

Every parameter appears with its default and, above it, its description and
what it accepts, so the file and the nodes cannot disagree (a test compares
them). After adding or changing a parameter::

    python -m vehicle_detection.core.system.config_render > config/config.yaml
"""

from __future__ import annotations

import json
import textwrap
from typing import Any, Mapping, Sequence

from vehicle_detection.core.params import ParamSpec

HEADER = """\
# vehicle_detection configuration, in the ROS 2 parameter-file format.
# Used by `ros2 launch vehicle_detection system.launch.py` and by
# `vehicle-detection run --config config/config.yaml`. Override one value with
# `--set node.param=value` (runner) or a launch argument. No secrets here:
# the cloud API key comes from VD_CLOUD_API_KEY or a key file.
# Generated from the parameter specs: python -m vehicle_detection.core.system.config_render
"""
WIDTH = 80  # of a comment line, indent included


def render_config(nodes: Mapping[str, Sequence[ParamSpec]]) -> str:
    """Return the whole configuration file for ``nodes`` (node name -> its specs)."""
    sections = [HEADER]
    for node, specs in nodes.items():
        lines = [f'{node}:', '  ros__parameters:']
        for spec in specs:
            lines += comment(spec)
            lines.append(f'    {spec.name}: {yaml_value(spec.default)}')
        sections.append('\n'.join(lines) + '\n')
    return '\n'.join(sections)


def comment(spec: ParamSpec) -> list:
    """Return the comment lines of one parameter: description, then constraints."""
    text = spec.description
    if spec.constraints():
        text += f' ({spec.constraints()})'
    return textwrap.wrap(text, WIDTH, initial_indent='    # ', subsequent_indent='    # ',
                         break_on_hyphens=False)


def yaml_value(value: Any) -> str:
    """Return ``value`` as YAML: strings quoted, booleans lower case."""
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, (list, str)):
        return json.dumps(value)
    return repr(value)


def main() -> None:
    """Print the configuration file of the package's nodes."""
    from vehicle_detection.core.system.system_config import NODE_SPECS

    print(render_config(NODE_SPECS), end='')


if __name__ == '__main__':
    main()
