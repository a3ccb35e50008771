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

"""Find a device's stored snapshot by its SHA-256: alerts of one frame share it."""

from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Index alerts by (device, snapshot digest)."""
    op.create_index('ix_alerts_device_image', 'alerts', ['device_id', 'image_sha256'])


def downgrade() -> None:
    """Drop the index."""
    op.drop_index('ix_alerts_device_image', 'alerts')
