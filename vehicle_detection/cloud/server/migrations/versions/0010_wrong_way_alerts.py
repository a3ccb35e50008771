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

"""Wrong-way alerts: the line a vehicle crossed against its one way, and its direction."""

from alembic import op
import sqlalchemy as sa

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Give alerts a line and a direction (wrong_way alerts name both; others neither)."""
    with op.batch_alter_table('alerts') as alerts:  # batch: SQLite cannot alter in place
        alerts.add_column(sa.Column('line', sa.String(64), nullable=True))
        alerts.add_column(sa.Column('direction', sa.String(64), nullable=True))
    op.create_index('ix_alerts_kind', 'alerts', ['kind'])


def downgrade() -> None:
    """Drop the alerts' line and direction."""
    op.drop_index('ix_alerts_kind', 'alerts')
    with op.batch_alter_table('alerts') as alerts:
        alerts.drop_column('direction')
        alerts.drop_column('line')
