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

"""Declare a node's parameters from :class:`ParamSpec` s and validate every change."""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Type, TypeVar

from rcl_interfaces.msg import (
    FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType, SetParametersResult)
from rclpy.node import Node
from rclpy.parameter import Parameter

from vehicle_detection.core.params import ParamError, ParamSpec, validate_values

_TYPES = {
    bool: ParameterType.PARAMETER_BOOL,
    int: ParameterType.PARAMETER_INTEGER,
    float: ParameterType.PARAMETER_DOUBLE,
    str: ParameterType.PARAMETER_STRING,
}

S = TypeVar('S')  # a node's typed settings class


def descriptor(spec: ParamSpec) -> ParameterDescriptor:
    """Build the ``ParameterDescriptor`` of one spec: type, description, range."""
    desc = ParameterDescriptor(name=spec.name, description=spec.description,
                               read_only=spec.read_only,
                               additional_constraints=spec.constraints())
    if isinstance(spec.default, list):
        inner = type(spec.default[0]) if spec.default else str
        desc.type = {str: ParameterType.PARAMETER_STRING_ARRAY,
                     int: ParameterType.PARAMETER_INTEGER_ARRAY,
                     float: ParameterType.PARAMETER_DOUBLE_ARRAY}[inner]
    else:
        desc.type = _TYPES[type(spec.default)]
    if desc.type == ParameterType.PARAMETER_DOUBLE and (
            spec.minimum is not None and spec.maximum is not None):
        desc.floating_point_range = [FloatingPointRange(
            from_value=float(spec.minimum), to_value=float(spec.maximum), step=0.0)]
    elif desc.type == ParameterType.PARAMETER_INTEGER and (
            spec.minimum is not None and spec.maximum is not None):
        desc.integer_range = [IntegerRange(
            from_value=int(spec.minimum), to_value=int(spec.maximum), step=0)]
    return desc


class DeclaredParameters:
    """
    A node's validated parameter values, kept in step with the node.

    Values given at start are checked like later changes: an invalid
    start-up value raises :class:`ParamError` naming it. A run-time change is
    validated whole in the on-set callback (specs, ``cross_check``, then
    ``change_check``, which only run-time changes face), so nothing is
    half-applied; it is committed in the post-set callback, which then calls
    ``on_change(new, previous)`` with the full sets of values.
    """

    def __init__(self, node: Node, specs: Sequence[ParamSpec],
                 cross_check: Optional[Callable[[Mapping[str, Any]], Optional[str]]] = None,
                 on_change: Optional[Callable[[Dict[str, Any], Dict[str, Any]], None]] = None,
                 change_check: Optional[Callable[[Mapping[str, Any]], Optional[str]]] = None
                 ) -> None:
        self._node = node
        self._specs = specs
        self._names = {spec.name for spec in specs}
        self._cross_check = cross_check
        self._change_check = change_check
        self._on_change = on_change
        self._pending: Optional[Dict[str, Any]] = None
        self._typed: Any = None
        self._typed_from: Optional[Dict[str, Any]] = None
        declared = node.declare_parameters(
            '', [(spec.name, spec.default, descriptor(spec)) for spec in specs])
        given = {param.name: param.value for param in declared}
        self.values: Dict[str, Any] = validate_values(specs, given, cross_check)
        node.add_on_set_parameters_callback(self._validate)
        node.add_post_set_parameters_callback(self._commit)

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def typed(self, settings_class: Type[S]) -> S:
        """Return the current values as the node's typed settings class (rebuilt on change)."""
        if not isinstance(self._typed, settings_class) or self._typed_from is not self.values:
            self._typed, self._typed_from = settings_class(**self.values), self.values
        return self._typed

    def _validate(self, params: List[Parameter]) -> SetParametersResult:
        # Parameters rclpy declared itself (use_sim_time...) are its business: a set of
        # an undeclared name never gets here, and rclpy checks their types.
        changes = {param.name: param.value for param in params if param.name in self._names}
        if not changes:
            return SetParametersResult(successful=True)
        try:
            checked = validate_values(self._specs, changes, self._cross_check,
                                      current=self.values)
        except ParamError as error:
            self._node.get_logger().warning(f'parameter change refused: {error}')
            return SetParametersResult(successful=False, reason=str(error))
        merged = {**self.values, **checked}
        reason = self._change_check(merged) if self._change_check is not None else None
        if reason:
            self._node.get_logger().warning(f'parameter change refused: {reason}')
            return SetParametersResult(successful=False, reason=reason)
        self._pending = merged
        return SetParametersResult(successful=True)

    def _commit(self, params: List[Parameter]) -> None:
        """Take the values validated a moment ago (rclpy calls this after a successful set)."""
        if self._pending is None or not any(param.name in self._names for param in params):
            return
        previous, self.values, self._pending = self.values, self._pending, None
        if self._on_change is not None:
            self._on_change(self.values, previous)
