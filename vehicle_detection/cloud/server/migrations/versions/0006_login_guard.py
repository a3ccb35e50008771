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

"""The login lock: failed logins per name and per address, shared by every server."""

from alembic import op
import sqlalchemy as sa

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the login_guard table."""
    op.create_table(
        'login_guard',
        sa.Column('subject', sa.String(80), primary_key=True),
        sa.Column('failures', sa.Integer(), nullable=False),
        sa.Column('locked_until', sa.Float(), nullable=False),
        sa.Column('last_failure_at', sa.Float(), nullable=False))
    op.create_index('ix_login_guard_last_failure_at', 'login_guard', ['last_failure_at'])


def downgrade() -> None:
    """Drop the login_guard table."""
    op.drop_index('ix_login_guard_last_failure_at', 'login_guard')
    op.drop_table('login_guard')
