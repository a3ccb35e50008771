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
A bridge process for the kill -9 test: generates events into the outbox and uploads them.

    python bridge_driver.py FOLDER URL DEVICE TOTAL   (API key in VD_CLOUD_API_KEY)

Generates events until the outbox holds TOTAL of them (so restarts continue
where the last run stopped), then exits once every one is sent.
"""

from __future__ import annotations

from datetime import datetime, timezone
import os
import sys
import threading
import uuid

import numpy as np

from vehicle_detection.core.bridge.budget import DataBudget, SnapshotPlan
from vehicle_detection.core.bridge.outbox import Outbox
from vehicle_detection.core.bridge.snapshot import encode_snapshot
from vehicle_detection.core.bridge.upload_settings import UploadSettings
from vehicle_detection.core.bridge.uploader import Uploader
from vehicle_detection.wire import Alert, utc_iso


def main() -> int:
    """Run until TOTAL events exist and all are sent."""
    folder, url, device, total = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    outbox = Outbox(folder)
    budget = DataBudget(outbox, 0)
    settings = UploadSettings(url, os.environ['VD_CLOUD_API_KEY'], device, retry_delay=0.05,
                              upload_interval=0.2, health_interval=0.5, retry_max_delay=0.5)
    uploader = Uploader(settings, outbox, budget)
    uploader.start()
    image = np.random.default_rng(0).integers(0, 255, (120, 160, 3), np.uint8)
    jpeg = encode_snapshot(image, 160, 80, 100_000, SnapshotPlan(True, 1.0, 80))
    pause = threading.Event()
    while len(outbox.events()) < total:
        index = len(outbox.events())
        alert = Alert(str(uuid.uuid4()), device, 'cam0', utc_iso(datetime.now(timezone.utc)),
                      index, 'car', 0.9, (1.0, 2.0, 30.0, 40.0), 160, 120)
        outbox.enqueue(alert.to_json(), jpeg)
        uploader.wake()
        pause.wait(0.01)
    while outbox.stats().depth:
        pause.wait(0.05)
    uploader.stop()
    print('all sent', flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
