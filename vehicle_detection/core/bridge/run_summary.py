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

"""What one run of the bridge did, read back from the outbox at its end."""

from __future__ import annotations

from dataclasses import dataclass

from vehicle_detection.core.bridge.outbox import ALERT, COUNTS, Outbox, SENT


@dataclass(frozen=True)
class RunFigures:
    """Alerts of this run only, and what the outbox still holds from any run."""

    alerts_this_run: int
    alerts_sent_this_run: int
    images_sent_this_run: int
    pending: int  # events still to send, earlier runs' included
    count_records_this_run: int = 0  # periods of traffic counts recorded


def run_figures(outbox: Outbox, since: float) -> RunFigures:
    """Count the events recorded at or after ``since`` (seconds, epoch) and the open ones."""
    recorded = outbox.events(since)  # not the whole history: it may hold a month
    events = [e for e in recorded if e['kind'] == ALERT]
    return RunFigures(len(events), sum(e['alert_state'] == SENT for e in events),
                      sum(e['image_state'] == SENT for e in events), outbox.stats().depth,
                      sum(e['kind'] == COUNTS for e in recorded))
