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
Vehicle events, in one home (no ROS): what is seen, which vehicle it is, what happened.

The vocabulary (:mod:`vehicles`), the one rule that tells a vehicle re-found
under a new track (:mod:`reid`), lines and zones and who crosses them
(:mod:`geometry`), one event type and the rule interface (:mod:`event`),
and the rules that turn tracked vehicles into events (alert policy, zone
dwell, wrong way: :mod:`rules`).
"""
