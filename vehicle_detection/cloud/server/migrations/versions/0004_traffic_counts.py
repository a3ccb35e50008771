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

"""Traffic counts (count records and their rows), and stopped-vehicle alerts."""

from alembic import op
import sqlalchemy as sa

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create count_records and traffic_counts; give alerts a kind and a zone."""
    op.create_table(
        'count_records',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('record_id', sa.String(36), nullable=False, unique=True),
        sa.Column('device_id', sa.Integer(), sa.ForeignKey('devices.id'), nullable=False),
        sa.Column('camera_id', sa.String(64), nullable=False),
        sa.Column('period_start', sa.BigInteger(), nullable=False),
        sa.Column('period_s', sa.Integer(), nullable=False),
        sa.Column('received_at', sa.DateTime(), nullable=False))
    op.create_index('ix_count_records_device_start', 'count_records',
                    ['device_id', 'period_start'])
    op.create_table(
        'traffic_counts',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('record_id', sa.Integer(),
                  sa.ForeignKey('count_records.id', ondelete='CASCADE'), nullable=False),
        sa.Column('device_id', sa.Integer(), sa.ForeignKey('devices.id'), nullable=False),
        sa.Column('line', sa.String(64), nullable=False),
        sa.Column('direction', sa.String(64), nullable=False),
        sa.Column('class_name', sa.String(64), nullable=False),
        sa.Column('period_start', sa.BigInteger(), nullable=False),
        sa.Column('count', sa.Integer(), nullable=False))
    op.create_index('ix_traffic_counts_device_line_start', 'traffic_counts',
                    ['device_id', 'line', 'period_start'])
    with op.batch_alter_table('alerts') as alerts:  # batch: SQLite cannot alter in place
        alerts.add_column(sa.Column('kind', sa.String(16), nullable=False,
                                    server_default='vehicle'))
        alerts.add_column(sa.Column('zone', sa.String(64), nullable=True))


def downgrade() -> None:
    """Drop the counts tables and the alerts' kind and zone."""
    with op.batch_alter_table('alerts') as alerts:
        alerts.drop_column('zone')
        alerts.drop_column('kind')
    op.drop_index('ix_traffic_counts_device_line_start', 'traffic_counts')
    op.drop_table('traffic_counts')
    op.drop_index('ix_count_records_device_start', 'count_records')
    op.drop_table('count_records')
