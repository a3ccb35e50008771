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
The rate limits in the database: one budget per device (and per address) for every server.

Before this, the token buckets were SQLite files under the snapshot folder,
shared only by the workers of one host. On PostgreSQL the table is
UNLOGGED: it is written on every device request, and a crash that empties
it only refills the buckets.
"""

from alembic import op
import sqlalchemy as sa

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the rate_limits table."""
    unlogged = ['UNLOGGED'] if op.get_bind().dialect.name == 'postgresql' else []
    op.create_table(
        'rate_limits',
        sa.Column('subject', sa.String(80), primary_key=True),
        sa.Column('tat', sa.Float(), nullable=False),
        prefixes=unlogged)


def downgrade() -> None:
    """Drop the rate_limits table."""
    op.drop_table('rate_limits')
