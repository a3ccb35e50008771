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
The login lock: failed logins per name and per client address, kept in the database.

A name is locked after :data:`NAME_FAILURES` failed logins, an address after
:data:`ADDRESS_FAILURES` (several people may share one address): first for
:data:`FIRST_LOCK_S`, then twice as long after every further failure, at most
:data:`MAX_LOCK_S`. During a lock every login of that name (or from that
address) is refused before any password is hashed, the right password too,
and the same way whether the name exists or not. A successful login clears
its name; an address forgets its failures :data:`FORGET_S` after the last
one (or the end of its last lock).

Each attempt is counted *before* its password is checked (a claim, in one
transaction that locks both rows), so concurrent guesses on any worker of
any server instance cannot slip past the limit; a claim whose password turns
out right is given back. The rows live in the database (table
``login_guard``), never in one host's files.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
import math
import random
import time
from typing import Dict, List, Optional

from sqlalchemy import case, delete, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine, Row

from vehicle_detection.cloud.server.db import LoginGuard
from vehicle_detection.cloud.server.engine import writing

NAME_FAILURES = 5  # failed logins of one name before it is locked
ADDRESS_FAILURES = 10  # failed logins from one address before it is locked
FIRST_LOCK_S = 60.0
MAX_LOCK_S = 900.0
FORGET_S = 3600.0  # quiet time after which failures are forgotten
PRUNE_CHANCE = 0.02  # a claim also deletes forgotten rows now and then
# Password hashes at once per process (argon2id takes 64 MiB each), and how long a login
# waits for a turn before it is answered 503.
MAX_HASHES = 2
HASH_WAIT_S = 2.0


def lock_seconds(failures: int, threshold: int) -> float:
    """Return how long ``failures`` lock a subject that is locked from ``threshold`` on."""
    if failures < threshold:
        return 0.0
    return min(MAX_LOCK_S, FIRST_LOCK_S * 2 ** min(failures - threshold, 16))


def name_subject(name: str) -> str:
    """Return the row key of a login name."""
    return 'name:' + name


def address_subject(address: str) -> str:
    """Return the row key of a client address (an IPv6 address has 45 characters at most)."""
    return 'addr:' + address[:64]


@dataclass(frozen=True)
class Claim:
    """The outcome of :meth:`LoginGuardStore.claim`: allowed, or the seconds to wait."""

    allowed: bool
    retry_after: int
    name: str = ''
    address: str = ''
    # The address's lock before this claim and after it, so that a right password can
    # give the attempt back.
    address_lock_before: float = 0.0
    address_lock_after: float = 0.0


def _wait(locked_until: float, now: float) -> int:
    return max(1, math.ceil(locked_until - now))


class LoginGuardStore:
    """The login lock of one database (SQLite or PostgreSQL), for every worker."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def locked(self, name: str, address: str, now: Optional[float] = None) -> int:
        """Return the seconds ``name`` or ``address`` is still locked for (0: not locked)."""
        now = time.time() if now is None else now
        with self.engine.connect() as connection:
            until = connection.execute(select(LoginGuard.locked_until).where(
                LoginGuard.subject.in_([name_subject(name), address_subject(address)]))
            ).scalars().all()
        latest = max(until, default=0.0)
        return _wait(latest, now) if latest > now else 0

    def claim(self, name: str, address: str, now: Optional[float] = None) -> Claim:
        """
        Count one attempt of ``name`` from ``address``, unless either is locked.

        The attempt counts as a failure until :meth:`succeeded` gives it back;
        the attempt that reaches a threshold starts the lock itself, so no
        concurrent attempt gets past it.
        """
        now = time.time() if now is None else now
        subjects = sorted([name_subject(name), address_subject(address)])  # one lock order
        with writing(self.engine) as connection:
            rows = self._rows_for_update(connection, subjects)
            waits = [_wait(row.locked_until, now) for row in rows.values()
                     if row.locked_until > now]
            if waits:
                return Claim(False, max(waits))
            addressed = rows[address_subject(address)]
            self._count(connection, rows[name_subject(name)], now, NAME_FAILURES)
            address_lock = self._count(connection, addressed, now, ADDRESS_FAILURES)
            if random.random() < PRUNE_CHANCE:
                connection.execute(delete(LoginGuard).where(
                    LoginGuard.last_failure_at < now - FORGET_S,
                    LoginGuard.locked_until < now - FORGET_S))
        return Claim(True, 0, name, address, addressed.locked_until, address_lock)

    def succeeded(self, claim: Claim) -> None:
        """Give back a claim whose password was right: clear the name, uncount the address."""
        subject = address_subject(claim.address)
        with writing(self.engine) as connection:
            connection.execute(delete(LoginGuard).where(
                LoginGuard.subject == name_subject(claim.name)))
            connection.execute(update(LoginGuard).where(LoginGuard.subject == subject).values(
                failures=case((LoginGuard.failures > 0, LoginGuard.failures - 1), else_=0)))
            # Lift the address lock only if this very claim set it (no failure since).
            connection.execute(update(LoginGuard).where(
                LoginGuard.subject == subject,
                LoginGuard.locked_until == claim.address_lock_after).values(
                locked_until=claim.address_lock_before))

    def clear_name(self, name: str) -> None:
        """Forget the failures and lock of ``name`` (its password was just set)."""
        with writing(self.engine) as connection:
            connection.execute(delete(LoginGuard).where(
                LoginGuard.subject == name_subject(name)))

    def _rows_for_update(self, connection: Connection, subjects: List[str]
                         ) -> Dict[str, Row]:
        """Create the rows that are missing, then lock and return them (by subject)."""
        insert = postgresql_insert if self.engine.dialect.name == 'postgresql' else sqlite_insert
        connection.execute(insert(LoginGuard).values(
            [{'subject': subject, 'failures': 0, 'locked_until': 0.0, 'last_failure_at': 0.0}
             for subject in subjects]).on_conflict_do_nothing(index_elements=['subject']))
        # SQLite has no row locks: writing() already lets one writer in at a time.
        found = connection.execute(
            select(LoginGuard).where(LoginGuard.subject.in_(subjects))
            .order_by(LoginGuard.subject).with_for_update()).all()
        return {row.subject: row for row in found}

    @staticmethod
    def _count(connection: Connection, row: Row, now: float, threshold: int) -> float:
        """Count one failure on ``row``; return the lock it sets (its old one if none)."""
        quiet_since = max(row.last_failure_at, row.locked_until)
        failures = (0 if now - quiet_since > FORGET_S else row.failures) + 1
        seconds = lock_seconds(failures, threshold)
        locked_until = now + seconds if seconds else row.locked_until
        connection.execute(update(LoginGuard).where(LoginGuard.subject == row.subject).values(
            failures=failures, locked_until=locked_until, last_failure_at=now))
        return locked_until


class HashSlots:
    """
    At most ``size`` password checks at once in this process; the others wait a little.

    Every check holds 64 MiB for ~0.2 s: without a bound, concurrent logins grow
    the server by 64 MiB each (16 took it from 112 MB to over 1 GB).
    """

    def __init__(self, size: int = MAX_HASHES, wait_s: float = HASH_WAIT_S) -> None:
        self.wait_s = wait_s
        self._semaphore = asyncio.Semaphore(size)  # bound to the loop at first use

    async def acquire(self) -> bool:
        """Take a slot; False when none came free within ``wait_s``."""
        try:
            await asyncio.wait_for(self._semaphore.acquire(), self.wait_s)
        except asyncio.TimeoutError:
            return False
        return True

    def release(self) -> None:
        """Give a slot back."""
        self._semaphore.release()
