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
The server's tables (SQLAlchemy ORM), for SQLite and PostgreSQL.

Times are stored as naive UTC (SQLite has no time zones); the API turns
them back into aware UTC (:mod:`.engine`'s ``to_stored``/``from_stored``).
The rollup tables the reads sum are in :mod:`.db_rollups`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

from sqlalchemy import (
    BigInteger, Boolean, DateTime, false, Float, ForeignKey, Index, Integer, JSON,
    SmallInteger, String, UniqueConstraint)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    """Declarative base of the server's tables."""


class Device(Base):
    """An edge box allowed to post, with the hash of its API key."""

    __tablename__ = 'devices'

    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # noqa: A003 (wire name)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    revoked_at: Mapped[Optional[datetime]] = mapped_column(DateTime, nullable=True)
    last_seen_at: Mapped[Optional[datetime]] = mapped_column(DateTime, nullable=True)
    health: Mapped[Optional[dict]] = mapped_column(JSON, nullable=True)


class Operator(Base):
    """A person who reads the dashboard: name, argon2 password hash, role."""

    __tablename__ = 'operators'

    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # noqa: A003 (wire name)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime)


class OperatorSession(Base):
    """A login: the hash of the session cookie, its operator and when it expires."""

    __tablename__ = 'operator_sessions'

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    operator_id: Mapped[int] = mapped_column(ForeignKey('operators.id', ondelete='CASCADE'))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    expires_at: Mapped[datetime] = mapped_column(DateTime, index=True)


class ReadToken(Base):
    """A token for scripts that read the API (``Authorization: Bearer``), stored hashed."""

    __tablename__ = 'read_tokens'

    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # noqa: A003 (wire name)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    revoked_at: Mapped[Optional[datetime]] = mapped_column(DateTime, nullable=True)


class LoginGuard(Base):
    """
    Failed logins of one name (``name:...``) or one address (``addr:...``) and its lock.

    Shared by every worker and every server instance (migration 0006); times
    are epoch seconds (see :mod:`login_guard`).
    """

    __tablename__ = 'login_guard'

    subject: Mapped[str] = mapped_column(String(80), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    locked_until: Mapped[float] = mapped_column(Float)
    last_failure_at: Mapped[float] = mapped_column(Float, index=True)


class RateLimit(Base):
    """
    One rate-limit budget: a device's requests (``dev:...``) or an address's failures.

    ``tat`` is the bucket's theoretical arrival time in epoch seconds by the
    database's clock (see :class:`access.SharedRateLimiter`); shared by every
    worker and every server instance (migration 0009: UNLOGGED on PostgreSQL).
    """

    __tablename__ = 'rate_limits'

    subject: Mapped[str] = mapped_column(String(80), primary_key=True)
    tat: Mapped[float] = mapped_column(Float)


class DataVersion(Base):
    """
    Changes to the tables the dashboard reads, counted per table (migration 0013).

    Every transaction that writes to a watched table adds one to its row of
    a random ``slot`` before it commits (:mod:`data_version`): the sum over
    the slots is the table's version, and a cached read keyed by it is
    current. Slots spread concurrent writers of PostgreSQL over 16 rows
    instead of queueing them on one. The row ``_database`` holds a random
    number that tells this database from another one sharing a Redis.
    """

    __tablename__ = 'data_versions'

    kind: Mapped[str] = mapped_column(String(64), primary_key=True)
    slot: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)


class Alert(Base):
    """One vehicle reported by a device; ``event_id`` makes posting idempotent."""

    __tablename__ = 'alerts'
    # ix_alerts_device_image finds a device's stored snapshot by content (alerts of one
    # frame share it; migration 0002); ix_alerts_image_path the alerts that name a stored
    # picture (retention deletes it when none does; migration 0008); ix_alerts_device_id
    # and ix_alerts_kind_id page one device's or one kind's alerts newest first (0012).
    __table_args__ = (Index('ix_alerts_device_detected', 'device_id', 'detected_at'),
                      Index('ix_alerts_device_image', 'device_id', 'image_sha256'),
                      Index('ix_alerts_image_path', 'image_path'),
                      Index('ix_alerts_device_id', 'device_id', 'id'),
                      Index('ix_alerts_kind_id', 'kind', 'id'))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # noqa: A003 (wire name)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    device_id: Mapped[int] = mapped_column(ForeignKey('devices.id'))
    camera_id: Mapped[str] = mapped_column(String(64))
    detected_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    received_at: Mapped[datetime] = mapped_column(DateTime)
    track_id: Mapped[int] = mapped_column(BigInteger)
    class_name: Mapped[str] = mapped_column(String(64), index=True)
    confidence: Mapped[float] = mapped_column(Float)
    bbox: Mapped[Any] = mapped_column(JSON)
    image_width: Mapped[int] = mapped_column(Integer)
    image_height: Mapped[int] = mapped_column(Integer)
    image_path: Mapped[Optional[str]] = mapped_column(String(200), nullable=True)
    image_bytes: Mapped[Optional[int]] = mapped_column(Integer, nullable=True)
    image_sha256: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)
    kind: Mapped[str] = mapped_column(String(16), default='vehicle',
                                      server_default='vehicle')  # migration 0004
    # Where it happened (wire.ALERT_PLACES): a stopped vehicle's zone (migration 0004),
    # a wrong-way driver's line and direction (migration 0010).
    zone: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)
    line: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)
    direction: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)
    # Made from recorded images (a bag), not live traffic (migration 0007).
    replay: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    speed_kmh: Mapped[Optional[float]] = mapped_column(Float, nullable=True)  # migration 0014


