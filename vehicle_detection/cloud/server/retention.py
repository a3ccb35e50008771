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
Retention: pictures, alerts and traffic counts older than the policy are deleted.

One pass (:func:`prune`), the same for a local folder and an object store:

1. Pictures: every stored picture in a day folder up to the pictures' cutoff
   is looked up by name; the alerts older than the cutoff that name it lose
   it (their rows stay), and a picture that no alert names any more is
   deleted with its thumbnail. Alerts of one frame share one picture: it
   goes only when the last of them lets it go. A picture written in the last
   :data:`UPLOAD_GRACE_S` is left alone (its upload may not have set its row
   yet), and so is any picture a newer alert still names.
2. Alerts older than their cutoff are deleted, oldest first.
3. Count records older than theirs are deleted with their rows, per device.

The rollups (``rollups.py``) lose what each batch deletes, in the batch's
transaction: ``/stats``, the devices' alerts of 24 h and ``/counts`` answer
from the rollups exactly what the stored rows say, before and after a pass
(what the alerts list no longer shows, no chart shows either).

Every step works in batches of :data:`BATCH` rows, each its own short
transaction, so ingest goes on between them (SQLite's write lock is held for
one batch at a time). A pass that is stopped or fails half-way leaves
nothing inconsistent: rows go before their pictures, and a picture left
without a row is found by the next pass's listing.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime, timedelta
import time
from typing import Callable, Dict, List, Optional, Sequence, Set, Tuple

from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import Engine

from vehicle_detection.cloud.server.db import (
    Alert, CountDuplicate, CountKey, CountRecord, CountSpeedBin, CountVehicle, Device,
    TrafficCount)
from vehicle_detection.cloud.server.engine import to_stored, utcnow, writing
from vehicle_detection.cloud.server.rollups import forget_alerts, forget_count_records
from vehicle_detection.cloud.server.storage import ImageStore, THUMBNAILS

BATCH = 1000  # rows per transaction
NAMES_PER_QUERY = 500  # picture names per IN (...) lookup
UPLOAD_GRACE_S = 600.0  # a picture this recent may still be waiting for its row
DAY_S = 86400


@dataclass(frozen=True)
class RetentionPolicy:
    """How many days each kind is kept; 0 keeps it forever."""

    pictures_days: float = 30.0
    alerts_days: float = 400.0
    counts_days: float = 0.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not value >= 0:  # NaN too
                raise ValueError(f'{f.name} must be 0 (forever) or a number of days, '
                                 f'not {value}')

    @property
    def active(self) -> bool:
        """Tell whether anything is ever deleted."""
        return bool(self.pictures_days or self.alerts_days or self.counts_days)

    def describe(self) -> str:
        """Return the policy in words, for the log and the CLI."""
        def days(value: float) -> str:
            return f'{value:g} days' if value else 'forever'
        return (f'pictures {days(self.pictures_days)}, alerts {days(self.alerts_days)}, '
                f'counts {days(self.counts_days)}')

    def alerts_cutoff(self, now: datetime) -> Optional[datetime]:
        """Return the stored (naive UTC) time before which alerts go, or None."""
        return now - timedelta(days=self.alerts_days) if self.alerts_days else None

    def pictures_cutoff(self, now: datetime) -> Optional[datetime]:
        """Return the time before which pictures go (never after their alerts)."""
        cutoffs = [now - timedelta(days=days)
                   for days in (self.pictures_days, self.alerts_days) if days]
        return max(cutoffs) if cutoffs else None

    def counts_cutoff(self, now: datetime) -> Optional[int]:
        """Return the epoch second before which count periods go, or None."""
        if not self.counts_days:
            return None
        return int((now - datetime(1970, 1, 1)).total_seconds() - self.counts_days * DAY_S)


