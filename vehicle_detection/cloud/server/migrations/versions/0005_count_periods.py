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
One count period per device, camera and start; the keys each device counted per day.

Before this revision a second record of a period (a new record id) was
stored beside the first and summed with it. Where a database holds such
duplicates, the first received (lowest id) stays counted and the others are
moved, rows and all, to ``count_duplicates`` (nothing is deleted for good; a
downgrade puts them back). Then the unique index is created.
"""

from datetime import datetime, timezone
from typing import Dict, List

from alembic import op
import sqlalchemy as sa

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

CHUNK = 500  # duplicate records moved per statement

# The tables as 0004 left them (typed: SQLite hands back a time as text otherwise).
records = sa.table('count_records', sa.column('id', sa.Integer()),
                   sa.column('record_id', sa.String()), sa.column('device_id', sa.Integer()),
                   sa.column('camera_id', sa.String()),
                   sa.column('period_start', sa.BigInteger()),
                   sa.column('period_s', sa.Integer()), sa.column('received_at', sa.DateTime()))
rows = sa.table('traffic_counts', sa.column('record_id', sa.Integer()),
                sa.column('device_id', sa.Integer()), sa.column('line', sa.String()),
                sa.column('direction', sa.String()), sa.column('class_name', sa.String()),
                sa.column('period_start', sa.BigInteger()), sa.column('count', sa.Integer()))


def upgrade() -> None:
    """Set duplicate periods aside, make periods unique, and index the keys per day."""
    duplicates = op.create_table(
        'count_duplicates',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('record_id', sa.String(36), nullable=False),
        sa.Column('device_id', sa.Integer(), sa.ForeignKey('devices.id'), nullable=False),
        sa.Column('camera_id', sa.String(64), nullable=False),
        sa.Column('period_start', sa.BigInteger(), nullable=False),
        sa.Column('period_s', sa.Integer(), nullable=False),
        sa.Column('received_at', sa.DateTime(), nullable=False),
        sa.Column('counts', sa.JSON(), nullable=False),
        sa.Column('kept_record_id', sa.String(36), nullable=False),
        sa.Column('set_aside_at', sa.DateTime(), nullable=False))
    _set_duplicates_aside(duplicates)
    op.create_index('uq_count_records_period', 'count_records',
                    ['device_id', 'camera_id', 'period_start'], unique=True)
    op.create_table(
        'count_keys',
        sa.Column('device_id', sa.Integer(), sa.ForeignKey('devices.id'), primary_key=True),
        sa.Column('day', sa.Integer(), primary_key=True),
        sa.Column('line', sa.String(64), primary_key=True),
        sa.Column('direction', sa.String(64), primary_key=True),
        sa.Column('class_name', sa.String(64), primary_key=True))
    op.execute('INSERT INTO count_keys (device_id, day, line, direction, class_name) '
               'SELECT DISTINCT device_id, period_start / 86400, line, direction, class_name '
               'FROM traffic_counts')


def _set_duplicates_aside(duplicates: sa.Table) -> None:
    """Move every record of a period but the first received to ``count_duplicates``."""
    connection = op.get_bind()
    first = sa.select(records.c.device_id, records.c.camera_id, records.c.period_start,
                      sa.func.min(records.c.id).label('kept')).group_by(
        records.c.device_id, records.c.camera_id, records.c.period_start).having(
        sa.func.count() > 1).subquery()
    kept = records.alias('kept')
    moved = connection.execute(
        sa.select(records, kept.c.record_id.label('kept_record_id'))
        .join(first, sa.and_(records.c.device_id == first.c.device_id,
                             records.c.camera_id == first.c.camera_id,
                             records.c.period_start == first.c.period_start,
                             records.c.id != first.c.kept))
        .join(kept, kept.c.id == first.c.kept)
        .order_by(records.c.id)).all()
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    for at in range(0, len(moved), CHUNK):
        chunk = moved[at:at + CHUNK]
        ids = [record.id for record in chunk]
        counts: Dict[int, List[list]] = {record_id: [] for record_id in ids}
        for row in connection.execute(sa.select(
                rows.c.record_id, rows.c.line, rows.c.direction, rows.c.class_name,
                rows.c.count).where(rows.c.record_id.in_(ids)).order_by(
                rows.c.record_id, rows.c.line, rows.c.direction, rows.c.class_name)):
            counts[row.record_id].append([row.line, row.direction, row.class_name, row.count])
        connection.execute(duplicates.insert(), [
            {'record_id': r.record_id, 'device_id': r.device_id, 'camera_id': r.camera_id,
             'period_start': r.period_start, 'period_s': r.period_s,
             'received_at': r.received_at, 'counts': counts[r.id],
             'kept_record_id': r.kept_record_id, 'set_aside_at': now} for r in chunk])
        connection.execute(rows.delete().where(rows.c.record_id.in_(ids)))
        connection.execute(records.delete().where(records.c.id.in_(ids)))


def downgrade() -> None:
    """Drop the key index and the unique periods; put set-aside records back."""
    op.drop_table('count_keys')
    op.drop_index('uq_count_records_period', 'count_records')
    connection = op.get_bind()
    duplicates = sa.table('count_duplicates', sa.column('record_id', sa.String()),
                          sa.column('device_id', sa.Integer()),
                          sa.column('camera_id', sa.String()),
                          sa.column('period_start', sa.BigInteger()),
                          sa.column('period_s', sa.Integer()),
                          sa.column('received_at', sa.DateTime()),
                          sa.column('counts', sa.JSON()))
    for duplicate in connection.execute(sa.select(duplicates)).all():
        restored = connection.execute(records.insert().values(
            record_id=duplicate.record_id, device_id=duplicate.device_id,
            camera_id=duplicate.camera_id, period_start=duplicate.period_start,
            period_s=duplicate.period_s, received_at=duplicate.received_at)
            .returning(records.c.id)).scalar_one()
        if duplicate.counts:
            connection.execute(rows.insert(), [
                {'record_id': restored, 'device_id': duplicate.device_id, 'line': line,
                 'direction': direction, 'class_name': class_name,
                 'period_start': duplicate.period_start, 'count': count}
                for line, direction, class_name, count in duplicate.counts])
    op.drop_table('count_duplicates')
