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

"""Alembic environment: migrate the database named by ``sqlalchemy.url``."""

from alembic import context

from vehicle_detection.cloud.server.db import Base
import vehicle_detection.cloud.server.db_rollups  # noqa: F401 (the rollup tables, in Base)
from vehicle_detection.cloud.server.engine import make_engine

engine = make_engine(context.config.get_main_option('sqlalchemy.url') or '')
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=Base.metadata,
                      render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
