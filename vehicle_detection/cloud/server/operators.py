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
Operators and scripts that read: password logins, session cookies, read tokens.

Passwords are stored as argon2id hashes (slow on purpose: a stolen database
does not give them away): time cost 3, 64 MiB of memory, parallelism 4 (the
argon2-cffi defaults, RFC 9106's second recommended option, written out here
so a library upgrade cannot change them; a stored hash carries its own
parameters, so older hashes keep verifying). A login creates a session: a 256-bit random token
sent as an HttpOnly cookie, stored only as its SHA-256 (like device keys,
see :mod:`access`), valid for :data:`SESSION_HOURS`. Scripts use read tokens
(``Authorization: Bearer vdt_...``), created and revoked on the command line.
A device key never reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
import functools
import secrets
from typing import Optional

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Connection, Engine

from vehicle_detection.cloud.server.access import hash_key
from vehicle_detection.cloud.server.db import Operator, OperatorSession, ReadToken
from vehicle_detection.cloud.server.engine import utcnow, writing
from vehicle_detection.cloud.server.metrics import PASSWORD_HASHES

ROLES = ('viewer', 'admin')
SESSION_COOKIE = 'vd_session'
SESSION_HOURS = 12
TOKEN_PREFIX = 'vdt_'
ARGON2_TIME_COST, ARGON2_MEMORY_KIB, ARGON2_PARALLELISM = 3, 64 * 1024, 4
_HASHER = PasswordHasher(time_cost=ARGON2_TIME_COST, memory_cost=ARGON2_MEMORY_KIB,
                         parallelism=ARGON2_PARALLELISM)  # argon2id


@dataclass(frozen=True)
class Reader:
    """Who a read request was authenticated as."""

    name: str
    role: str
    via: str  # session, token or public


def hash_password(password: str) -> str:
    """Return the argon2id hash of ``password``."""
    return _HASHER.hash(password)


def check_password(engine: Engine, name: str, password: str) -> Optional[Operator]:
    """Return the operator if ``password`` is theirs (one slow hash either way)."""
    with engine.connect() as connection:
        operator = connection.execute(select(Operator).where(Operator.name == name)).first()
    PASSWORD_HASHES.inc()
    try:
        _HASHER.verify(operator.password_hash if operator else dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        return None
    return operator  # type: ignore[return-value]


@functools.lru_cache(maxsize=1)
def dummy_hash() -> str:
    """
    Return a hash to check when a name is unknown: the answer takes as long either way.

    Made once per process, when the server starts (not in every command).
    """
    return _HASHER.hash(secrets.token_urlsafe(16))


def open_session(engine: Engine, operator_id: int) -> str:
    """Create a session for an operator; return the cookie value (shown once)."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    with writing(engine) as connection:
        connection.execute(delete(OperatorSession).where(OperatorSession.expires_at < now))
        connection.execute(insert(OperatorSession).values(
            token_hash=hash_key(token), operator_id=operator_id, created_at=now,
            expires_at=now + timedelta(hours=SESSION_HOURS)))
    return token


def close_session(engine: Engine, token: str) -> None:
    """End the session of cookie value ``token`` (logout)."""
    with writing(engine) as connection:
        connection.execute(delete(OperatorSession).where(
            OperatorSession.token_hash == hash_key(token)))


def session_reader(engine: Engine, token: str) -> Optional[Reader]:
    """Return the operator of a live session cookie, or None."""
    with engine.connect() as connection:
        row = connection.execute(
            select(Operator.name, Operator.role).join(
                OperatorSession, OperatorSession.operator_id == Operator.id).where(
                OperatorSession.token_hash == hash_key(token),
                OperatorSession.expires_at > utcnow())).first()
    return Reader(row.name, row.role, 'session') if row else None


def token_reader(engine: Engine, token: str) -> Optional[Reader]:
    """Return the reader of a live read token, or None."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    with engine.connect() as connection:
        row = connection.execute(select(ReadToken.name).where(
            ReadToken.token_hash == hash_key(token), ReadToken.revoked_at.is_(None))).first()
    return Reader(row.name, 'viewer', 'token') if row else None


def new_read_token() -> str:
    """Return a fresh read token."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def set_password(connection: Connection, operator_id: int, password: str) -> int:
    """Store a new password and end every session of the operator; return how many."""
    connection.execute(update(Operator).where(Operator.id == operator_id).values(
        password_hash=hash_password(password)))
    return end_sessions(connection, operator_id)


def end_sessions(connection: Connection, operator_id: int) -> int:
    """End every session of an operator (logged out everywhere); return how many."""
    return connection.execute(delete(OperatorSession).where(
        OperatorSession.operator_id == operator_id)).rowcount


def live_sessions(connection: Connection) -> dict:
    """Return the number of unexpired sessions per operator id."""
    return dict(connection.execute(
        select(OperatorSession.operator_id, func.count()).where(
            OperatorSession.expires_at > utcnow()).group_by(OperatorSession.operator_id)).all())
