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

"""ament_xmllint over package.xml, validated against the package format 3 schema."""

from pathlib import Path
import shutil

from ament_xmllint.main import main
import pytest

SCHEMAS = Path(__file__).resolve().parent / 'schemas'


@pytest.mark.linter
@pytest.mark.xmllint
def test_xmllint(monkeypatch: pytest.MonkeyPatch) -> None:
    """package.xml is well formed and valid against its declared schema."""
    assert shutil.which('xmllint'), 'xmllint is missing: apt-get install libxml2-utils'
    # The schema URL in package.xml resolves to a local file: no network here.
    monkeypatch.setenv('XML_CATALOG_FILES', str(SCHEMAS / 'catalog.xml'))
    rc = main(argv=['package.xml'])
    assert rc == 0, 'Found errors'


def test_package_xml_parses_as_format_3() -> None:
    """catkin_pkg (what rosdep and colcon use) reads the manifest without warnings."""
    from catkin_pkg.package import parse_package
    warnings: list = []
    package = parse_package(str(SCHEMAS.parents[1] / 'package.xml'), warnings=warnings)
    assert package.package_format == 3 and package.name == 'vehicle_detection'
    assert not warnings, warnings
    exec_deps = {dep.name for dep in package.exec_depends}
    assert {'rclpy', 'sensor_msgs', 'std_msgs', 'vision_msgs', 'diagnostic_msgs',
            'std_srvs'} <= exec_deps
