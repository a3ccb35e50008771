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

"""The options of ``vehicle-detection-cloud``'s commands, and the types that check them."""

from __future__ import annotations

import argparse
import ipaddress
import math
import os

from vehicle_detection.cloud.server.protocol import DEFAULT_MIN_BODY_RATE, DEFAULT_READ_TIMEOUT_S
from vehicle_detection.cloud.server.retention import RetentionPolicy
from vehicle_detection.cloud.server.settings import DEFAULT_DB, DEFAULT_STORAGE
from vehicle_detection.cloud.server.storage import DEFAULT_MAX_PIXELS


def common_options() -> argparse.ArgumentParser:
    """Return the options every command has: the database and the snapshot storage."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument('--db', default=os.environ.get('VD_CLOUD_DB', DEFAULT_DB),
                        help=f'database URL (default {DEFAULT_DB}; '
                             f'postgresql://user:pass@host/db for a fleet)')
    common.add_argument('--storage', default=os.environ.get('VD_CLOUD_STORAGE', DEFAULT_STORAGE),
                        help=f'snapshot folder (default {DEFAULT_STORAGE}), or '
                             f's3://bucket/prefix for S3-compatible object storage (endpoint '
                             f'and credentials from AWS_ENDPOINT_URL_S3, AWS_ACCESS_KEY_ID, '
                             f'AWS_SECRET_ACCESS_KEY, AWS_REGION or AWS_PROFILE)')
    return common


def retention_options() -> argparse.ArgumentParser:
    """Return the ``--keep-*-days`` options of ``serve`` and ``prune``."""
    keep = argparse.ArgumentParser(add_help=False)
    defaults = RetentionPolicy()
    kinds = (('pictures', defaults.pictures_days, 'snapshots (the alerts stay)'),
             ('alerts', defaults.alerts_days, 'alerts, with their snapshots'),
             ('counts', defaults.counts_days, 'traffic count records'))
    for kind, default, what in kinds:
        keep.add_argument(f'--keep-{kind}-days', type=days, default=default, metavar='DAYS',
                          help=f'delete {what} older than this (0: keep forever; default '
                               f'{default:g})')
    return keep


def add_serve_options(run: argparse.ArgumentParser) -> None:
    """Add the options of ``serve`` (and ``check``, which takes the same)."""
    run.add_argument('--host', default='127.0.0.1', help='address to listen on '
                     '(0.0.0.0 for every interface)')
    run.add_argument('--port', type=int, default=8000)
    run.add_argument('--workers', type=int, default=1, help='worker processes (production)')
    run.add_argument('--debug', action='store_true', help='auto-reload and verbose logs')
    run.add_argument('--max-body-mb', type=int, default=5, help='largest request body')
    run.add_argument('--max-image-pixels', type=int, default=DEFAULT_MAX_PIXELS,
                     help='largest snapshot, in pixels (width x height); larger are refused')
    run.add_argument('--public-dashboard', action='store_true',
                     help='reads need no login (only on a trusted network)')
    run.add_argument('--tls-cert', help='serve https with this certificate (PEM)')
    run.add_argument('--tls-key', help='private key of --tls-cert (PEM)')
    run.add_argument('--read-timeout', type=float, default=DEFAULT_READ_TIMEOUT_S,
                     help='seconds a client has to send its request headers, the '
                          'longest pause within a body, and the grace before --min-body-rate')
    run.add_argument('--min-body-rate', type=float, default=DEFAULT_MIN_BODY_RATE / 1024,
                     metavar='KIB_PER_S',
                     help='a request body slower than this on average is cut off '
                          '(default %(default)g KiB/s: 64 kbit/s)')
    run.add_argument('--forwarded-allow-ips', default='', metavar='ADDRESSES',
                     help='comma-separated addresses (or networks, or *) of the reverse '
                          'proxies whose X-Forwarded-For/-Proto are trusted (default: none, '
                          'the headers are ignored)')
    run.add_argument('--rate-limit', type=float, default=50.0,
                     help='requests per second per device (0: no limit)')
    run.add_argument('--retention-interval', type=seconds, default=3600.0, metavar='SECONDS',
                     help='seconds between retention passes (one worker at a time across '
                          'workers and instances; 0: none, run `prune` instead)')
    run.add_argument('--redis', default=os.environ.get('VD_CLOUD_REDIS', ''), metavar='URL',
                     help="Redis (redis://host:6379/0) holding the dashboard's read cache for "
                          "every instance (default: shared by this instance's workers only)")
    run.add_argument('--cache-fresh', type=float, default=2.0, metavar='SECONDS',
                     help='a cached read is answered without asking the database whether '
                          'the data changed for this long (0: ask every time)')
    run.add_argument('--cache-ttl', type=float, default=10.0, metavar='SECONDS',
                     help='the longest a cached read is kept, even when the data did not '
                          'change (0: no read cache)')
    run.add_argument('--min-free-mb', type=int, default=1024,
                     help='the check fails (and serve does not start) with less free space '
                          'for snapshots')


def days(text: str) -> float:
    """Parse a number of days: 0 (forever) or more."""
    return _not_negative(text, 'days', '0 (forever)')


def seconds(text: str) -> float:
    """Parse a number of seconds: 0 (never) or more."""
    return _not_negative(text, 'seconds', '0 (never)')


def _not_negative(text: str, unit: str, zero: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'not a number of {unit}: {text!r}') from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f'{unit} must be {zero} or more, not {text}')
    return value


def not_addresses(proxies: str) -> str:
    """Return the first item of a comma-separated list that is no address, network or *."""
    for item in (part.strip() for part in proxies.split(',') if part.strip()):
        if item == '*':
            continue
        try:
            ipaddress.ip_network(item)  # as uvicorn reads it: host bits zero
        except ValueError:
            return item
    return ''
