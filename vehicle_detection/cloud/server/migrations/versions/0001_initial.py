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

"""Devices with hashed keys, and alerts with their snapshot."""

from alembic import op
import sqlalchemy as sa

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the devices and alerts tables."""
    op.create_table(
        'devices',
        sa.Column('id', sa.Integer, primary_key=True),
        sa.Column('name', sa.String(64), nullable=False, unique=True),
        sa.Column('key_hash', sa.String(64), nullable=False, unique=True),
        sa.Column('created_at', sa.DateTime, nullable=False),
        sa.Column('revoked_at', sa.DateTime, nullable=True),
        sa.Column('last_seen_at', sa.DateTime, nullable=True),
        sa.Column('health', sa.JSON, nullable=True))
    op.create_table(
        'alerts',
        sa.Column('id', sa.Integer, primary_key=True),
        sa.Column('event_id', sa.String(36), nullable=False, unique=True),
        sa.Column('device_id', sa.Integer, sa.ForeignKey('devices.id'), nullable=False),
        sa.Column('camera_id', sa.String(64), nullable=False),
        sa.Column('detected_at', sa.DateTime, nullable=False, index=True),
        sa.Column('received_at', sa.DateTime, nullable=False),
        sa.Column('track_id', sa.BigInteger, nullable=False),
        sa.Column('class_name', sa.String(64), nullable=False, index=True),
        sa.Column('confidence', sa.Float, nullable=False),
        sa.Column('bbox', sa.JSON, nullable=False),
        sa.Column('image_width', sa.Integer, nullable=False),
        sa.Column('image_height', sa.Integer, nullable=False),
        sa.Column('image_path', sa.String(200), nullable=True),
        sa.Column('image_bytes', sa.Integer, nullable=True),
        sa.Column('image_sha256', sa.String(64), nullable=True))
    op.create_index('ix_alerts_device_detected', 'alerts', ['device_id', 'detected_at'])


def downgrade() -> None:
    """Drop both tables."""
    op.drop_index('ix_alerts_device_detected', 'alerts')
    op.drop_table('alerts')
    op.drop_table('devices')
