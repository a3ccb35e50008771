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
does not give them away). A login creates a session: a 256-bit random token
sent as an HttpOnly cookie, stored only as its SHA-256 (like device keys,
see :mod:`access`), valid for :data:`SESSION_HOURS`. Scripts use read tokens
(``Authorization: Bearer vdt_...``), created and revoked on the command line.
A device key never reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
import secrets
from typing import Optional

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Engine

from vehicle_detection.cloud.server.access import hash_key
from vehicle_detection.cloud.server.db import (
    Operator, OperatorSession, ReadToken, utcnow, writing)

ROLES = ('viewer', 'admin')
SESSION_COOKIE = 'vd_session'
SESSION_HOURS = 12
TOKEN_PREFIX = 'vdt_'
_HASHER = PasswordHasher()  # argon2id, the library's current recommended cost
# Checked when a name is unknown, so that the answer takes as long as a wrong password.
_DUMMY_HASH = _HASHER.hash(secrets.token_urlsafe(16))


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
    try:
        _HASHER.verify(operator.password_hash if operator else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    return operator  # type: ignore[return-value]


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
