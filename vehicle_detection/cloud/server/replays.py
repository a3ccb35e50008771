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
Replays (events made from recorded images) apart from live traffic, in every query.

Here, not in ``read_params``, so that what stores and prunes rows (the
rollups, retention) can use it without importing the web layer.
"""

from __future__ import annotations

from typing import Any, Literal, Optional

from sqlalchemy import ColumnElement

ReplayChoice = Literal['exclude', 'include', 'only']


def replay_condition(column: Any, choice: ReplayChoice) -> Optional[ColumnElement[bool]]:
    """Return the WHERE clause on a ``replay`` column for ``choice`` (None: no condition)."""
    if choice == 'include':
        return None
    return column == (choice == 'only')
