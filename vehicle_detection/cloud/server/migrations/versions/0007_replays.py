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
Replays: alerts and count periods made from recorded images are marked as such.

Every stored row is live (false). A replay's count periods are apart from
live ones: the unique period of 0005 takes the mark in (a bag recorded on a
box and played again counts periods the box counted live then).
"""

from alembic import op
import sqlalchemy as sa

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

TABLES = ('alerts', 'count_records', 'traffic_counts')


def upgrade() -> None:
    """Add the replay mark (false for every stored row); periods unique per mark."""
    for table in TABLES:  # ADD COLUMN with a constant default: no table copy, on both
        op.add_column(table, sa.Column('replay', sa.Boolean(), nullable=False,
                                       server_default=sa.false()))
    op.drop_index('uq_count_records_period', 'count_records')
    op.create_index('uq_count_records_period', 'count_records',
                    ['device_id', 'camera_id', 'period_start', 'replay'], unique=True)


def downgrade() -> None:
    """
    Drop the mark: replays become plain rows, as older servers stored them.

    Refused (nothing changed) while a replay's count period shares its
    device, camera and start with a live one: the older unique period could
    not hold both, and which to keep is the operator's call.
    """
    clashes = op.get_bind().execute(sa.text(
        'SELECT count(*) FROM count_records r JOIN count_records l ON '
        'l.device_id = r.device_id AND l.camera_id = r.camera_id AND '
        'l.period_start = r.period_start AND NOT l.replay WHERE r.replay')).scalar_one()
    if clashes:
        raise RuntimeError(
            f'cannot downgrade below 0007: {clashes} replayed count periods share their '
            'period with live ones; delete them first (DELETE FROM count_records WHERE '
            'replay, which takes their traffic_counts rows with it)')
    op.drop_index('uq_count_records_period', 'count_records')
    op.create_index('uq_count_records_period', 'count_records',
                    ['device_id', 'camera_id', 'period_start'], unique=True)
    for table in TABLES:
        with op.batch_alter_table(table) as batch:  # batch: SQLite before 3.35 cannot drop
            batch.drop_column('replay')
