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
Cloud bridge node: ``/detections`` + images in, one alert per vehicle to the cloud out.

It also counts the tracked vehicles on the configured lines and zones: each
period's counts go to the cloud through the outbox, a vehicle stopped in a
zone goes as a ``stopped_vehicle`` alert, and the running counts are
published on ``traffic_counts`` as JSON in a ``std_msgs/String``: the counts
are a table (line x direction x class) no standard message holds, and JSON
reads well in ``ros2 topic echo`` and parses anywhere.
"""

from __future__ import annotations

import functools
import json
import queue
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
from rclpy.context import Context
from rclpy.node import Node
from std_msgs.msg import String
from std_srvs.srv import Trigger

from vehicle_detection.core.bridge.budget import DataBudget
from vehicle_detection.core.bridge.config import (
    BRIDGE_PARAMS, BridgeSettings, insecure_url, resolve_api_key)
from vehicle_detection.core.bridge.link import LinkState, LinkStats
from vehicle_detection.core.bridge.outbox import Outbox
from vehicle_detection.core.bridge.policy import AlertDecision, AlertPolicy, Sighting
from vehicle_detection.core.bridge.recorder import AlertRecorder, MB
from vehicle_detection.core.bridge.run_summary import run_figures, RunFigures
from vehicle_detection.core.bridge.snapshot import FrameRing
from vehicle_detection.core.bridge.system_health import system_figures
from vehicle_detection.core.bridge.uploader import Uploader, UploadSettings
from vehicle_detection.core.counting.config import parse_geometry
from vehicle_detection.core.counting.session import CountingSession, FrameCounts, PeriodCounts
from vehicle_detection.core.system.log_files import folder_bytes, ros_log_dir
from vehicle_detection.ros.detection_msgs import to_sightings
from vehicle_detection.ros.diagnostics import DiagnosticsPublisher, ERROR, OK, WARN
from vehicle_detection.ros.image_conv import ImageEncodingError, stamp_to_ns
from vehicle_detection.ros.intra_process import ImageInput, ReceivedImage
from vehicle_detection.ros.parameters import DeclaredParameters
from vehicle_detection.ros.qos import COUNTS_QOS, DETECTIONS_QOS, image_qos
from vehicle_detection.ros.spin import run_nodes
from vision_msgs.msg import Detection2DArray

FRAME_WAIT_S = 1.0  # longest wait of the writer for an image that lags its detections
STILL_FRAME_NS = 2 * 10**9  # a stopped vehicle's snapshot may come from this near its time
SHUTDOWN_DRAIN_S = 5.0  # at a stop, what was just queued gets this long to be sent


class CloudBridgeNode(Node):
    """Turns detections into alerts, queues them durably, and uploads them off-thread."""

    def __init__(self, context: Optional[Context] = None,
                 parameter_overrides: Optional[List[Any]] = None) -> None:
        super().__init__('cloud_bridge_node', context=context,
                         parameter_overrides=parameter_overrides)
        self.params = DeclaredParameters(
            self, BRIDGE_PARAMS, on_change=self._apply,
            change_check=lambda v: insecure_url(v['api_base_url'], v['allow_insecure_http']))
        settings = self.settings
        self._started = time.time()
        self.run_figures: Optional[RunFigures] = None  # set by close()
        self._system: Dict[str, Any] = {}  # last CPU/memory/GPU reading (health thread)
        self._problem = ''
        try:
            api_key, self._key_source = resolve_api_key(self.params.values)
        except ValueError as error:
            api_key, self._key_source, self._problem = '', 'nowhere', str(error)
        insecure = insecure_url(settings.api_base_url, settings.allow_insecure_http)
        if insecure:  # nothing is sent; events are kept until the URL is fixed
            api_key, self._problem = '', insecure
        self.outbox = Outbox(settings.data_dir, int(settings.max_storage_mb * MB),
                             settings.snapshot_dir, settings.history_days,
                             int(settings.history_mb * MB))
        self.budget = DataBudget(self.outbox, int(settings.monthly_budget_mb * MB))
        self.recorder = AlertRecorder(self.outbox, self.budget)  # the writer thread's
        self.policy = AlertPolicy(
            settings.min_track_hits, settings.track_cooldown, settings.class_cooldown,
            min_alert_score=settings.min_alert_score,
            snapshot_window_s=settings.snapshot_window)
        self.frame_ring = FrameRing(settings.frame_buffer)
        self.counting = self._counting_session(settings)
        self._frame_size: Optional[Tuple[int, int]] = None  # of the last image: for fractions
        self._counting_problem = ''  # why the last detections could not be counted
        self.uploader = Uploader(self._upload_settings(api_key), self.outbox, self.budget,
                                 self.health_figures)
        if settings.enabled and api_key:
            self.uploader.start()
        elif settings.enabled:
            self._problem = self._problem or (
                'no API key: set VD_CLOUD_API_KEY or api_key_file; events are kept locally')
        # Encoding and the fsynced outbox write happen here, never on the executor.
        self._events: 'queue.Queue[Optional[Callable[[], None]]]' = queue.Queue(maxsize=1000)
        self._writer = threading.Thread(target=self._write_events, daemon=True,
                                        name='outbox-writer')
        self._writer.start()
        self._images = ImageInput(self, settings.image_topic,
                                  image_qos(2, settings.image_reliability), self._on_image)
        self.create_subscription(Detection2DArray, 'detections', self._on_detections,
                                 DETECTIONS_QOS)
        self._counts_pub = self.create_publisher(String, 'traffic_counts', COUNTS_QOS)
        self.create_service(Trigger, '~/health_check', self._health_check)
        self._diagnostics = DiagnosticsPublisher(self, hardware_id=settings.api_base_url)
        self.create_timer(settings.diagnostics_period, self._report)
        self.get_logger().info(
            f'cloud bridge ready: {settings.api_base_url} as {settings.device_id} (key from '
            f'{self._key_source}), outbox in {settings.data_dir}'
            + (f'; {self._problem}' if self._problem else ''))

    def _upload_settings(self, api_key: str) -> UploadSettings:
        settings = self.settings
        return UploadSettings(
            settings.api_base_url, api_key, settings.device_id,
            enable_alert_upload=settings.enable_alert_upload,
            enable_image_upload=settings.enable_image_upload,
            upload_interval=settings.upload_interval, retry_attempts=settings.retry_attempts,
            retry_delay=settings.retry_delay, heartbeat_interval=settings.heartbeat_interval,
            health_interval=settings.health_interval)

    @staticmethod
    def _counting_session(settings: BridgeSettings) -> CountingSession:
        geometry = parse_geometry(settings.counting_lines, settings.counting_zones)
        return CountingSession(geometry, settings.count_period)

    @property
    def settings(self) -> BridgeSettings:
        """Return the current parameter values, typed."""
        return self.params.typed(BridgeSettings)

    def _apply(self, values: Dict[str, Any], previous: Dict[str, Any]) -> None:
        settings = BridgeSettings(**values)
        self.policy.min_track_hits = settings.min_track_hits
        self.policy.track_cooldown_s = settings.track_cooldown
        self.policy.class_cooldown_s = settings.class_cooldown
        self.policy.min_alert_score = settings.min_alert_score
        self.policy.snapshot_window_s = settings.snapshot_window
        self.outbox.max_storage_bytes = int(settings.max_storage_mb * MB)
        self.outbox.history_days = settings.history_days
        self.outbox.history_bytes = int(settings.history_mb * MB)
        self.budget.budget = int(settings.monthly_budget_mb * MB)
        self.uploader.settings = self._upload_settings(self.uploader.settings.api_key)
        if (settings.counting_lines, settings.counting_zones) != (
                previous['counting_lines'], previous['counting_zones']):
            self._queue_counts(self.counting.flush())  # the open period, by the old lines
            self.counting = self._counting_session(settings)
            self._publish_counts()

    # -- executor side: cheap work only ----------------------------------------------------
    def _on_image(self, image: ReceivedImage) -> None:
        # On the executor, or on the camera's thread for a camera in this process.
        try:
            frame = image.bgr()
            self.frame_ring.add(stamp_to_ns(image.header.stamp), frame)
            self._frame_size = (frame.shape[1], frame.shape[0])
        except ImageEncodingError as error:
            self.get_logger().warning(f'image refused: {error}', throttle_duration_sec=10.0)

    def _on_detections(self, msg: Detection2DArray) -> None:
        stamp = stamp_to_ns(msg.header.stamp)
        sightings = to_sightings(msg)
        self._queue_alerts(self.policy.update(sightings, stamp / 1e9, stamp))
        if self.counting.geometry:
            self._counting_problem = self._why_not_counting(sightings)
            size = self._frame_size or (0, 0)
            if not (self.counting.geometry.needs_size and self._frame_size is None):
                self._count(self.counting.update(
                    [(s.track_id, s.class_name, s.bbox) for s in sightings], stamp / 1e9,
                    size), sightings, stamp)

    def _why_not_counting(self, sightings: List[Sighting]) -> str:
        """Say why these detections cannot be counted ('' when they can)."""
        if self.counting.geometry.needs_size and self._frame_size is None:
            return (f'counting waits for an image on {self.settings.image_topic}: lines in '
                    'fractions of the image need its size')
        if sightings and all(s.track_id < 0 for s in sightings):
            return 'counting needs track ids: set tracking on the detector node'
        return ''

    def _count(self, counted: FrameCounts, sightings: List[Sighting], stamp: int) -> None:
        self._queue_counts(counted.closed)
        by_track = {s.track_id: s for s in sightings}
        for dwell in counted.dwells:  # a stopped vehicle: an alert with this frame's snapshot
            sighting = by_track[dwell.track_id]
            self.get_logger().info(f'{sighting.class_name} {dwell.track_id} stopped in zone '
                                   f'{dwell.zone} for {dwell.stamp - dwell.since:.0f} s')
            self._queue(functools.partial(self._write_alert, sighting, stamp,
                                          self.frame_ring.get(stamp), dwell.zone))
        if counted.crossings or counted.closed:
            self._publish_counts()

    def _publish_counts(self) -> None:
        status = {'device_id': self.settings.device_id, 'camera_id': self.settings.camera_id,
                  **self.counting.status()}
        self._counts_pub.publish(String(data=json.dumps(status)))

    def _queue_alerts(self, decisions: List[AlertDecision]) -> None:
        for decision in decisions:
            stamp = int(decision.frame)  # type: ignore[call-overload]  # the key given above
            self._queue(functools.partial(self._write_alert, decision.sighting, stamp,
                                          self.frame_ring.get(stamp), None))

    def _queue_counts(self, periods: List[PeriodCounts]) -> None:
        for period in periods:
            self._queue(functools.partial(self._write_counts, period))

    def _queue(self, job: Callable[[], None]) -> None:
        try:
            self._events.put_nowait(job)
        except queue.Full:
            self.get_logger().error('outbox writer is behind: event dropped',
                                    throttle_duration_sec=5.0)

    # -- writer thread -------------------------------------------------------------------------
    def _write_events(self) -> None:
        while (job := self._events.get()) is not None:
            job()

    def _write_alert(self, sighting: Sighting, stamp_ns: int, frame: Optional[np.ndarray],
                     zone: Optional[str]) -> None:
        if frame is None:  # its image may still be on the way (another topic)
            frame = self.frame_ring.wait_for(stamp_ns, FRAME_WAIT_S)
        if frame is None and zone is not None:  # standing still: a frame near it shows it too
            frame = self.frame_ring.nearest(stamp_ns, STILL_FRAME_NS)
        if frame is None:
            self.get_logger().warning(f'no frame with stamp {stamp_ns} for the snapshot of '
                                      f'track {sighting.track_id}; alert goes without one')
        self._write(f'alert of track {sighting.track_id}', lambda: self.recorder.record(
            self.settings, sighting, stamp_ns, frame, zone))

    def _write_counts(self, period: PeriodCounts) -> None:
        self._write('traffic counts', lambda: self.recorder.record_counts(self.settings, period))

    def _write(self, what: str, record: Callable[[], None]) -> None:
        try:
            record()
        except ValueError as error:  # the server would refuse it: never queue it
            self.get_logger().error(f'{what} not recorded: {error}')
            return
        except OSError as error:
            self.get_logger().error(f'cannot record {what}: {error}')
            return
        self.uploader.wake()

    # -- health ------------------------------------------------------------------------------
    def health_figures(self) -> Dict[str, Any]:
        """
        Return the figures of a heartbeat, reading this box's CPU/GPU/temperature.

        Called from the uploader's health thread: reading the GPU may run
        ``nvidia-smi``. /diagnostics and ~/health_check reuse the last reading.
        """
        self._system = system_figures()
        return {**self._link_figures(), **self._system}

    def _link_figures(self) -> Dict[str, Any]:
        stats, link, budget = self.outbox.stats(), self.uploader.stats, self.budget.figures()
        figures: Dict[str, Any] = {
            'link_state': str(link.link_state), 'queue_depth': stats.depth,
            'oldest_unsent_s': round(stats.oldest_unsent_s, 1),
            'upload_success_rate': round(link.success_rate, 4), 'retries': link.retries,
            'evictions': stats.evictions, 'held_events': stats.held,
            'bytes_month': budget.used,
            'projected_bytes_month': budget.projected, 'budget_bytes': budget.budget,
            **self._disk_figures()}
        return figures

    def _disk_figures(self) -> Dict[str, Any]:
        """Return the disk used on this box: outbox database, waiting snapshots, ROS logs."""
        disk = self.outbox.disk_usage()
        return {'outbox_db_bytes': disk.database, 'snapshot_bytes': disk.snapshots,
                'log_bytes': folder_bytes(ros_log_dir())}

    def _summary(self) -> Tuple[bytes, str, Dict[str, Any]]:
        figures = {**self._link_figures(), **self._system}
        link = self.uploader.stats
        figures.update({f'counted_{line}_{direction}': count for (line, direction), count
                        in self.counting.direction_totals().items()})
        figures.update(alerts_this_run=self.recorder.recorded, key_source=self._key_source,
                       history_pruned=self.outbox.pruned,
                       permanent_failures=link.permanent_failures,
                       missing_snapshots=link.missing_snapshots, last_error=link.last_error)
        level, message = self._state(link, figures)
        if level == OK and self._counting_problem:
            level, message = WARN, self._counting_problem
        return level, message, figures

    def _state(self, link: LinkStats, figures: Dict[str, Any]) -> Tuple[bytes, str]:
        """Return the level and message of the link and the outbox."""
        if self._problem or link.link_state == LinkState.UNAUTHORIZED:
            return ERROR, self._problem or link.last_error
        if not self.settings.enabled:
            return OK, 'cloud upload disabled; events recorded locally'
        if link.link_state == LinkState.DOWN:
            return WARN, f'cloud unreachable, {figures["queue_depth"]} queued'
        if link.link_state == LinkState.REDIRECTED:
            return ERROR, link.last_error
        if link.filed_as:
            return WARN, (f"the server files alerts under {link.filed_as!r}, the API key's "
                          f'device, not device_id {self.settings.device_id!r}')
        if figures['held_events']:
            return WARN, (f"{figures['held_events']} events set aside after repeated server "
                          f'errors (tried again within the hour): {link.last_error}')
        return OK, f'link {link.link_state}, {figures["queue_depth"]} queued'

    def _report(self) -> None:
        level, message, figures = self._summary()
        self._diagnostics.publish('cloud_bridge', level, message, figures)

    def _health_check(self, _request: Trigger.Request, response: Trigger.Response
                      ) -> Trigger.Response:
        level, message, figures = self._summary()
        response.success = level == OK
        response.message = message + '; ' + ', '.join(f'{k}={v}' for k, v in figures.items())
        return response

    def close(self) -> None:
        """Finish writing queued events, stop uploading, close the outbox."""
        self._images.close()
        self._queue_alerts(self.policy.flush())  # confirmed vehicles still in their window
        self._queue_counts(self.counting.flush())  # the period in progress, as far as it got
        self._events.put(None)
        self._writer.join(10.0)
        link_up = self.uploader.stats.link_state == LinkState.UP
        self.uploader.stop(drain_s=SHUTDOWN_DRAIN_S if link_up else 0.0)
        self.run_figures = run_figures(self.outbox, self._started)
        self.outbox.close()


def main(args: Optional[List[str]] = None) -> int:
    """Entry point of ``ros2 run vehicle_detection cloud_bridge_node``."""
    return run_nodes([CloudBridgeNode], args)


if __name__ == '__main__':
    sys.exit(main())
