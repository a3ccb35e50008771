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

"""The account commands of ``vehicle-detection-cloud``: devices, operators, read tokens."""

from __future__ import annotations

import argparse
from contextlib import contextmanager
import getpass
import sys
from typing import Iterator, Optional

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vehicle_detection.cloud.server.access import hash_key, new_key
from vehicle_detection.cloud.server.data_version import track_writes
from vehicle_detection.cloud.server.db import Device, LoginGuard, Operator, ReadToken
from vehicle_detection.cloud.server.engine import is_sqlite, make_engine, utcnow
from vehicle_detection.cloud.server.login_guard import name_subject
from vehicle_detection.cloud.server.operators import (
    end_sessions, hash_password, live_sessions, new_read_token, set_password)
from vehicle_detection.cloud.server.schema import check_current, upgrade
from vehicle_detection.wire import is_valid_name

MIN_PASSWORD = 10


def prepare(args: argparse.Namespace) -> None:
    """Migrate a SQLite database; refuse a PostgreSQL one that is behind."""
    if is_sqlite(args.db):
        upgrade(args.db)
    else:
        check_current(args.db, f'vehicle-detection-cloud migrate --db {args.db}')


@contextmanager
def transaction(args: argparse.Namespace) -> Iterator[Session]:
    """Yield a session of the (prepared) database in one transaction, then release it."""
    prepare(args)
    engine = make_engine(args.db)
    track_writes(engine)  # a revoked or new device shows in the cached reads at once
    try:
        with Session(engine) as session, session.begin():
            yield session
    finally:
        engine.dispose()


def valid_name(kind: str, name: str) -> bool:
    """Tell whether ``name`` may name a device, user or token; say why not."""
    if is_valid_name(name):
        return True
    print(f'error: {kind} name {name!r} must be 1-64 letters, digits, "_", "." or "-"',
          file=sys.stderr)
    return False


def migrate(args: argparse.Namespace) -> int:
    """Bring the database schema to the newest revision."""
    upgrade(args.db)
    print(f'database {args.db} is at the newest schema')
    return 0


def add_device(args: argparse.Namespace) -> int:
    """Create a device and print its key once, alone on the last line."""
    if not valid_name('device', args.name):
        return 2
    key = new_key()
    try:
        with transaction(args) as session:
            device = session.execute(select(Device).where(Device.name == args.name)).scalar()
            if device is None:
                session.add(Device(name=args.name, key_hash=hash_key(key), created_at=utcnow()))
            elif device.revoked_at is not None:  # a new key for a revoked device
                device.key_hash, device.revoked_at = hash_key(key), None
            else:
                raise IntegrityError('', None, ValueError('exists'))
    except IntegrityError:
        print(f'error: device {args.name!r} already exists (revoke-device it first to '
              f'issue a new key)', file=sys.stderr)
        return 1
    print(f'device {args.name} added; its API key is shown once, store it on the device '
          f'(VD_CLOUD_API_KEY or api_key_file):')
    print(key)
    return 0


def list_devices(args: argparse.Namespace) -> int:
    """Print the devices, their state and last heartbeat."""
    with transaction(args) as session:
        devices = session.execute(select(Device).order_by(Device.name)).scalars().all()
        for device in devices:
            state = 'revoked' if device.revoked_at else 'active'
            seen = device.last_seen_at.isoformat() + 'Z' if device.last_seen_at else 'never'
            print(f'{device.name}\t{state}\tlast heartbeat {seen}')
    return 0


def revoke_device(args: argparse.Namespace) -> int:
    """Revoke a device's key (its alerts stay)."""
    with transaction(args) as session:
        device = session.execute(select(Device).where(Device.name == args.name)).scalar()
        if device is None:
            print(f'error: no device {args.name!r}', file=sys.stderr)
            return 1
        device.revoked_at = device.revoked_at or utcnow()
    print(f'device {args.name} revoked')
    return 0


