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

"""The real uploader started on an outbox: shared by the uploader's odd-network tests."""

from __future__ import annotations

from test_bridge_faults import settings

from vehicle_detection.core.bridge.budget import DataBudget
from vehicle_detection.core.bridge.outbox import Outbox
from vehicle_detection.core.bridge.uploader import Uploader


def started(url: str, outbox: Outbox, **changes: object) -> Uploader:
    """Start an uploader of ``outbox`` to ``url`` (settings of test_bridge_faults, ``changes``)."""
    uploader = Uploader(settings(url, 'k', **changes), outbox, DataBudget(outbox, 0),
                        lambda: {'queue_depth': 0})
    uploader.start()
    return uploader
