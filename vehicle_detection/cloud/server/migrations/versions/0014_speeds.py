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

"""Speeds: 2 km/h bins per count period, per-vehicle rows, and an alert's speed."""

from alembic import op
import sqlalchemy as sa

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def _key_columns() -> list:
    return [sa.Column('id', sa.Integer, primary_key=True),
            sa.Column('record_id', sa.Integer,
                      sa.ForeignKey('count_records.id', ondelete='CASCADE'), nullable=False),
            sa.Column('device_id', sa.Integer, sa.ForeignKey('devices.id'), nullable=False)]


def upgrade() -> None:
    """Add count_speed_bins, count_vehicles and alerts.speed_kmh."""
    op.create_table(
        'count_speed_bins', *_key_columns(),
        sa.Column('line', sa.String(64), nullable=False),
        sa.Column('direction', sa.String(64), nullable=False),
        sa.Column('class_name', sa.String(64), nullable=False),
        sa.Column('period_start', sa.BigInteger, nullable=False),
        sa.Column('bin', sa.SmallInteger, nullable=False),
        sa.Column('count', sa.Integer, nullable=False),
        sa.Column('replay', sa.Boolean, nullable=False, server_default=sa.false()))
    op.create_index('ix_count_speed_bins_device_line_start', 'count_speed_bins',
                    ['device_id', 'line', 'period_start'])
    op.create_index('ix_count_speed_bins_record_id', 'count_speed_bins', ['record_id'])
    op.create_table(
        'count_vehicles', *_key_columns(),
        sa.Column('camera_id', sa.String(64), nullable=False),
        sa.Column('passed_at', sa.Float, nullable=False),
        sa.Column('line', sa.String(64), nullable=False),
        sa.Column('direction', sa.String(64), nullable=False),
        sa.Column('class_name', sa.String(64), nullable=False),
        sa.Column('speed_kmh', sa.Float, nullable=True),
        sa.Column('replay', sa.Boolean, nullable=False, server_default=sa.false()))
    op.create_index('ix_count_vehicles_device_passed', 'count_vehicles',
                    ['device_id', 'passed_at'])
    op.create_index('ix_count_vehicles_record_id', 'count_vehicles', ['record_id'])
    with op.batch_alter_table('alerts') as alerts:  # batch: SQLite cannot alter in place
        alerts.add_column(sa.Column('speed_kmh', sa.Float, nullable=True))


def downgrade() -> None:
    """Drop the speeds (bins, vehicles, the alerts' speed)."""
    with op.batch_alter_table('alerts') as alerts:
        alerts.drop_column('speed_kmh')
    op.drop_table('count_vehicles')
    op.drop_table('count_speed_bins')