class CountRecord(Base):
    """
    One period of traffic counts of one camera; ``record_id`` makes posting idempotent.

    One period per device, camera and start (migration 0005): a second record
    for it would count the same vehicles twice. A replay's periods are apart
    from live ones (migration 0007): a bag recorded on a box, played again,
    counts periods the box counted live then.
    """

    __tablename__ = 'count_records'
    __table_args__ = (Index('ix_count_records_device_start', 'device_id', 'period_start'),
                      Index('uq_count_records_period', 'device_id', 'camera_id',
                            'period_start', 'replay', unique=True),
                      Index('ix_count_records_start', 'period_start'))  # 0012

    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # noqa: A003 (wire name)
    record_id: Mapped[str] = mapped_column(String(36), unique=True)
    device_id: Mapped[int] = mapped_column(ForeignKey('devices.id'))
    camera_id: Mapped[str] = mapped_column(String(64))
    period_start: Mapped[int] = mapped_column(BigInteger)  # epoch seconds: buckets by arithmetic
    period_s: Mapped[int] = mapped_column(Integer)
    received_at: Mapped[datetime] = mapped_column(DateTime)
    replay: Mapped[bool] = mapped_column(Boolean, default=False,
                                         server_default=false())  # migration 0007
    # The class scheme of its class names, its quality flags (a bit mask of
    # wire.QUALITY_FLAGS) and the seconds observed; null where the edge sent none (0015).
    scheme: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)
    quality_flags: Mapped[Optional[int]] = mapped_column(Integer, nullable=True)
    observed_s: Mapped[Optional[float]] = mapped_column(Float, nullable=True)


class TrafficCount(Base):
    """Vehicles of one class that crossed one line one way in one period."""

    __tablename__ = 'traffic_counts'
    # ix_traffic_counts_record_id: a record's rows, for its cascading delete (migration 0008);
    # 0012: the windows of one device or of the fleet.
    __table_args__ = (Index('ix_traffic_counts_device_start', 'device_id', 'period_start'),
                      Index('ix_traffic_counts_start', 'period_start'),
                      Index('ix_traffic_counts_record_id', 'record_id'))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # noqa: A003 (wire name)
    record_id: Mapped[int] = mapped_column(ForeignKey('count_records.id', ondelete='CASCADE'))
    device_id: Mapped[int] = mapped_column(ForeignKey('devices.id'))  # the record's, for queries
    line: Mapped[str] = mapped_column(String(64))
    direction: Mapped[str] = mapped_column(String(64))
    class_name: Mapped[str] = mapped_column(String(64))
    period_start: Mapped[int] = mapped_column(BigInteger)  # the record's
    count: Mapped[int] = mapped_column(Integer)
    replay: Mapped[bool] = mapped_column(Boolean, default=False,
                                         server_default=false())  # the record's (0007)