@dataclass
class Freed:
    """What one pass deleted (or, dry, would delete)."""

    alerts: int = 0  # alert rows deleted
    pictures_expired: int = 0  # alerts whose picture was taken away (the row stays)
    pictures: int = 0  # stored pictures deleted
    picture_bytes: int = 0
    thumbnails: int = 0
    thumbnail_bytes: int = 0
    count_records: int = 0  # count records deleted, with their rows

    def add(self, other: 'Freed') -> None:
        """Add ``other``'s figures to these."""
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    @property
    def anything(self) -> bool:
        """Tell whether anything was (or would be) deleted."""
        return any(getattr(self, f.name) for f in fields(self))

    def describe(self) -> str:
        """Return the figures in one line."""
        return (f'{self.alerts} alerts, pictures of {self.pictures_expired} alerts, '
                f'{self.pictures} pictures ({_mb(self.picture_bytes)}), {self.thumbnails} '
                f'thumbnails ({_mb(self.thumbnail_bytes)}), {self.count_records} count records')


def prune(engine: Engine, store: ImageStore, policy: RetentionPolicy,
          now: Optional[datetime] = None, dry_run: bool = False,
          stopping: Callable[[], bool] = lambda: False) -> Freed:
    """Apply ``policy`` once (see the module's description); return what went."""
    now = now or utcnow()
    freed = Freed()
    pictures_cutoff = policy.pictures_cutoff(now)
    if pictures_cutoff is not None:
        _prune_pictures(engine, store, pictures_cutoff, dry_run, stopping, freed)
    alerts_cutoff = policy.alerts_cutoff(now)
    if alerts_cutoff is not None and not stopping():
        freed.alerts = _prune_alerts(engine, alerts_cutoff, dry_run, stopping)
    counts_cutoff = policy.counts_cutoff(now)
    if counts_cutoff is not None and not stopping():
        freed.count_records = _prune_counts(engine, counts_cutoff, dry_run, stopping)
    return freed


def _prune_pictures(engine: Engine, store: ImageStore, cutoff: datetime, dry_run: bool,
                    stopping: Callable[[], bool], freed: Freed) -> None:
    last_day = f'{cutoff:%Y-%m-%d}'  # day folders after it hold no picture old enough
    settled = time.time() - UPLOAD_GRACE_S
    for day in store.day_folders():
        if day > last_day or stopping():
            continue
        for page in store.listing(day):
            kept, expired = _settle_names([item.name for item in page], engine, cutoff,
                                          dry_run, freed)
            # A picture no alert ever named may be an upload whose row comes next: only
            # one written before the grace goes (a left-over of a failed upload).
            gone = [item for item in page if item.name not in kept
                    and (item.name in expired or item.modified < settled)]
            if not dry_run:
                store.delete_many(item.name for item in gone)
            freed.pictures += len(gone)
            freed.picture_bytes += sum(item.size for item in gone)
    for day in store.day_folders(thumbnails=True):
        if day > last_day or stopping():
            continue
        for page in store.listing(f'{THUMBNAILS}/{day}'):
            pictures = {item.name[len(THUMBNAILS) + 1:]: item for item in page}
            kept = _named(engine, list(pictures), None if not dry_run else cutoff)
            gone = [item for name, item in pictures.items() if name not in kept]
            if not dry_run:
                store.delete_many(item.name for item in gone)
            freed.thumbnails += len(gone)
            freed.thumbnail_bytes += sum(item.size for item in gone)


def _settle_names(names: List[str], engine: Engine, cutoff: datetime, dry_run: bool,
                  freed: Freed) -> Tuple[Set[str], Set[str]]:
    """
    Take these pictures from the alerts older than ``cutoff``.

    Return the names some alert still names, and those old alerts named.
    """
    stored_cutoff = to_stored(cutoff)
    expired: Set[str] = set()
    for chunk in _chunks(names, NAMES_PER_QUERY):
        old = (Alert.image_path.in_(chunk), Alert.detected_at < stored_cutoff)
        with writing(engine) if not dry_run else engine.connect() as connection:
            found = connection.execute(select(Alert.image_path, func.count()).where(
                *old).group_by(Alert.image_path)).all()
            expired.update(name for name, _count in found if name)
            freed.pictures_expired += sum(count for _name, count in found)
            if found and not dry_run:
                connection.execute(update(Alert).where(*old).values(image_path=None,
                                                                    image_bytes=None))
    return _named(engine, names, cutoff if dry_run else None), expired


