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
Indexes for retention: which alerts name a stored picture; the rows of a count record.

Retention asks, for each stored picture it may delete, whether an alert
still names it (``alerts.image_path``), and deletes count records whose rows
go with them (``ON DELETE CASCADE`` looks the rows up by ``record_id``).
Without these indexes both were a scan of the whole table per picture or
record. On PostgreSQL the indexes are built ``CONCURRENTLY``: writes go on
while a large table is indexed.
"""

from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

INDEXES = (('ix_alerts_image_path', 'alerts', ['image_path']),
           ('ix_traffic_counts_record_id', 'traffic_counts', ['record_id']))


def upgrade() -> None:
    """Create the two indexes."""
    if op.get_bind().dialect.name == 'postgresql':
        with op.get_context().autocommit_block():
            for name, table, columns in INDEXES:
                op.create_index(name, table, columns, postgresql_concurrently=True,
                                if_not_exists=True)
    else:
        for name, table, columns in INDEXES:
            op.create_index(name, table, columns)


def downgrade() -> None:
    """Drop the two indexes."""
    for name, table, _columns in INDEXES:
        op.drop_index(name, table)