class CountSpeedBin(Base):
    """Vehicles of one line, direction and class in one 2 km/h speed bin of one period (0014)."""

    __tablename__ = 'count_speed_bins'
    __table_args__ = (Index('ix_count_speed_bins_device_line_start', 'device_id', 'line',
                            'period_start'),
                      Index('ix_count_speed_bins_record_id', 'record_id'))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # noqa: A003 (wire name)
    record_id: Mapped[int] = mapped_column(ForeignKey('count_records.id', ondelete='CASCADE'))
    device_id: Mapped[int] = mapped_column(ForeignKey('devices.id'))  # the record's
    line: Mapped[str] = mapped_column(String(64))
    direction: Mapped[str] = mapped_column(String(64))
    class_name: Mapped[str] = mapped_column(String(64))
    period_start: Mapped[int] = mapped_column(BigInteger)  # the record's
    # Speeds in [2 bin, 2 bin + 2) km/h (wire_speeds).
    bin: Mapped[int] = mapped_column(SmallInteger)  # noqa: A003 (the wire's name)
    count: Mapped[int] = mapped_column(Integer)
    replay: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class CountVehicle(Base):
    """One counted vehicle, from a device that sends per-vehicle records (0014)."""

    __tablename__ = 'count_vehicles'
    __table_args__ = (Index('ix_count_vehicles_device_passed', 'device_id', 'passed_at'),
                      Index('ix_count_vehicles_record_id', 'record_id'))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # noqa: A003 (wire name)
    record_id: Mapped[int] = mapped_column(ForeignKey('count_records.id', ondelete='CASCADE'))
    device_id: Mapped[int] = mapped_column(ForeignKey('devices.id'))  # the record's
    camera_id: Mapped[str] = mapped_column(String(64))
    passed_at: Mapped[float] = mapped_column(Float)  # epoch seconds (to 10 ms)
    line: Mapped[str] = mapped_column(String(64))
    direction: Mapped[str] = mapped_column(String(64))
    class_name: Mapped[str] = mapped_column(String(64))
    speed_kmh: Mapped[Optional[float]] = mapped_column(Float, nullable=True)
    replay: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class CountKey(Base):
    """
    A (line, direction, class) a device counted on one UTC day (migration 0005).

    Keeps the limits of lines, directions and classes per device and day
    (``wire.MAX_COUNT_*``) cheap to check: a few rows per device and day.
    """

    __tablename__ = 'count_keys'

    device_id: Mapped[int] = mapped_column(ForeignKey('devices.id'), primary_key=True)
    day: Mapped[int] = mapped_column(Integer, primary_key=True)  # epoch seconds // 86400
    line: Mapped[str] = mapped_column(String(64), primary_key=True)
    direction: Mapped[str] = mapped_column(String(64), primary_key=True)
    class_name: Mapped[str] = mapped_column(String(64), primary_key=True)


class CountDuplicate(Base):
    """
    A count record set aside by migration 0005: another one of its period was stored first.

    Before 0005 such records were summed with the first; they are kept here,
    rows and all, for an operator to look at (``kept_record_id`` names the one
    counted).
    """

    __tablename__ = 'count_duplicates'

    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # noqa: A003 (wire name)
    record_id: Mapped[str] = mapped_column(String(36))
    device_id: Mapped[int] = mapped_column(ForeignKey('devices.id'))
    camera_id: Mapped[str] = mapped_column(String(64))
    period_start: Mapped[int] = mapped_column(BigInteger)
    period_s: Mapped[int] = mapped_column(Integer)
    received_at: Mapped[datetime] = mapped_column(DateTime)
    counts: Mapped[Any] = mapped_column(JSON)  # [[line, direction, class_name, count], ...]
    kept_record_id: Mapped[str] = mapped_column(String(36))
    set_aside_at: Mapped[datetime] = mapped_column(DateTime)


class DeviceConfig(Base):
    """
    One version of a device's desired configuration (migration 0011), kept for good.

    ``created_by`` is the admin who saved it (the audit of who changed what);
    ``state`` is pending until the device reports it applied or refused (with
    its ``reason``).
    """

    __tablename__ = 'device_configs'
    __table_args__ = (UniqueConstraint('device_id', 'version', name='uq_device_configs_version'),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # noqa: A003 (wire name)
    device_id: Mapped[int] = mapped_column(ForeignKey('devices.id'))
    version: Mapped[int] = mapped_column(Integer)
    parameters: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    created_by: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[Optional[str]] = mapped_column(String(1000), nullable=True)
    reported_at: Mapped[Optional[datetime]] = mapped_column(DateTime, nullable=True)
