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
The start-up checks: ``vehicle-detection-cloud check``, and ``serve`` before it listens.

Database reachable and at the schema this server needs, snapshot storage
writable with free space, port free, TLS files readable and a pair, Redis
reachable when named: one line each, with the fix when it fails.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
import errno
import os
from pathlib import Path
import shutil
import socket
import sqlite3
import ssl
import time
from typing import List, Optional
import uuid

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from vehicle_detection.cloud.server.cache_store import CacheUnavailable, RedisStore
from vehicle_detection.cloud.server.engine import is_sqlite
from vehicle_detection.cloud.server.schema import alembic_config, head_revision
from vehicle_detection.cloud.server.storage import StorageError
from vehicle_detection.cloud.server.stores import open_store

CONNECT_TIMEOUT_S = 5
PROBE_BYTES = 4096


@dataclass(frozen=True)
class Check:
    """The outcome of one check: what was found and, when it failed, how to fix it."""

    name: str
    ok: bool
    detail: str
    fix: str = ''

    def line(self) -> str:
        """Return the check as one line, with the fix when it failed."""
        if self.ok:
            return f'ok    {self.name}: {self.detail}'
        return f'FAIL  {self.name}: {self.detail.rstrip(".")}; fix: {self.fix}'


def run_checks(args: argparse.Namespace) -> List[Check]:
    """Run every check for ``serve``'s options, in the order an operator fixes them."""
    return [check_database(args.db), check_storage(args.storage, args.min_free_mb),
            check_port(args.host, args.port), check_tls(args.tls_cert, args.tls_key),
            check_redis(args.redis)]


