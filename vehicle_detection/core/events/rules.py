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
The event rules a bridge runs, each built from its slice of the settings.

Every rule names its settings type (``settings_type``, a frozen dataclass);
:func:`vehicle_detection.core.params.slice_of` fills it from the node's
settings by field name, so no caller copies fields one by one. A new rule
is a module implementing :class:`Rule`, an entry here, and its kind in
``wire.ALERT_KINDS``.
"""

from __future__ import annotations

from typing import Any, List, Sequence, Tuple

from vehicle_detection.core.events.dwell import ZoneDwellRule
from vehicle_detection.core.events.event import FrameInfo, Rule, VehicleEvent
from vehicle_detection.core.events.policy import AlertPolicy
from vehicle_detection.core.events.vehicles import Sighting
from vehicle_detection.core.events.wrong_way import WrongWayRule
from vehicle_detection.core.params import slice_of

RULES: Tuple[Any, ...] = (AlertPolicy, ZoneDwellRule, WrongWayRule)


def build_rules(settings: Any) -> List[Rule]:
    """Return every rule, each configured with its slice of ``settings``."""
    return [rule(slice_of(rule.settings_type, settings)) for rule in RULES]


def configure_rules(rules: Sequence[Rule], settings: Any) -> None:
    """Hand each rule its slice of new ``settings``."""
    for rule in rules:
        rule.configure(slice_of(rule.settings_type, settings))


def run_rules(rules: Sequence[Rule], sightings: Sequence[Sighting],
              frame: FrameInfo) -> List[VehicleEvent]:
    """Feed one frame to every rule; return their events in rule order."""
    return [event for rule in rules for event in rule.update(sightings, frame)]


def flush_rules(rules: Sequence[Rule]) -> List[VehicleEvent]:
    """Return the events every rule still holds (at the end of a run)."""
    return [event for rule in rules for event in rule.flush()]
