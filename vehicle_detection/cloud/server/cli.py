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

"""``vehicle-detection-cloud``: serve, and the command line of the account commands."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
import resource
import shutil
import sys
from typing import List, Optional

from sqlalchemy.exc import OperationalError

from vehicle_detection.allocator import relaunch_with_jemalloc
from vehicle_detection.cloud.server.admin import (
    add_device, add_token, add_user, change_password, list_devices, list_users, migrate,
    prepare, remove_user, revoke_device, revoke_token)
from vehicle_detection.cloud.server.checks import run_checks
from vehicle_detection.cloud.server.cli_options import (
    add_serve_options, common_options, not_addresses, retention_options)
from vehicle_detection.cloud.server.data_version import track_writes
from vehicle_detection.cloud.server.engine import make_engine
from vehicle_detection.cloud.server.monitor_figures import MASTER_PID_ENV
from vehicle_detection.cloud.server.operators import ROLES
from vehicle_detection.cloud.server.protocol import (
    DeadlineHttpProtocol, MIN_BODY_RATE_ENV, READ_TIMEOUT_ENV)
from vehicle_detection.cloud.server.retention import RetentionPolicy
from vehicle_detection.cloud.server.retention_schedule import run_once
from vehicle_detection.cloud.server.runtime import new_runtime_folder
from vehicle_detection.cloud.server.schema import SchemaBehind
from vehicle_detection.cloud.server.settings import ServerSettings
from vehicle_detection.cloud.server.storage import ImageStore, LocalImageStore, StorageError
from vehicle_detection.cloud.server.stores import open_store

GRACEFUL_SHUTDOWN_S = 5
WORKER_PING_S = 60  # seconds a worker has to answer its master's health check
METRICS_PREFIX = 'vd-cloud-metrics-'  # + pid + '-': a folder per instance, local


def check(args: argparse.Namespace) -> int:
    """Run the start-up checks of ``serve`` with these options: 0 when all pass, else 1."""
    results = run_checks(args)
    for result in results:
        print(result.line(), flush=True)
    return 0 if all(result.ok for result in results) else 1


def serve(args: argparse.Namespace) -> int:
    """Run the API and dashboard under uvicorn (after the checks of ``check``)."""
    wrong = not_addresses(args.forwarded_allow_ips)
    if wrong:
        print(f'error: --forwarded-allow-ips: not an IP address or network: {wrong}',
              file=sys.stderr)
        return 2
    failed = [result for result in run_checks(args) if not result.ok]
    for result in failed:
        print(f'error: {result.line()}', file=sys.stderr)
    if failed:
        return 2
    prepare(args)
    settings = ServerSettings(db=args.db, storage=args.storage,
                              max_body_bytes=args.max_body_mb * 1024 * 1024,
                              rate_limit=args.rate_limit, rate_burst=2 * args.rate_limit,
                              max_image_pixels=args.max_image_pixels,
                              public_dashboard=args.public_dashboard, tls=bool(args.tls_cert),
                              workers=1 if args.debug else args.workers,
                              keep_pictures_days=args.keep_pictures_days,
                              keep_alerts_days=args.keep_alerts_days,
                              keep_counts_days=args.keep_counts_days,
                              retention_interval_s=args.retention_interval,
                              cache_fresh_s=args.cache_fresh, cache_ttl_s=args.cache_ttl,
                              redis=args.redis, min_free_mb=args.min_free_mb,
                              # Workers share the read cache in a file of this instance.
                              runtime_dir=str(new_runtime_folder())
                              if args.workers > 1 and not args.debug else '')
    store = checked_store(args.storage)
    if store is None:
        return 2
    if isinstance(store, LocalImageStore):
        # Nothing is uploading before this server listens: every temporary file is a
        # left-over of a killed one (an object store has none: a PUT is whole or absent).
        removed = store.remove_stale_temporaries(older_than_s=0.0)
        if removed:
            print(f'removed {removed} temporary files left by an interrupted upload',
                  flush=True)
    os.environ.update(settings.to_env())
    os.environ[MASTER_PID_ENV] = str(os.getpid())  # the monitor's processes: this one's tree
    os.environ[READ_TIMEOUT_ENV] = str(args.read_timeout)
    os.environ[MIN_BODY_RATE_ENV] = str(args.min_body_rate * 1024)
    _raise_file_limit()
    _remove_legacy_state(args.storage)
    metrics_dir = None
    if args.workers > 1 and not args.debug:
        # Each worker counts in files there; a scrape adds them up (metrics.py). Local to
        # this host and this instance (never the storage, which other instances share).
        metrics_dir = new_runtime_folder(prefix=METRICS_PREFIX)
        os.environ['PROMETHEUS_MULTIPROC_DIR'] = str(metrics_dir)
    scheme = 'https' if args.tls_cert else 'http'
    print(f'dashboard: {scheme}://{args.host}:{args.port}/  API docs: '
          f'{scheme}://{args.host}:{args.port}/docs  database: {args.db}  snapshots: '
          f'{args.storage}' + ('  (public: no login)' if args.public_dashboard else ''),
          flush=True)
    print(f'retention: {settings.retention().describe()}' + (
        f', a pass every {args.retention_interval:g} s' if args.retention_interval else
        ', no scheduled pass (--retention-interval 0)'), flush=True)
    try:
        _run_uvicorn(args)
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
        if settings.runtime_dir:
            shutil.rmtree(settings.runtime_dir, ignore_errors=True)
    return 0


def checked_store(location: str) -> Optional[ImageStore]:
    """Return the store of ``--storage`` once it answers and is writable; None after an error."""
    try:
        store = open_store(location)
        store.check()
    except (StorageError, OSError) as error:
        print(f'error: --storage {location}: {error}', file=sys.stderr)
        return None
    return store


def prune(args: argparse.Namespace) -> int:
    """Apply the retention policy once (``--dry-run``: say what would go)."""
    prepare(args)
    policy = retention_policy(args)
    store = open_store(args.storage) if policy.active else None
    if store is None:
        print('retention keeps everything (every --keep-*-days is 0): nothing to do')
        return 0
    engine = make_engine(args.db)
    track_writes(engine)  # what it deletes leaves the servers' cached reads at once
    try:
        freed = run_once(engine, store, policy, dry_run=args.dry_run)
    except StorageError as error:
        print(f'error: --storage {args.storage}: {error}', file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    if freed is None:
        print('error: another retention pass is running (a server is pruning): try again '
              'later', file=sys.stderr)
        return 1
    verb = 'would delete' if args.dry_run else 'deleted'
    print(f'retention ({policy.describe()}) {verb} {freed.describe()}')
    return 0


def retention_policy(args: argparse.Namespace) -> RetentionPolicy:
    """Return the policy of the ``--keep-*-days`` options."""
    return RetentionPolicy(args.keep_pictures_days, args.keep_alerts_days,
                           args.keep_counts_days)


def _remove_legacy_state(storage: str) -> None:
    """Remove what servers before schema 0009 kept beside the snapshots (metrics, rate limits)."""
    root = Path(storage)
    if not root.is_dir():
        return
    shutil.rmtree(root / '.metrics', ignore_errors=True)
    for leftover in (*root.glob('.ratelimit.db*'), *root.glob('.ratelimit.failures*')):
        leftover.unlink(missing_ok=True)


def _raise_file_limit() -> None:
    """Allow as many open sockets as the system lets this process have."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY
                                                        else 65536, hard))
        except (ValueError, OSError):
            pass  # keep the soft limit: the read deadlines still free sockets


