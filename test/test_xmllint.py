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

"""ament_xmllint over package.xml (validated against the package format 3 schema)."""

import shutil

import pytest
from ament_xmllint.main import main


@pytest.mark.linter
@pytest.mark.xmllint
def test_xmllint() -> None:
    """package.xml is well formed and valid."""
    assert shutil.which('xmllint'), 'xmllint is missing: apt-get install libxml2-utils'
    rc = main(argv=['package.xml'])
    assert rc == 0, 'Found errors'