def shown_url(url: str) -> str:
    """Return a database or Redis URL with its password hidden."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def check_database(url: str) -> Check:
    """Check that the database answers and is at the newest schema (SQLite: or migrates)."""
    shown = shown_url(url)
    name = 'database'
    try:
        sqlite = is_sqlite(url)
    except ArgumentError:
        return Check(name, False, f'{url!r} is not a database URL',
                     'sqlite:///path/cloud.db or postgresql://user:password@host/database')
    begun = time.perf_counter()
    try:
        current = _sqlite_revision(url) if sqlite else _postgres_revision(url)
    except (SQLAlchemyError, sqlite3.Error, OSError) as error:
        reason = str(getattr(error, 'orig', None) or error).strip().splitlines()[0]
        fix = ('check the path and that this user may read and write it' if sqlite else
               'start PostgreSQL, or correct --db (host, port, user, password, database)')
        return Check(name, False, f'cannot use {shown}: {reason}', fix)
    answer_ms = (time.perf_counter() - begun) * 1000
    head = head_revision()
    migrate = f'vehicle-detection-cloud migrate --db {shown}'
    if current == head:
        return Check(name, True, f'{shown} at schema {head}, the newest '
                                 f'(answered in {answer_ms:.1f} ms)')
    if current is not None and not _known(current):
        return Check(name, False, f'{shown} is at schema {current}, which this server does not '
                                  f'know (made by a newer version?)',
                     'run the server version that migrated it, or restore a backup')
    at = f'at schema {current}' if current else 'empty (no schema)'
    if sqlite:
        return Check(name, True, f'{shown} {at}; serve migrates it to {head} at start')
    return Check(name, False, f'{shown} is {at}, this server needs {head}', f'run `{migrate}`')


def _sqlite_revision(url: str) -> Optional[str]:
    path = make_url(url).database or ''
    if not path or path == ':memory:':
        return None
    if not os.path.exists(path):
        folder = Path(path).resolve().parent
        while not folder.exists():
            folder = folder.parent
        if not os.access(folder, os.W_OK | os.X_OK):
            raise OSError(f'{path} does not exist and {folder} is not writable')
        return None
    connection = sqlite3.connect(f'file:{path}?mode=ro', uri=True, timeout=CONNECT_TIMEOUT_S)
    try:
        tables = {row[0] for row in connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        if 'alembic_version' not in tables:
            return None
        row = connection.execute('SELECT version_num FROM alembic_version').fetchone()
        return row[0] if row else None
    finally:
        connection.close()


def _postgres_revision(url: str) -> Optional[str]:
    parsed = make_url(url)
    if parsed.drivername == 'postgresql':
        parsed = parsed.set(drivername='postgresql+psycopg2')
    engine = create_engine(parsed, connect_args={'connect_timeout': CONNECT_TIMEOUT_S})
    try:
        with engine.connect() as connection:
            connection.execute(text('SELECT 1'))
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def _known(revision: str) -> bool:
    try:
        return ScriptDirectory.from_config(alembic_config('sqlite://')).get_revision(
            revision) is not None
    except CommandError:
        return False


def check_storage(location: str, min_free_mb: int) -> Check:
    """Check that the snapshot folder takes a file (written, read, deleted), with free space."""
    name = 'storage'
    if location.startswith('s3://'):
        return _check_object_store(location)
    folder = Path(location)
    fix_folder = f'create {folder} writable by this user, or choose another --storage'
    probe = folder / f'.vd-check-{uuid.uuid4().hex}'
    try:
        folder.mkdir(parents=True, exist_ok=True)
        data = os.urandom(PROBE_BYTES)
        with open(probe, 'wb') as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if probe.read_bytes() != data:
            return Check(name, False, f'{folder} gave back other bytes than written',
                         'check the disk and its file system')
    except OSError as error:
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            return Check(name, False, f'{folder} is full ({error.strerror})',
                         'free space on that disk, or choose another --storage')
        return Check(name, False, f'cannot write in {folder}: {error.strerror}', fix_folder)
    finally:
        try:
            probe.unlink(missing_ok=True)
        except OSError:
            pass
    free = shutil.disk_usage(folder).free
    if free < min_free_mb * 1024 * 1024:
        return Check(name, False, f'{folder} has {free // 2 ** 20} MiB free, under '
                                  f'--min-free-mb {min_free_mb}',
                     'free space on that disk, or point --storage at a larger one')
    return Check(name, True, f'{folder} writable, {free / 2 ** 30:.1f} GiB free')


def _check_object_store(location: str) -> Check:
    """Ask an object store (issue 27) whether it can be used: its own ``check()`` says why not."""
    try:
        open_store(location).check()
    except (StorageError, ValueError) as error:
        return Check('storage', False, f'{location}: {error}',
                     'check the bucket, the endpoint and the credentials (AWS_* variables)')
    return Check('storage', True, f'{location} answers and takes objects')


def check_port(host: str, port: int) -> Check:
    """Check that nothing listens on ``host``:``port`` (bound the way uvicorn binds)."""
    name = 'port'
    try:
        family, kind, protocol, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    except (socket.gaierror, UnicodeError, OverflowError) as error:
        return Check(name, False, f'--host {host} --port {port}: {error}',
                     'give an address of this machine, or 0.0.0.0 for every interface')
    try:
        with socket.socket(family, kind, protocol) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            return Check(name, False, f'port {port} on {host} is taken (another server, or an '
                                      'earlier one still running)',
                         'stop that process, or choose another --port')
        if error.errno == errno.EACCES:
            return Check(name, False, f'port {port} needs privileges this user lacks',
                         'use a port from 1024, or put a proxy in front')
        return Check(name, False, f'cannot listen on {host}:{port}: {error.strerror}',
                     'give an address of this machine as --host (0.0.0.0: every interface)')
    return Check(name, True, f'{host}:{port} is free')


def check_tls(cert: Optional[str], key: Optional[str]) -> Check:
    """Check that the certificate and key are readable and belong together."""
    name = 'tls'
    if not cert and not key:
        return Check(name, True, 'not used: plain http (--tls-cert/--tls-key, or a TLS proxy)')
    if not (cert and key):
        return Check(name, False, '--tls-cert and --tls-key go together', 'give both, or neither')
    for path in (cert, key):
        try:
            with open(path, 'rb') as handle:
                handle.read(1)
        except OSError as error:
            return Check(name, False, f'cannot read {path}: {error.strerror}',
                         'check the path, and that this user may read it')
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cert, key, password=lambda: b'')  # never a prompt
    except ssl.SSLError as error:
        return Check(name, False, f'{cert} and {key} are not a certificate and its key '
                                  f'({error.reason or error})',
                     'give the PEM certificate and its unencrypted private key')
    return Check(name, True, f'{cert} and its key {key} load')


def check_redis(url: str) -> Check:
    """Check that Redis answers a PING, when one is named."""
    name = 'redis'
    if not url:
        return Check(name, True, "not used: the read cache is shared by this instance's "
                                 'workers (--redis redis://host:6379/0 shares it between '
                                 'instances)')
    shown = shown_url(url)
    try:
        store = RedisStore(url)
    except ValueError as error:
        return Check(name, False, f'{shown}: {error}',
                     'redis://host:6379/0, rediss://host:6379/0 or unix:///path/redis.sock')
    try:
        store.ping()
    except CacheUnavailable as error:
        return Check(name, False, f'cannot reach {shown}: {error.__cause__ or error}',
                     'start Redis (apt-get install redis-server), or correct --redis')
    finally:
        store.close()
    return Check(name, True, f'{shown} answers')
