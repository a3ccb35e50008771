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
Parameter specifications shared by the nodes, the launch files and the runner.

Each node's parameters are declared once, in pure Python: as a frozen, typed
settings class whose fields carry description, range, choices and read-only
flag (:func:`setting`), or as a tuple of :class:`ParamSpec`. The ROS glue turns
the specs into ``ParameterDescriptor`` s and validates set-parameter requests
with them; the launch files, the one-process runner and the generated
``config/config.yaml`` come from the same specs, and nodes read their values
as typed attributes (``settings.snapshot_quality``, checked by mypy).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import (
    Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Type, TypeVar, Union)

T = TypeVar('T')
ParamValue = Union[bool, int, float, str, List[str], List[int], List[float]]
Check = Callable[[Any], Optional[str]]


@dataclass(frozen=True)
class ParamSpec:
    """One declared parameter: default, description and the values it accepts."""

    name: str
    default: ParamValue
    description: str
    minimum: Optional[float] = None
    maximum: Optional[float] = None
    choices: Optional[Tuple[str, ...]] = None
    read_only: bool = False
    check: Optional[Check] = None

    @property
    def kind(self) -> type:
        """Python type of the parameter, taken from its default."""
        return type(self.default)

    def constraints(self) -> str:
        """Human-readable summary of what the parameter accepts."""
        parts = []
        if self.minimum is not None or self.maximum is not None:
            lo = '-inf' if self.minimum is None else _fmt(self.minimum)
            hi = 'inf' if self.maximum is None else _fmt(self.maximum)
            parts.append(f'range [{lo}, {hi}]')
        if self.choices:
            parts.append('one of ' + ', '.join(self.choices))
        return '; '.join(parts)

    def coerce(self, value: Any) -> Any:
        """Return ``value`` in the spec's type; an int is accepted for a float."""
        if self.kind is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if isinstance(self.default, list) and isinstance(value, tuple):
            return list(value)
        return value

    def validate(self, value: Any) -> Optional[str]:
        """Return why ``value`` is refused, or None when it is acceptable."""
        value = self.coerce(value)
        if not _same_kind(self.default, value):
            return (f'{self.name}: expected {_kind_name(self.default)}, '
                    f'got {type(value).__name__} {value!r}')
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if self.minimum is not None and value < self.minimum:
                return f'{self.name}: {value} is below the minimum {_fmt(self.minimum)}'
            if self.maximum is not None and value > self.maximum:
                return f'{self.name}: {value} is above the maximum {_fmt(self.maximum)}'
        if self.choices is not None and value not in self.choices:
            return f'{self.name}: {value!r} is not one of {", ".join(self.choices)}'
        if self.check is not None:
            reason = self.check(value)
            if reason:
                return f'{self.name}: {reason}'
        return None


def _fmt(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else str(number)


def _kind_name(default: Any) -> str:
    if isinstance(default, list):
        inner = type(default[0]).__name__ if default else 'str'
        return f'a list of {inner}'
    return type(default).__name__


def _same_kind(default: Any, value: Any) -> bool:
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    if isinstance(default, list):
        if not isinstance(value, list):
            return False
        inner = type(default[0]) if default else str
        return all(_same_kind(inner(), item) for item in value)
    return type(value) is type(default)


def setting(default: Any, description: str, **options: Any) -> Any:
    """
    Declare one field of a node's typed settings class, with what its spec needs.

    The field's name and type are the parameter's; ``options`` are the other
    :class:`ParamSpec` fields (minimum, maximum, choices, read_only, check).
    :func:`specs_of` turns the class into the node's specs.
    """
    spec = {'default': default, 'description': description, **options}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={'spec': spec})
    return field(default=default, metadata={'spec': spec})


def from_spec(spec: 'ParamSpec') -> Any:
    """Declare a settings field from a spec shared by several nodes (same name)."""
    return setting(spec.default, spec.description, minimum=spec.minimum,
                   maximum=spec.maximum, choices=spec.choices, read_only=spec.read_only,
                   check=spec.check)


def slice_of(kind: Type[T], source: Any, **changes: Any) -> T:
    """
    Return a ``kind`` (a settings dataclass) holding ``source``'s values of its fields.

    Fields are taken by name (attributes and properties of ``source``), so a
    part of the system configured with a slice of a node's settings never
    repeats their defaults; a field ``source`` lacks keeps its own default,
    and ``changes`` give or replace single values.
    """
    values = {f.name: changes[f.name] if f.name in changes else getattr(source, f.name)
              for f in fields(kind)  # type: ignore[arg-type]  # a dataclass, by contract
              if f.name in changes or hasattr(source, f.name)}
    return kind(**values)


def specs_of(settings_class: type) -> Tuple['ParamSpec', ...]:
    """Return the parameter specs of a settings class, in field order."""
    return tuple(ParamSpec(f.name, **f.metadata['spec']) for f in fields(settings_class))


#: the image subscriptions' reliability, a parameter of every node that takes images
IMAGE_RELIABILITY = ParamSpec(
    'image_reliability', 'best_effort',
    'Reliability of the image subscription (read at start): best_effort hears every '
    'camera; reliable hears only reliable publishers, but large frames from another '
    'process then arrive whole instead of being lost to one dropped fragment.',
    choices=('best_effort', 'reliable'), read_only=True)


#: parameters every ROS 2 node has (rclpy declares them itself): accepted for each node
#: in parameter files and overrides, passed to the node, never declared again
ROS_NODE_PARAMS = (
    ParamSpec('use_sim_time', False,
              'Take the time from /clock (a bag played with --clock) instead of the system '
              'clock.'),
)


class ParamError(ValueError):
    """Raised when parameters are refused; the message says which and why."""


def spec_map(specs: Iterable[ParamSpec]) -> Dict[str, ParamSpec]:
    """Index specs by name."""
    return {spec.name: spec for spec in specs}


def defaults(specs: Iterable[ParamSpec]) -> Dict[str, Any]:
    """Return the default value of every parameter."""
    return {spec.name: spec.default for spec in specs}


def validate_values(specs: Sequence[ParamSpec], values: Mapping[str, Any],
                    cross_check: Optional[Callable[[Mapping[str, Any]], Optional[str]]] = None,
                    current: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """
    Validate a full or partial set of values and return them coerced.

    Raises :class:`ParamError` listing every refused value; nothing is
    returned half-checked. ``cross_check`` sees the merged result (defaults
    overlaid with ``values``; ``current`` in place of the defaults for a
    change to a running node) for rules that span parameters.
    """
    by_name = spec_map(specs)
    reasons: List[str] = []
    coerced: Dict[str, Any] = {}
    for name, value in values.items():
        spec = by_name.get(name)
        if spec is None:
            reasons.append(f'{name}: unknown parameter (known: {", ".join(sorted(by_name))})')
            continue
        reason = spec.validate(value)
        if reason:
            reasons.append(reason)
        else:
            coerced[name] = spec.coerce(value)
    if not reasons and cross_check is not None:
        base = defaults(specs) if current is None else current
        reason = cross_check({**base, **coerced})
        if reason:
            reasons.append(reason)
    if reasons:
        raise ParamError('; '.join(reasons))
    return coerced