def read_password(args: argparse.Namespace) -> Optional[str]:
    """Read a new password (stdin line or asked twice); None, said why, if unfit."""
    if args.password_stdin:
        password = sys.stdin.readline().rstrip('\n')
    else:
        password = getpass.getpass(f'password for {args.name}: ')
        if getpass.getpass('again: ') != password:
            print('error: the passwords differ', file=sys.stderr)
            return None
    if len(password) < MIN_PASSWORD:
        print(f'error: the password needs at least {MIN_PASSWORD} characters', file=sys.stderr)
        return None
    return password


def add_user(args: argparse.Namespace) -> int:
    """Create an operator (or give one a new password and role), reading the password safely."""
    if not valid_name('user', args.name):
        return 2
    password = read_password(args)
    if password is None:
        return 1
    with transaction(args) as session:
        user = session.execute(select(Operator).where(Operator.name == args.name)).scalar()
        if user is None:
            session.add(Operator(name=args.name, password_hash=hash_password(password),
                                 role=args.role, created_at=utcnow()))
        else:
            user.role = args.role
            set_password(session.connection(), user.id, password)
            _unlock(session, args.name)
    print(f'user {args.name} ({args.role}) can log in at /login')
    return 0


def change_password(args: argparse.Namespace) -> int:
    """Give an operator a new password; every session of theirs ends."""
    password = read_password(args)
    if password is None:
        return 1
    with transaction(args) as session:
        user = session.execute(select(Operator).where(Operator.name == args.name)).scalar()
        if user is not None:
            ended = set_password(session.connection(), user.id, password)
            _unlock(session, args.name)
    if user is None:
        print(f'error: no user {args.name!r}', file=sys.stderr)
        return 1
    print(f'password of {args.name} changed; {ended} session(s) ended')
    return 0


def _unlock(session: Session, name: str) -> None:
    """Lift the login lock of a name whose password was just set by the operator."""
    session.execute(delete(LoginGuard).where(LoginGuard.subject == name_subject(name)))


def remove_user(args: argparse.Namespace) -> int:
    """Remove an operator and end their sessions."""
    with transaction(args) as session:
        user = session.execute(select(Operator).where(Operator.name == args.name)).scalar()
        if user is not None:
            ended = end_sessions(session.connection(), user.id)
            session.delete(user)
    if user is None:
        print(f'error: no user {args.name!r}', file=sys.stderr)
        return 1
    print(f'user {args.name} removed; {ended} session(s) ended')
    return 0


def list_users(args: argparse.Namespace) -> int:
    """Print the operators: name, role, created, live sessions."""
    with transaction(args) as session:
        users = session.execute(select(Operator).order_by(Operator.name)).scalars().all()
        sessions = live_sessions(session.connection())
        for user in users:
            print(f'{user.name}\t{user.role}\tcreated {user.created_at.isoformat()}Z\t'
                  f'{sessions.get(user.id, 0)} active session(s)')
    return 0


def add_token(args: argparse.Namespace) -> int:
    """Create a read token for a script and print it once, alone on the last line."""
    if not valid_name('token', args.name):
        return 2
    token = new_read_token()
    try:
        with transaction(args) as session:
            session.add(ReadToken(name=args.name, token_hash=hash_key(token),
                                  created_at=utcnow()))
    except IntegrityError:
        print(f'error: a token named {args.name!r} exists', file=sys.stderr)
        return 1
    print(f'read token {args.name} (send as "Authorization: Bearer <token>"), shown once:')
    print(token)
    return 0


def revoke_token(args: argparse.Namespace) -> int:
    """Revoke a read token."""
    with transaction(args) as session:
        token = session.execute(select(ReadToken).where(ReadToken.name == args.name)).scalar()
        if token is not None:
            token.revoked_at = token.revoked_at or utcnow()
    if token is None:
        print(f'error: no token {args.name!r}', file=sys.stderr)
        return 1
    print(f'read token {args.name} revoked')
    return 0
