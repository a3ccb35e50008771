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

"""Configuration pushed from the dashboard: every version of each device's, and its outcome."""

from alembic import op
import sqlalchemy as sa

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add ``device_configs``: one row per version per device, who saved it, the edge's answer."""
    op.create_table(
        'device_configs',
        sa.Column('id', sa.Integer, primary_key=True),
        sa.Column('device_id', sa.Integer, sa.ForeignKey('devices.id'), nullable=False),
        sa.Column('version', sa.Integer, nullable=False),
        sa.Column('parameters', sa.JSON, nullable=False),
        sa.Column('created_at', sa.DateTime, nullable=False),
        sa.Column('created_by', sa.String(64), nullable=False),
        sa.Column('state', sa.String(16), nullable=False),
        sa.Column('reason', sa.String(1000), nullable=True),
        sa.Column('reported_at', sa.DateTime, nullable=True),
        sa.UniqueConstraint('device_id', 'version', name='uq_device_configs_version'))


def downgrade() -> None:
    """Drop every stored configuration version."""
    op.drop_table('device_configs')
