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
Field validation: record a window, count it by hand, report manual against system.

``validate record`` (on the box, while the system runs) writes the camera's
frames and the system's counts as one bag; ``validate count`` steps
through its frames and marks each vehicle crossing the counting line, per
direction and class; ``validate report`` compares the two per 15-minute
interval, direction and class: manual, system, error %, and accepts or
rejects each direction's interval at ``--limit`` percent (default 5, as
VDOT 26-R53 and ASTM E2532 accept a counter). Exit status: 0 accepted, 1
rejected (or nothing recorded), 2 bad input.
"""

from __future__ import annotations

import argparse
from pathlib import Path
import sys

from vehicle_detection.core.validation.manual import CountError, load_count
from vehicle_detection.core.validation.recording import (
    count_statuses, frame_times, image_topic, RecordingError, system_counts)
from vehicle_detection.core.validation.report import (
    build_report, DEFAULT_INTERVAL_S, DEFAULT_LIMIT_PCT, report_csv, report_json, report_table)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``vehicle-detection validate``."""
    from vehicle_detection.cli import validate_count, validate_record
    sub = parser.add_subparsers(dest='validate_command', required=True, metavar='ACTION')
    validate_record.add_arguments(sub.add_parser(
        'record', help="record the camera's frames and the system's counts as a bag",
        description=validate_record.__doc__))
    validate_count.add_arguments(sub.add_parser(
        'count', help='count the recorded window by hand, frame by frame',
        description=validate_count.__doc__))
    report = sub.add_parser('report', help='manual against system counts, accept or reject',
                            description=__doc__)
    report.add_argument('bag', help='the recording (validate record)')
    report.add_argument('manual', help='the manual count (validate count --out)')
    report.add_argument('--limit', type=float, default=DEFAULT_LIMIT_PCT, metavar='PERCENT',
                        help='largest error accepted per direction and interval '
                             '(default %(default)g)')
    report.add_argument('--interval', type=int, default=DEFAULT_INTERVAL_S, metavar='SECONDS',
                        help='interval length, aligned to the clock (default %(default)d)')
    report.add_argument('--per-class', action='store_true',
                        help='judge every class row too, not only the totals per direction')
    report.add_argument('--csv', default='', metavar='FILE', help='also write the rows as CSV')
    report.add_argument('--json', default='', metavar='FILE',
                        help='also write the report as JSON')


def run(args: argparse.Namespace) -> int:
    """Dispatch to the action; bad input is an error line and exit status 2."""
    from vehicle_detection.cli import validate_count, validate_record
    try:
        if args.validate_command == 'record':
            return validate_record.record(args)
        if args.validate_command == 'count':
            return validate_count.run(args)
        return report(args)
    except (CountError, RecordingError, ValueError, OSError) as error:
        print(f'error: {error}', file=sys.stderr)
        return 2


def report(args: argparse.Namespace) -> int:
    """Print the table (and write CSV/JSON); 0 when accepted, 1 when rejected."""
    if not (0 <= args.limit <= 100) or not 60 <= args.interval <= 86400:
        raise ValueError('--limit is a percentage in [0, 100], --interval seconds in '
                         '[60, 86400]')
    topic, _kind = image_topic(args.bag)
    stamps = [stamp for _time, stamp in frame_times(args.bag, topic)]
    if not stamps:
        raise RecordingError(f'{args.bag}: no frame on {topic}')
    statuses = count_statuses(args.bag)
    if not statuses:
        raise RecordingError(f"{args.bag} holds no status of the system's counts: it cannot "
                             'be judged')
    manual = load_count(args.manual, stamps)
    system = system_counts(statuses)
    result = build_report(manual, system.crossings, args.limit, args.interval, args.per_class,
                          system.unplaced, system.unplaced_before)
    print(report_table(result), end='')
    for path, text in ((args.csv, report_csv), (args.json, report_json)):
        if path:
            Path(path).write_text(text(result), encoding='utf-8')
    return 0 if result.accepted else 1
