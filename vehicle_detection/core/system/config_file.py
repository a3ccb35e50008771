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
Node parameters from ``config/config.yaml`` plus ``--set node.param=value`` overrides.

The launch files and the one-process runner both call
:func:`node_parameters`, so a setting means the same thing in both.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Dict, Iterable, Mapping, Optional, Sequence

from vehicle_detection.core.params import (
    ParamError, ParamSpec, ROS_NODE_PARAMS, validate_values)
import yaml

NodeSpecs = Mapping[str, Sequence[ParamSpec]]


class ConfigError(ValueError):
    """The configuration file or an override is invalid; the message says where."""


#: the section (or ``--set`` node) that applies to every node, as ROS writes it
ALL_NODES = '**'


def section_node(key: object, where: str) -> str:
    """
    Return the node a parameter-file section is for; :data:`ALL_NODES` for all of them.

    Accepts what ROS accepts for one node: ``name``, ``/name``, ``/**/name``
    and ``/*/name`` (any namespace), and ``/**`` or ``**`` for every node.
    Sections for one namespace (``/ns/name``) are refused: these nodes take
    their namespace from the launch, and such a section would silently
    apply to nothing elsewhere.
    """
    text = str(key).strip()
    if text in ('**', '/**'):
        return ALL_NODES
    for prefix in ('/**/', '/*/', '**/', '*/', '/'):
        if text.startswith(prefix):
            text = text[len(prefix):]
            break
    if not text or '/' in text or '*' in text:
        raise ConfigError(f'{where}: section {key!r}: expected a node name, /node_name, '
                          '/**/node_name or /** (every node)')
    return text


def load_config(path: Optional[str]) -> Dict[str, Dict[str, Any]]:
    """
    Read a ROS 2 parameter file into ``{node: {param: value}}``.

    Sections that name the same node are merged in file order; a ``/**``
    section is kept under :data:`ALL_NODES` (see :func:`node_parameters`).
    """
    if not path:
        return {}
    try:
        with open(path, encoding='utf-8') as stream:
            document = yaml.safe_load(stream) or {}
    except OSError as error:
        raise ConfigError(f'cannot read config file {path}: {error.strerror}') from error
    except yaml.YAMLError as error:
        raise ConfigError(f'config file {path} is not valid YAML: {error}') from error
    if not isinstance(document, dict):
        raise ConfigError(f'config file {path}: expected a mapping of node names')
    result: Dict[str, Dict[str, Any]] = {}
    for node, section in document.items():
        node_name = section_node(node, f'config file {path}')
        params = (section or {}).get('ros__parameters') if isinstance(section, dict) else None
        if not isinstance(params, dict):
            raise ConfigError(f'config file {path}: section {node!r} needs a '
                              '"ros__parameters" mapping')
        result.setdefault(node_name, {}).update(params)
    return result


def parse_override(text: str) -> tuple:
    """Split ``node.param=value``; the value is read as YAML (``true``, ``3``, ``[a, b]``)."""
    key, sep, raw = text.partition('=')
    node, dot, param = key.strip().partition('.')
    if not sep or not dot or not node or not param:
        raise ConfigError(f'override {text!r}: expected node.param=value')
    try:
        value = yaml.safe_load(raw) if raw.strip() else ''
    except yaml.YAMLError as error:
        raise ConfigError(f'override {text!r}: value is not valid YAML: {error}') from error
    if value is None:
        value = ''
    return section_node(node, f'override {text!r}'), param, value


def node_parameters(specs: NodeSpecs, config_path: Optional[str] = None,
                    overrides: Iterable[str] = (),
                    cross_checks: Optional[Mapping[str, Any]] = None
                    ) -> Dict[str, Dict[str, Any]]:
    """
    Return the validated parameters of every node: file values plus overrides.

    As in ROS, a ``/**`` section (or ``--set '**.param=value'``) sets a
    parameter on every node that has it, and a node's own section wins over
    it; the parameters every ROS node has (``use_sim_time``) are accepted for
    each. Unknown nodes or parameters (one in ``/**`` that no node has) and
    invalid values raise :class:`ConfigError` that names the file, node and
    parameter.
    """
    merged = load_config(config_path)
    for text in overrides:
        node, param, value = parse_override(text)
        merged.setdefault(node, {})[param] = value
    where = f'config {config_path}' if config_path else 'settings'
    for node in merged:
        if node != ALL_NODES and node not in specs:
            raise ConfigError(f'{where}: unknown node {node!r} (known: {", ".join(specs)}, '
                              '/** for all)')
    known = {spec.name for node_specs in specs.values()
             for spec in (*node_specs, *ROS_NODE_PARAMS)}
    shared = merged.get(ALL_NODES, {})
    unknown = sorted(set(shared) - known)
    if unknown:
        raise ConfigError(f'{where}, section /**: no node has {", ".join(unknown)}')
    result: Dict[str, Dict[str, Any]] = {}
    for node, node_specs in specs.items():
        check = (cross_checks or {}).get(node)
        names = {spec.name for spec in (*node_specs, *ROS_NODE_PARAMS)}
        values = {**{k: v for k, v in shared.items() if k in names}, **merged.get(node, {})}
        try:
            result[node] = validate_values((*node_specs, *ROS_NODE_PARAMS), values, check)
        except ParamError as error:
            raise ConfigError(f'{where}, node {node}: {error}') from error
    return result


def share_directory() -> Optional[str]:
    """
    Return the package's installed share folder (launch, config), or None.

    Found through the ament index; in a virtual environment without
    ``AMENT_PREFIX_PATH`` it is looked for under the interpreter's prefix.
    """
    try:
        from ament_index_python.packages import get_package_share_directory
        return get_package_share_directory('vehicle_detection')
    except (ImportError, LookupError, OSError, ValueError):
        candidate = os.path.join(sys.prefix, 'share', 'vehicle_detection')
        return candidate if os.path.isdir(candidate) else None


def default_config_path() -> Optional[str]:
    """Return the installed ``config/config.yaml`` when the share folder exists."""
    share = share_directory()
    path = os.path.join(share, 'config', 'config.yaml') if share else ''
    return path if path and os.path.isfile(path) else None
