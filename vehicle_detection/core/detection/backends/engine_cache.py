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

"""Where a built TensorRT engine is cached, keyed so that a stale engine is never loaded."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

PRECISIONS = ('fp16', 'fp32', 'int8')


def file_digest(path: str, chunk: int = 1 << 20) -> str:
    """Return the SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, 'rb') as stream:
        while block := stream.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def engine_key(model_sha256: str, trt_version: str, gpu_name: str, precision: str) -> str:
    """Return the cache key: an engine is valid for one model, TensorRT, GPU and precision."""
    if precision not in PRECISIONS:
        raise ValueError(f'precision {precision!r} is not one of {", ".join(PRECISIONS)}')
    text = '\n'.join((model_sha256, trt_version, gpu_name.strip(), precision))
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def engine_path(cache_dir: str, model_path: str, key: str, precision: str) -> Path:
    """Return the engine file for ``model_path`` under ``cache_dir``."""
    stem = Path(model_path).stem
    return Path(os.path.expanduser(cache_dir)) / f'{stem}.{precision}.{key}.engine'
