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
CPU time of processes for bench/cloud_load.py: servers, PostgreSQL, HAProxy, as process trees.

``tree_cpu`` reads a process and its descendants (an instance's workers, the
cluster's backends), ``cpu_since`` what a set of them used since then (a
killed one's time is lost), and ``database_backends`` the PostgreSQL server
processes of one database, to charge a query's cost to the database.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional

import psutil
from sqlalchemy import text


def database_backends(engine: Any) -> List[Any]:
    """Return the PostgreSQL server processes of this database (none for SQLite)."""
    if engine.dialect.name != 'postgresql':
        return []
    with engine.connect() as connection:
        pids = connection.execute(text('SELECT pid FROM pg_stat_activity '
                                       'WHERE datname = current_database()')).scalars().all()
    return [psutil.Process(pid) for pid in pids]


def postmaster_pid(pg: Any) -> int:
    """Return the pid of the PostgreSQL cluster's main process (postmaster.pid)."""
    return int(Path(pg.data, 'postmaster.pid').read_text().split()[0])


def tree_cpu(pid: int) -> Optional[float]:
    """Return the CPU seconds (user + system) of ``pid`` and its descendants (None: gone)."""
    try:
        root = psutil.Process(pid)
        return cpu_of([root, *root.children(recursive=True)])
    except psutil.Error:
        return None


def cpu_since(pids: List[int], before: Dict[int, Optional[float]]) -> float:
    """Return the CPU seconds ``pids`` used since ``before``; a killed one's time is lost."""
    total = 0.0
    for pid in pids:
        now, then = tree_cpu(pid), before.get(pid)
        if now is not None and then is not None:
            total += now - then
    return total


def cpu_of(processes: List[Any]) -> float:
    """Return the CPU seconds (user + system) of ``processes``; one that ended counts 0."""
    total = 0.0
    for process in processes:
        try:
            total += sum(process.cpu_times()[:2])
        except psutil.Error:
            pass  # ended meanwhile
    return total
