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

"""ament_python package: the edge nodes, the tools and the cloud server."""

from glob import glob
import os

from setuptools import find_packages, setup

PACKAGE = 'vehicle_detection'


def share(folder: str) -> tuple:
    """Install every file of ``folder`` under ``share/<package>/<folder>``."""
    files = [f for f in glob(os.path.join(folder, '**', '*'), recursive=True)
             if os.path.isfile(f)]
    return os.path.join('share', PACKAGE, folder), files


setup(
    name=PACKAGE,
    version='0.1.0',
    packages=find_packages(exclude=['test', 'test.*', 'bench']),
    include_package_data=True,
    package_data={PACKAGE: ['ros/*.xml', 'cloud/server/static/*', 'cloud/server/migrations/*.ini',
                            'cloud/server/migrations/*.mako']},
    data_files=[
        ('share/ament_index/resource_index/packages', [f'resource/{PACKAGE}']),
        (f'share/{PACKAGE}', ['package.xml']),
        share('launch'),
        share('config'),
    ],
    install_requires=['setuptools'],
    extras_require={'gpu': ['tensorrt', 'pycuda']},
    zip_safe=True,
    maintainer='vehicle_detection maintainers',
    maintainer_email='maintainers@vehicle-detection.invalid',
    description='Road-side vehicle detection with ROS 2, reported once to a cloud server.',
    license='Apache-2.0',
    tests_require=['pytest'],
    entry_points={
        'console_scripts': [
            'camera_node = vehicle_detection.nodes.camera_node:main',
            'detector_node = vehicle_detection.nodes.detector_node:main',
            'cloud_bridge_node = vehicle_detection.nodes.cloud_bridge_node:main',
            'vehicle-detection = vehicle_detection.cli.main:main',
            'vehicle-detection-cloud = vehicle_detection.cloud.server.cli:main',
        ],
    },
)
