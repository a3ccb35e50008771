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

"""Configuration from the dashboard, the pure parts: the document, the changes, the record."""

from __future__ import annotations

from pathlib import Path

import pytest

from vehicle_detection.core.bridge.config import BRIDGE_PARAMS
from vehicle_detection.core.bridge.remote_config import (
    changes_for, ConfigFile, ConfigFileDamaged, ConfigRecord, ConfigRefused, parse_document,
    remote_names, RemoteConfig)
from vehicle_detection.core.params import defaults
from vehicle_detection.wire_config import MAX_CONFIG_TEXT, parameters_problem

LOCAL = defaults(BRIDGE_PARAMS)


@pytest.mark.parametrize('parameters, reason', [
    ({'counting_lines': 'a 0,0 1,1', 'min_track_hits': 3, 'x': [1.5, 2.0], 'y': True}, None),
    ([], 'parameters must be an object'),
    ({'Bad': 1}, "'Bad': a parameter name is lower case"),
    ({'x': {'a': 1}}, 'x: expected a bool, number or text'),
    ({'x': float('nan')}, 'x: numbers must be finite'),
    ({'x': 'a' * (MAX_CONFIG_TEXT + 1)}, 'x: a text is at most'),
    ({'x': 'a\nb'}, 'x: must not contain control characters'),
    ({f'p{i}': 1 for i in range(65)}, 'at most 64 parameters'),
])
def test_document_shape(parameters, reason) -> None:
    found = parameters_problem(parameters)
    assert (found is None) if reason is None else (reason in found), found


def test_parse_document_needs_a_version_and_parameters() -> None:
    assert parse_document({'version': 3, 'parameters': {'a': 1}}) == RemoteConfig(3, {'a': 1})
    for bad in (None, [], {'parameters': {}}, {'version': True, 'parameters': {}},
                {'version': 0, 'parameters': {}}):
        with pytest.raises(ValueError) as refused:
            parse_document(bad)
        assert not isinstance(refused.value, ConfigRefused)  # not the server's: asked again
    with pytest.raises(ConfigRefused, match='parameters must be an object'):
        parse_document({'version': 1, 'parameters': 'x'})  # the server's, refused for good


def test_only_parameters_changeable_while_running_and_not_the_link() -> None:
    names = remote_names(BRIDGE_PARAMS)
    assert {'counting_lines', 'counting_zones', 'min_alert_score'} <= names
    assert not names & {'api_base_url', 'device_id', 'enabled', 'allow_insecure_http',
                        'api_key_file', 'remote_config', 'data_dir', 'count_period', 'replay'}
    with pytest.raises(ConfigRefused, match='count_period, device_id: not settable'):
        changes_for(RemoteConfig(1, {'device_id': 'x', 'count_period': 30}), None, LOCAL,
                    BRIDGE_PARAMS)


def test_changes_are_typed_checked_and_give_back_local_values() -> None:
    first = RemoteConfig(1, {'counting_lines': 'g 0,0.5 1,0.5', 'min_alert_score': 1})
    assert changes_for(first, None, LOCAL, BRIDGE_PARAMS) == {
        'counting_lines': 'g 0,0.5 1,0.5', 'min_alert_score': 1.0}
    second = RemoteConfig(2, {'counting_zones': 'z 0,0 1,0 1,1'})
    assert changes_for(second, first, LOCAL, BRIDGE_PARAMS) == {
        'counting_lines': LOCAL['counting_lines'], 'min_alert_score': LOCAL['min_alert_score'],
        'counting_zones': 'z 0,0 1,0 1,1'}
    for parameters, reason in (({'counting_lines': 'g 0,0.5'}, "line 'g 0,0.5': expected"),
                               ({'min_alert_score': 2.0}, 'above the maximum 1'),
                               ({'min_track_hits': 'x'}, 'expected int, got str')):
        with pytest.raises(ConfigRefused, match=reason):
            changes_for(RemoteConfig(3, parameters), first, LOCAL, BRIDGE_PARAMS)


def test_record_survives_a_restart_and_a_damaged_file_is_said(tmp_path: Path) -> None:
    store = ConfigFile(str(tmp_path))
    assert store.load() == ConfigRecord()  # none yet
    record = ConfigRecord()
    applied = RemoteConfig(4, {'counting_lines': 'g 0,0.5 1,0.5'})
    record.outcome(4, None, applied)
    assert (record.state, record.reported, record.report()) == (
        'applied', False, {'version': 4, 'state': 'applied', 'reason': ''})
    record.outcome(5, 'x' * 5000)
    assert (record.state, len(record.reason), record.applied) == ('refused', 1000, applied)
    store.save(record)
    assert store.load() == record
    store.path.write_text('{"version": ')
    with pytest.raises(ConfigFileDamaged, match=r'remote_config\.json'):
        store.load()