def _named(engine: Engine, names: Sequence[str], newer_than: Optional[datetime]) -> Set[str]:
    """Return those of ``names`` some alert names (only alerts from ``newer_than`` on)."""
    named: Set[str] = set()
    with engine.connect() as connection:
        for chunk in _chunks(list(names), NAMES_PER_QUERY):
            query = select(Alert.image_path).where(Alert.image_path.in_(chunk)).distinct()
            if newer_than is not None:
                query = query.where(Alert.detected_at >= to_stored(newer_than))
            named.update(name for name in connection.execute(query).scalars() if name)
    return named


def _prune_alerts(engine: Engine, cutoff: datetime, dry_run: bool,
                  stopping: Callable[[], bool]) -> int:
    old = Alert.detected_at < to_stored(cutoff)
    if dry_run:
        with engine.connect() as connection:
            return connection.execute(select(func.count()).select_from(Alert).where(old)
                                      ).scalar_one()
    deleted = 0
    while not stopping():
        with writing(engine) as connection:
            ids = connection.execute(select(Alert.id).where(old).order_by(
                Alert.detected_at).limit(BATCH)).scalars().all()
            if ids:
                forget_alerts(connection, Alert.id.in_(ids))
                connection.execute(delete(Alert).where(Alert.id.in_(ids)))
        deleted += len(ids)
        if len(ids) < BATCH:
            break
    return deleted


def _prune_counts(engine: Engine, cutoff: int, dry_run: bool,
                  stopping: Callable[[], bool]) -> int:
    with engine.connect() as connection:
        devices = connection.execute(select(Device.id)).scalars().all()
    deleted = 0
    for device in devices:  # the (device, start) index finds a device's old records
        old = (CountRecord.device_id == device, CountRecord.period_start < cutoff)
        if dry_run:
            with engine.connect() as connection:
                deleted += connection.execute(select(func.count()).select_from(
                    CountRecord).where(*old)).scalar_one()
            continue
        while not stopping():
            with writing(engine) as connection:
                ids = connection.execute(select(CountRecord.id).where(*old).order_by(
                    CountRecord.period_start).limit(BATCH)).scalars().all()
                if ids:  # the rows first: no reliance on the cascade being switched on
                    forget_count_records(connection, CountRecord.id.in_(ids))
                    for table in (TrafficCount, CountSpeedBin, CountVehicle):
                        connection.execute(delete(table).where(table.record_id.in_(ids)))
                    connection.execute(delete(CountRecord).where(CountRecord.id.in_(ids)))
            deleted += len(ids)
            if len(ids) < BATCH:
                break
        if not stopping():
            _prune_count_keys(engine, device, cutoff // DAY_S)
    if not dry_run and not stopping():
        with writing(engine) as connection:  # set aside by migration 0005: a few rows
            connection.execute(delete(CountDuplicate).where(
                CountDuplicate.period_start < cutoff))
    return deleted


def _prune_count_keys(engine: Engine, device: int, before_day: int) -> None:
    """Forget the keys a device counted on days that have no records left."""
    while True:
        with writing(engine) as connection:
            days = connection.execute(select(CountKey.day).where(
                CountKey.device_id == device, CountKey.day < before_day).distinct().order_by(
                CountKey.day).limit(31)).scalars().all()
            if days:
                connection.execute(delete(CountKey).where(CountKey.device_id == device,
                                                          CountKey.day.in_(days)))
        if len(days) < 31:
            return


def _chunks(items: List[str], size: int) -> List[List[str]]:
    return [items[start:start + size] for start in range(0, len(items), size)]


def _mb(size: int) -> str:
    return f'{size / 1e6:.1f} MB'


def freed_by_kind(freed: Freed) -> Dict[str, int]:
    """Return the figures as a dictionary (for the CLI's JSON line)."""
    return {f.name: getattr(freed, f.name) for f in fields(freed)}
