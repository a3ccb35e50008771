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

"""The QoS profiles of the package's topics, chosen once, on purpose."""

from __future__ import annotations

from rclpy.qos import (
    qos_profile_sensor_data, QoSDurabilityPolicy, QoSHistoryPolicy, QoSProfile,
    ReliabilityPolicy)

RELIABILITY = {'best_effort': ReliabilityPolicy.BEST_EFFORT,
               'reliable': ReliabilityPolicy.RELIABLE}


def image_qos(depth: int, reliability: str = 'best_effort') -> QoSProfile:
    """
    Return the QoS of image topics: sensor data (keep last ``depth``, volatile).

    Best effort by default: a late frame is worth nothing, and a best-effort
    subscription hears reliable and best-effort cameras alike. ``reliable``
    hears only reliable publishers but gets their large frames whole (see the
    ``image_reliability`` parameter).
    """
    return QoSProfile(depth=depth, reliability=RELIABILITY[reliability],
                      durability=qos_profile_sensor_data.durability,
                      history=qos_profile_sensor_data.history)


def reliable_qos(depth: int) -> QoSProfile:
    """Return the QoS of small messages that each matter: reliable, keep last ``depth``."""
    return QoSProfile(depth=depth, reliability=ReliabilityPolicy.RELIABLE,
                      durability=QoSDurabilityPolicy.VOLATILE,
                      history=QoSHistoryPolicy.KEEP_LAST)


def latched_qos(depth: int) -> QoSProfile:
    """Return the QoS of a status kept for a late subscriber: reliable, transient local."""
    return QoSProfile(depth=depth, reliability=ReliabilityPolicy.RELIABLE,
                      durability=QoSDurabilityPolicy.TRANSIENT_LOCAL,
                      history=QoSHistoryPolicy.KEEP_LAST)


#: detections, diagnostics: small and each one matters, a short queue
DETECTIONS_QOS = reliable_qos(10)

#: traffic counts: reliable, and the latest kept for a late subscriber (``ros2 topic echo``)
COUNTS_QOS = latched_qos(1)

#: a recorder of the counts (``validate record``): a queue deep enough that the latest status
#: from before the window (what the totals start from) is not replaced by the next one before
#: the executor takes it
COUNTS_RECORDER_QOS = latched_qos(100)