def _run_uvicorn(args: argparse.Namespace) -> None:
    import uvicorn

    uvicorn.run('vehicle_detection.cloud.server.app:app_from_env', factory=True,
                host=args.host, port=args.port, workers=None if args.debug else args.workers,
                reload=args.debug, log_level='debug' if args.debug else 'warning',
                reload_dirs=[str(Path(__file__).resolve().parents[2])] if args.debug else None,
                access_log=args.debug, ssl_certfile=args.tls_cert, ssl_keyfile=args.tls_key,
                http=DeadlineHttpProtocol,
                # X-Forwarded-For/-Proto only from the proxies named: from anyone else
                # (loopback included) a forged header would pick the logged address
                # and the login limit's bucket.
                proxy_headers=bool(args.forwarded_allow_ips),
                forwarded_allow_ips=args.forwarded_allow_ips or None,
                # A client that keeps its connection open cannot hold up a stop.
                timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
                # The master replaces a worker that does not answer its ping in time: on a
                # busy machine a worker still importing the app took over 5 s (uvicorn's
                # default), was killed, and its successor too (the server took 300 s to
                # answer at a load average of 25). A worker that hangs is still replaced.
                timeout_worker_healthcheck=WORKER_PING_S)


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser."""
    common, keep = common_options(), retention_options()
    parser = argparse.ArgumentParser(prog='vehicle-detection-cloud', description=__doc__)
    commands = parser.add_subparsers(dest='command', required=True)
    run = commands.add_parser('serve', parents=[common, keep], help='run the API and dashboard')
    add_serve_options(run)
    run.set_defaults(handler=serve)
    commands.add_parser('check', parents=[run], add_help=False,
                        help="run serve's start-up checks with these options (database, "
                             'storage, port, TLS, Redis): one line each, exit 1 on a '
                             'failure').set_defaults(handler=check)
    cut = commands.add_parser('prune', parents=[common, keep],
                              help='apply the retention policy once')
    cut.add_argument('--dry-run', action='store_true',
                     help='count what would be deleted, delete nothing')
    cut.set_defaults(handler=prune)
    commands.add_parser('migrate', parents=[common],
                        help='migrate the database schema').set_defaults(handler=migrate)
    add = commands.add_parser('add-device', parents=[common], help='register a device')
    add.add_argument('name')
    add.set_defaults(handler=add_device)
    commands.add_parser('list-devices', parents=[common],
                        help='list devices').set_defaults(handler=list_devices)
    revoke = commands.add_parser('revoke-device', parents=[common], help="revoke a device's key")
    revoke.add_argument('name')
    revoke.set_defaults(handler=revoke_device)
    user = commands.add_parser('add-user', parents=[common],
                               help='add an operator who logs in to the dashboard')
    user.add_argument('name')
    user.add_argument('--role', choices=ROLES, default='viewer')
    user.add_argument('--password-stdin', action='store_true',
                      help='read the password from the first line of stdin (scripts)')
    user.set_defaults(handler=add_user)
    password = commands.add_parser('set-password', parents=[common],
                                   help="change a user's password (ends their sessions)")
    password.add_argument('name')
    password.add_argument('--password-stdin', action='store_true',
                          help='read the password from the first line of stdin (scripts)')
    password.set_defaults(handler=change_password)
    unuser = commands.add_parser('remove-user', parents=[common],
                                 help='remove a user (ends their sessions)')
    unuser.add_argument('name')
    unuser.set_defaults(handler=remove_user)
    commands.add_parser('list-users', parents=[common], help='list users: name, role, '
                        'created, active sessions').set_defaults(handler=list_users)
    token = commands.add_parser('add-token', parents=[common],
                                help='add a read token for scripts')
    token.add_argument('name')
    token.set_defaults(handler=add_token)
    untoken = commands.add_parser('revoke-token', parents=[common], help='revoke a read token')
    untoken.add_argument('name')
    untoken.set_defaults(handler=revoke_token)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of ``vehicle-detection-cloud``."""
    args = build_parser().parse_args(argv)
    if argv is None and args.handler is serve:  # the program, not a call in a test
        relaunch_with_jemalloc()
    try:
        return args.handler(args)
    except SchemaBehind as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    except OperationalError as error:
        print(f'error: cannot use the database {args.db}: {error.orig}', file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main())
