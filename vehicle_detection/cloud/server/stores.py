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

"""Open the snapshot store a ``--storage`` value names: a local folder or an S3 bucket."""

from __future__ import annotations

from vehicle_detection.cloud.server.storage import ImageStore, LocalImageStore, S3_SCHEME


def open_store(location: str) -> ImageStore:
    """
    Return the store that a ``--storage`` value names.

    ``s3://bucket/prefix`` is an S3-compatible object store (endpoint, region
    and credentials from the usual AWS variables or config files); anything
    else is a local folder.
    """
    if location.startswith(S3_SCHEME):
        from vehicle_detection.cloud.server.object_store import S3ImageStore  # boto3: only here
        return S3ImageStore.from_url(location)
    return LocalImageStore(location)
