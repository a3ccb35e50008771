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

"""Vehicle classes in an operator's scheme: labels, sizes against a car, lengths."""

from __future__ import annotations

from typing import List, Optional

import pytest

from vehicle_detection.core.counting.config import parse_geometry
from vehicle_detection.core.counting.schemes import ClassScheme, UK6_CLASSES
from vehicle_detection.core.counting.session import CountingSession
from vehicle_detection.core.events.geometry import Crossing
from vehicle_detection.core.events.vehicles import Box, Sighting

HEIGHT = 480.0


def box(width: float, height: float, bottom: float = 300.0, left: float = 100.0) -> Box:
    return (left, bottom - height, left + width, bottom)


def learnt(cars: int = 10, bottom: float = 300.0) -> ClassScheme:
    """Return a uk6 scheme that saw ``cars`` cars of 40 x 30 px passing row ``bottom``."""
    scheme = ClassScheme('uk6')
    for track in range(cars):
        scheme.observe(Sighting(track, 'car', 0.8, box(40 + track % 3, 30, bottom)), HEIGHT)
    return scheme


def test_labels_and_sizes_against_the_usual_car_give_uk6_classes() -> None:
    scheme = learnt()
    classify = scheme.classify
    assert classify('car', box(40, 30), HEIGHT) == 'car'
    assert classify('car', box(56, 40), HEIGHT) == 'van'  # sqrt(area) 1.6 x a car's
    assert classify('truck', box(46, 36), HEIGHT) == 'van'  # a pickup: "truck", car-sized
    assert classify('truck', box(80, 60), HEIGHT) == 'rigid_lorry'
    assert classify('truck', box(90, 130), HEIGHT) == 'articulated_lorry'
    assert classify('bus', box(90, 70), HEIGHT) == 'bus'
    # A "bus" no bigger than a car (the shared clip's pickup with a trailer) is not a bus.
    assert classify('bus', box(45, 33), HEIGHT) == 'unclassified'
    assert classify('motorcycle', box(15, 20), HEIGHT) == 'motorcycle'
    assert classify('bicycle', box(15, 20), HEIGHT) == 'unclassified'
    assert classify('person', box(15, 40), HEIGHT) == 'unclassified'


def test_without_cars_to_compare_only_a_car_is_classified() -> None:
    scheme = learnt(cars=4)  # fewer cars than the usual size needs
    assert scheme.classify('car', box(56, 40), HEIGHT) == 'car'
    assert scheme.classify('truck', box(80, 60), HEIGHT) == 'unclassified'
    assert scheme.classify('bus', box(90, 70), HEIGHT) == 'unclassified'
    # Cars far up the picture say nothing of the size of a vehicle near the bottom.
    assert learnt(bottom=100.0).classify('truck', box(80, 60, 460.0), HEIGHT) == 'unclassified'


def test_a_length_from_a_calibration_decides_over_the_box() -> None:
    scheme = ClassScheme('uk6')  # no cars seen: the length alone decides
    assert scheme.classify('car', box(40, 30), HEIGHT, length_m=4.4) == 'car'
    assert scheme.classify('car', box(40, 30), HEIGHT, length_m=5.9) == 'van'
    assert scheme.classify('truck', box(40, 30), HEIGHT, length_m=9.0) == 'rigid_lorry'
    assert scheme.classify('truck', box(40, 30), HEIGHT, length_m=16.5) == 'articulated_lorry'
    assert scheme.classify('bus', box(40, 30), HEIGHT, length_m=12.0) == 'bus'
    assert scheme.classify('bus', box(40, 30), HEIGHT, length_m=6.0) == 'van'  # a minibus
    assert scheme.classify('truck', box(80, 60), HEIGHT, length_m=float('nan')) == 'unclassified'


def test_coco_keeps_the_labels_and_an_unknown_scheme_is_refused() -> None:
    scheme = ClassScheme('coco')
    assert scheme.classify('truck', box(80, 60), HEIGHT) == 'truck'
    with pytest.raises(ValueError, match='uk6'):
        ClassScheme('fhwa13')
    assert len(UK6_CLASSES) == 7


def test_the_counting_session_counts_in_its_scheme_with_a_length_hook() -> None:
    lengths: List[Optional[float]] = []

    def length_of(crossing: Crossing) -> Optional[float]:
        lengths.append(None if crossing.class_name != 'truck' else 10.0)
        return lengths[-1]

    session = CountingSession(parse_geometry('bar 0,0.5 1,0.5 towards/away', ''), 60,
                              length_of=length_of)
    for step in range(30):  # a car and a lorry drive down across the bar (y = 240)
        y = 150.0 + 6 * step
        session.update([Sighting(1, 'car', 0.9, (100.0, y - 30, 140.0, y)),
                        Sighting(2, 'truck', 0.9, (300.0, y - 60, 380.0, y))], step / 10,
                       (640, 480))
    period = session.flush()[0]
    assert period.scheme == 'uk6' and lengths == [None, 10.0]
    assert period.counts == {('bar', 'towards', 'car'): 1, ('bar', 'towards', 'rigid_lorry'): 1}
