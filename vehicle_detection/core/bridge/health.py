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
The bridge's health: the figures of the link and the outbox, and what they mean.

Shared by ``/diagnostics``, the ``~/health_check`` service and the
heartbeats; the node maps the verdict's level (``ok``, ``warn``,
``error``) onto ROS diagnostic levels.
"""

from __future__ import annotations

from typing import Any, Dict, Tuple

from vehicle_detection.core.bridge.budget import DataBudget
from vehicle_detection.core.bridge.config import BridgeSettings
from vehicle_detection.core.bridge.link import LinkState, LinkStats
from vehicle_detection.core.bridge.outbox import Outbox
from vehicle_detection.core.system.log_files import folder_bytes, ros_log_dir

OK, WARN, ERROR = 'ok', 'warn', 'error'


def link_figures(outbox: Outbox, link: LinkStats, budget: DataBudget) -> Dict[str, Any]:
    """Return the figures of the link, the outbox (disk used included) and the data budget."""
    stats, spent = outbox.stats(), budget.figures()
    return {
        'link_state': str(link.link_state), 'queue_depth': stats.depth,
        'oldest_unsent_s': round(stats.oldest_unsent_s, 1),
        'upload_success_rate': round(link.success_rate, 4), 'retries': link.retries,
        'evictions': stats.evictions, 'held_events': stats.held,
        'bytes_month': spent.used,
        'projected_bytes_month': spent.projected, 'budget_bytes': spent.budget,
        **disk_figures(outbox)}


def disk_figures(outbox: Outbox) -> Dict[str, Any]:
    """Return the disk used on this box: outbox database, waiting snapshots, ROS logs."""
    disk = outbox.disk_usage()
    return {'outbox_db_bytes': disk.database, 'snapshot_bytes': disk.snapshots,
            'log_bytes': folder_bytes(ros_log_dir())}


def link_verdict(problem: str, link: LinkStats, settings: BridgeSettings,
                 figures: Dict[str, Any]) -> Tuple[str, str]:
    """Return the level and message of the link and the outbox (``problem``: set-up fault)."""
    if problem or link.link_state == LinkState.UNAUTHORIZED:
        return ERROR, problem or link.last_error
    if not settings.enabled:
        return OK, 'cloud upload disabled; events recorded locally'
    if link.link_state == LinkState.DOWN:
        return WARN, f'cloud unreachable, {figures["queue_depth"]} queued'
    if link.link_state in (LinkState.REDIRECTED, LinkState.UNEXPECTED):
        return (ERROR if link.link_state == LinkState.REDIRECTED else WARN), link.last_error
    if figures['held_events']:
        return WARN, (f"{figures['held_events']} events set aside: the server keeps "
                      f'failing them while it accepts others (tried again later, at once '
                      f'when the link recovers): {link.last_error}')
    # The key's device is the truth: the server files everything under it.
    filed = (f"; filed under {link.filed_as!r} (the API key's device; device_id "
             f'{settings.device_id!r} is not used)' if link.filed_as else '')
    return OK, f'link {link.link_state}, {figures["queue_depth"]} queued{filed}'
