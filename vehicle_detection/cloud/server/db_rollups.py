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
The server's rollup tables: alerts per hour, vehicles per 15 minutes, counting coverage.

Kept up to date in the transaction that stores the alerts and count records
they sum (:mod:`.rollups`, migration 0012), so that ``/stats``, the counts
API and the dashboard read a few rows per device and bucket instead of the
raw rows.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from vehicle_detection.cloud.server.db import Base


class AlertHour(Base):
    """
    Alerts of one UTC hour (epoch seconds of its start), device, class, kind and replay mark.

    Kept as alerts arrive, in their transaction (migration 0012, see
    :mod:`rollups`): ``/stats`` and the devices' ``alerts_24h`` sum these.
    """

    __tablename__ = 'alert_hours'
    __table_args__ = (Index('ix_alert_hours_device_hour', 'device_id', 'hour'),)

    hour: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey('devices.id'), primary_key=True)
    class_name: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    replay: Mapped[bool] = mapped_column(Boolean, primary_key=True)  # apart, as the alerts
    alerts: Mapped[int] = mapped_column(Integer)


class CountQuarter(Base):
    """
    Vehicles of one 15-minute bucket, device, line, direction, class and replay mark (0012).

    The sum of the ``traffic_counts`` rows whose period starts in the bucket;
    ``rows`` of them (the row goes when the last of them does). Hour and day
    buckets are sums of these.
    """

    __tablename__ = 'count_quarters'
    __table_args__ = (Index('ix_count_quarters_device_start', 'device_id', 'bucket_start'),)

    bucket_start: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey('devices.id'), primary_key=True)
    line: Mapped[str] = mapped_column(String(64), primary_key=True)
    direction: Mapped[str] = mapped_column(String(64), primary_key=True)
    class_name: Mapped[str] = mapped_column(String(64), primary_key=True)
    replay: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    vehicles: Mapped[int] = mapped_column(BigInteger)
    rows: Mapped[int] = mapped_column(Integer)


class CountCoverage(Base):
    """
    Seconds of counting a device reported in one bucket of 15 min, an hour or a day (0012).

    Each period adds what it covers of the bucket its start falls in (at
    most to the bucket's end); a read clips the sum to the bucket. Replayed
    periods are summed apart from live ones.
    """

    __tablename__ = 'count_coverage'
    __table_args__ = (Index('ix_count_coverage_device', 'device_id', 'bucket_s',
                            'bucket_start'),)

    bucket_s: Mapped[int] = mapped_column(Integer, primary_key=True)
    bucket_start: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey('devices.id'), primary_key=True)
    replay: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    seconds: Mapped[int] = mapped_column(BigInteger)
