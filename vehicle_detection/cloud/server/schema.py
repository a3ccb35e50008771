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

"""Schema versions: migrate with Alembic, or check that a database is current."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from vehicle_detection.cloud.server.engine import make_engine

MIGRATIONS = Path(__file__).resolve().parent / 'migrations'


class SchemaBehind(RuntimeError):
    """The database is not at the newest revision; the message says what to run."""


def alembic_config(url: str) -> Config:
    """Return an Alembic config for ``url`` using the packaged migrations."""
    config = Config()
    config.set_main_option('script_location', str(MIGRATIONS))
    config.set_main_option('sqlalchemy.url', url.replace('%', '%%'))
    return config


def head_revision() -> Optional[str]:
    """Return the newest revision the code knows."""
    return ScriptDirectory.from_config(alembic_config('sqlite://')).get_current_head()


def current_revision(url: str) -> Optional[str]:
    """Return the revision the database at ``url`` is at (None when empty)."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def upgrade(url: str) -> None:
    """Migrate the database at ``url`` to the newest revision."""
    command.upgrade(alembic_config(url), 'head')


def check_current(url: str, command_hint: str) -> None:
    """Raise :class:`SchemaBehind` naming ``command_hint`` unless ``url`` is current."""
    current, head = current_revision(url), head_revision()
    if current != head:
        raise SchemaBehind(f'the database schema is at {current or "nothing (empty)"}, '
                           f'this server needs {head}: run `{command_hint}`')
