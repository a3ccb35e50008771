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

"""Count records' class scheme and data quality: flags (a bit mask) and seconds observed."""

from alembic import op
import sqlalchemy as sa

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Give count records a scheme, quality flags and observed seconds (null: not sent)."""
    with op.batch_alter_table('count_records') as records:  # batch: SQLite cannot alter
        records.add_column(sa.Column('scheme', sa.String(64), nullable=True))
        records.add_column(sa.Column('quality_flags', sa.Integer, nullable=True))
        records.add_column(sa.Column('observed_s', sa.Float, nullable=True))


def downgrade() -> None:
    """Drop the count records' scheme and quality."""
    with op.batch_alter_table('count_records') as records:
        records.drop_column('observed_s')
        records.drop_column('quality_flags')
        records.drop_column('scheme')
