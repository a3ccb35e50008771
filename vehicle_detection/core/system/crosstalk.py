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
Two systems in one ROS domain feed each other: say so, naming the publishers.

A second run on the same machine and ``ROS_DOMAIN_ID`` (or a camera driver
left running next to ``vehicle-detection run``) publishes on the same image
topic and ``/detections``: every detector and bridge takes the other's
frames and detections, and nothing fails; alerts and counts just go wrong.
Each input topic of this package's nodes has one publisher; more is the sign.
"""

from __future__ import annotations

from typing import Sequence

EXPECTED_PUBLISHERS = 1  # of every input topic: the camera, or the detector
CROSSTALK_FIX = 'give each system its own ROS_DOMAIN_ID (or namespace)'


def crowded_topic(topic: str, publishers: Sequence[str], domain_id: int,
                  expected: int = EXPECTED_PUBLISHERS) -> str:
    """Say that ``topic`` has more ``publishers`` (node names) than expected; '' if not."""
    if len(publishers) <= expected:
        return ''
    return (f'{topic} has {len(publishers)} publishers ({", ".join(sorted(publishers))}), '
            f'{expected} expected: another system in ROS domain {domain_id}? its frames or '
            'detections mix with these')
