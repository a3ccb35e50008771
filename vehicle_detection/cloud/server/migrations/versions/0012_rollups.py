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
Rollups: alerts per hour, device, class and kind; counts and coverage per bucket.

Each apart for replays (recorded images) and live traffic, as the rows are
(0007). The server keeps them as rows arrive (``rollups.py``); this revision
creates them and fills them from the rows already stored, so that an
upgraded server answers as before. Also indexes what the dashboard's other reads need: the
count rows and records by period start (1-minute buckets still sum the rows,
of one device or of the fleet), and one device's or one kind's alerts by id
(newest first).
"""

from alembic import op
import sqlalchemy as sa

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

COVERAGE_BUCKETS = (900, 3600, 86400)

alerts = sa.table('alerts', sa.column('device_id', sa.Integer()),
                  sa.column('detected_at', sa.DateTime()), sa.column('class_name', sa.String()),
                  sa.column('kind', sa.String()), sa.column('replay', sa.Boolean()))
records = sa.table('count_records', sa.column('device_id', sa.Integer()),
                   sa.column('period_start', sa.BigInteger()),
                   sa.column('period_s', sa.Integer()), sa.column('replay', sa.Boolean()))
rows = sa.table('traffic_counts', sa.column('device_id', sa.Integer()),
                sa.column('line', sa.String()), sa.column('direction', sa.String()),
                sa.column('class_name', sa.String()),
                sa.column('period_start', sa.BigInteger()), sa.column('count', sa.Integer()),
                sa.column('replay', sa.Boolean()))


def upgrade() -> None:
    """Create the rollup tables and fill them from the stored rows."""
    alert_hours = op.create_table(
        'alert_hours',
        sa.Column('hour', sa.BigInteger(), primary_key=True),
        sa.Column('device_id', sa.Integer(), sa.ForeignKey('devices.id'), primary_key=True),
        sa.Column('class_name', sa.String(64), primary_key=True),
        sa.Column('kind', sa.String(16), primary_key=True),
        sa.Column('replay', sa.Boolean(), primary_key=True),
        sa.Column('alerts', sa.Integer(), nullable=False))
    op.create_index('ix_alert_hours_device_hour', 'alert_hours', ['device_id', 'hour'])
    quarters = op.create_table(
        'count_quarters',
        sa.Column('bucket_start', sa.BigInteger(), primary_key=True),
        sa.Column('device_id', sa.Integer(), sa.ForeignKey('devices.id'), primary_key=True),
        sa.Column('line', sa.String(64), primary_key=True),
        sa.Column('direction', sa.String(64), primary_key=True),
        sa.Column('class_name', sa.String(64), primary_key=True),
        sa.Column('replay', sa.Boolean(), primary_key=True),
        sa.Column('vehicles', sa.BigInteger(), nullable=False),
        sa.Column('rows', sa.Integer(), nullable=False))
    op.create_index('ix_count_quarters_device_start', 'count_quarters',
                    ['device_id', 'bucket_start'])
    coverage = op.create_table(
        'count_coverage',
        sa.Column('bucket_s', sa.Integer(), primary_key=True),
        sa.Column('bucket_start', sa.BigInteger(), primary_key=True),
        sa.Column('device_id', sa.Integer(), sa.ForeignKey('devices.id'), primary_key=True),
        sa.Column('replay', sa.Boolean(), primary_key=True),
        sa.Column('seconds', sa.BigInteger(), nullable=False))
    op.create_index('ix_count_coverage_device', 'count_coverage',
                    ['device_id', 'bucket_s', 'bucket_start'])
    # Reads of 1-minute buckets sum the rows of a window, of one device or of the fleet.
    op.drop_index('ix_traffic_counts_device_line_start', 'traffic_counts')
    op.create_index('ix_traffic_counts_device_start', 'traffic_counts',
                    ['device_id', 'period_start'])
    op.create_index('ix_traffic_counts_start', 'traffic_counts', ['period_start'])
    op.create_index('ix_count_records_start', 'count_records', ['period_start'])
    # One device's alerts, newest first, without sorting all of them (the dashboard's filter);
    # the same for one kind (0010's index on kind alone read all alerts of the kind).
    op.create_index('ix_alerts_device_id', 'alerts', ['device_id', 'id'])
    op.drop_index('ix_alerts_kind', 'alerts')
    op.create_index('ix_alerts_kind_id', 'alerts', ['kind', 'id'])
    _fill(alert_hours, quarters, coverage)


def _fill(alert_hours: sa.Table, quarters: sa.Table, coverage: sa.Table) -> None:
    """Sum the stored alerts, count rows and count records into the rollups."""
    if op.get_bind().dialect.name == 'postgresql':
        hour = sa.cast(sa.extract('epoch', sa.func.date_trunc('hour', alerts.c.detected_at)),
                       sa.BigInteger)
    else:  # strftime('%s') rounds fractions of a second: cut to the hour first
        hour = sa.cast(sa.func.strftime('%s', sa.func.strftime('%Y-%m-%d %H:00:00',
                                                               alerts.c.detected_at)),
                       sa.BigInteger)
    alert_keys = (alerts.c.device_id, alerts.c.class_name, alerts.c.kind, alerts.c.replay)
    op.execute(alert_hours.insert().from_select(
        ['hour', 'device_id', 'class_name', 'kind', 'replay', 'alerts'],
        sa.select(hour, *alert_keys, sa.func.count()).group_by(hour, *alert_keys)))
    quarter = rows.c.period_start - rows.c.period_start % 900
    row_keys = (rows.c.device_id, rows.c.line, rows.c.direction, rows.c.class_name,
                rows.c.replay)
    op.execute(quarters.insert().from_select(
        ['bucket_start', 'device_id', 'line', 'direction', 'class_name', 'replay', 'vehicles',
         'rows'],
        sa.select(quarter, *row_keys, sa.func.sum(rows.c.count), sa.func.count())
        .group_by(quarter, *row_keys)))
    for size in COVERAGE_BUCKETS:
        start = records.c.period_start
        bucket = start - start % size
        to_end = size - start % size
        covered = sa.case((records.c.period_s < to_end, records.c.period_s), else_=to_end)
        op.execute(coverage.insert().from_select(
            ['bucket_s', 'bucket_start', 'device_id', 'replay', 'seconds'],
            sa.select(sa.literal(size, sa.Integer), bucket, records.c.device_id,
                      records.c.replay, sa.func.sum(covered))
            .group_by(bucket, records.c.device_id, records.c.replay)))


def downgrade() -> None:
    """Drop the rollups and the period-start indexes."""
    op.drop_index('ix_alerts_kind_id', 'alerts')
    op.create_index('ix_alerts_kind', 'alerts', ['kind'])
    op.drop_index('ix_alerts_device_id', 'alerts')
    op.drop_index('ix_count_records_start', 'count_records')
    op.drop_index('ix_traffic_counts_start', 'traffic_counts')
    op.drop_index('ix_traffic_counts_device_start', 'traffic_counts')
    op.create_index('ix_traffic_counts_device_line_start', 'traffic_counts',
                    ['device_id', 'line', 'period_start'])
    for table, index in (('count_coverage', 'ix_count_coverage_device'),
                         ('count_quarters', 'ix_count_quarters_device_start'),
                         ('alert_hours', 'ix_alert_hours_device_hour')):
        op.drop_index(index, table)
        op.drop_table(table)
