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

"""Data versions: one counter per table the dashboard reads, for the shared read cache."""

import secrets

from alembic import op
import sqlalchemy as sa

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create data_versions with this database's random identity."""
    table = op.create_table(
        'data_versions',
        sa.Column('kind', sa.String(64), primary_key=True),
        sa.Column('slot', sa.Integer(), primary_key=True),
        sa.Column('version', sa.BigInteger(), nullable=False))
    op.bulk_insert(table, [{'kind': '_database', 'slot': 0,
                            'version': secrets.randbits(62)}])


def downgrade() -> None:
    """Drop data_versions."""
    op.drop_table('data_versions')
