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

Every frame's tracked vehicles go through the event rules
(:mod:`vehicle_detection.core.events.rules`: one alert per vehicle, a
vehicle stopped in a zone, a wrong-way driver), each event to the outbox as
an alert of its kind. The node also counts the vehicles on the configured
lines: each period's counts go to the cloud through the outbox, and the
running counts are published on ``traffic_counts`` as JSON in a
``std_msgs/String``: the counts are a table (line x direction x class) no
standard message holds, and JSON reads well in ``ros2 topic echo`` and
parses anywhere.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any, Dict, List, Optional, Tuple

from rclpy.context import Context
from rclpy.node import Node
from rclpy.parameter import Parameter
from std_msgs.msg import String
from std_srvs.srv import Trigger

from vehicle_detection.core.bridge import health
from vehicle_detection.core.bridge.budget import DataBudget
from vehicle_detection.core.bridge.config import (
    BRIDGE_PARAMS, BridgeSettings, insecure_url, resolve_api_key, speed_trap_problem)
from vehicle_detection.core.bridge.config_sync import ConfigSync
from vehicle_detection.core.bridge.link import LinkState
from vehicle_detection.core.bridge.outbox import Outbox
from vehicle_detection.core.bridge.outbox_owner import OutboxInUse, OutboxOwner
from vehicle_detection.core.bridge.recorder import AlertRecorder, MB
from vehicle_detection.core.bridge.remote_config import (
    changes_for, ConfigFile, ConfigFileDamaged, ConfigRecord, ConfigRefused, RemoteConfig)
from vehicle_detection.core.bridge.run_summary import run_figures, RunFigures
from vehicle_detection.core.bridge.snapshot import FrameRing
from vehicle_detection.core.bridge.system_health import system_figures
from vehicle_detection.core.bridge.upload_settings import UploadSettings
from vehicle_detection.core.bridge.uploader import Uploader
from vehicle_detection.core.bridge.watch import TrafficWatch
from vehicle_detection.core.bridge.writer import EventWriter
from vehicle_detection.core.counting.quality import frame_light
from vehicle_detection.core.events.event import VehicleEvent
from vehicle_detection.core.params import slice_of
from vehicle_detection.ros.detection_msgs import to_sightings
from vehicle_detection.ros.diagnostics import DiagnosticsPublisher, ERROR, OK, WARN
from vehicle_detection.ros.graph_watch import PublisherWatch
from vehicle_detection.ros.image_conv import ImageEncodingError, stamp_to_ns
from vehicle_detection.ros.intra_process import ImageInput, ReceivedImage
from vehicle_detection.ros.parameters import DeclaredParameters
from vehicle_detection.ros.qos import COUNTS_QOS, DETECTIONS_QOS, image_qos
from vehicle_detection.ros.spin import run_nodes
from vision_msgs.msg import Detection2DArray

SHUTDOWN_DRAIN_S = 5.0  # at a stop, what was just queued gets this long to be sent
REMOTE_APPLY_WAIT_S = 10.0  # the health thread waits this long for the executor to apply
LEVELS = {health.OK: OK, health.WARN: WARN, health.ERROR: ERROR}


class CloudBridgeNode(Node):
    """Turns detections into alerts, queues them durably, and uploads them off-thread."""

    def __init__(self, context: Optional[Context] = None,
                 parameter_overrides: Optional[List[Any]] = None) -> None:
        super().__init__('cloud_bridge_node', context=context,
                         parameter_overrides=parameter_overrides)
        self.params = DeclaredParameters(
            self, BRIDGE_PARAMS, cross_check=speed_trap_problem, on_change=self._apply,
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
        self._owner = OutboxOwner(settings.data_dir)
        try:  # before the outbox is opened: another bridge's queue is never touched
            self._owner.claim()
        except OutboxInUse as error:  # the runner prints it and exits 1
            self.get_logger().fatal(str(error))
            raise
        self.outbox = Outbox(settings.data_dir, int(settings.max_storage_mb * MB),
                             settings.snapshot_dir, settings.history_days,
                             int(settings.history_mb * MB))
        self.budget = DataBudget(self.outbox, int(settings.monthly_budget_mb * MB))
        self.recorder = AlertRecorder(self.outbox, self.budget)  # the writer thread's
        self.watch = TrafficWatch(settings)  # the event rules and the line counts
        self.frame_ring = FrameRing(settings.frame_buffer)
        self.uploader = Uploader(slice_of(UploadSettings, settings, api_key=api_key),
                                 self.outbox, self.budget, self.health_figures)
        if settings.enabled and not api_key:
            self._problem = self._problem or (
                'no API key: set VD_CLOUD_API_KEY or api_key_file; events are kept locally')
        self.writer = EventWriter(self.recorder, self.frame_ring, lambda: self.settings,
                                  self.uploader.wake, self.get_logger())
        self._images = ImageInput(self, settings.image_topic,
                                  image_qos(2, settings.image_reliability), self._on_image)
        self.create_subscription(Detection2DArray, 'detections', self._on_detections,
                                 DETECTIONS_QOS)
        self._counts_pub = self.create_publisher(String, 'traffic_counts', COUNTS_QOS)
        self._input_watch = PublisherWatch(self, (settings.image_topic, 'detections'))
        self.create_service(Trigger, '~/health_check', self._health_check)
        self._diagnostics = DiagnosticsPublisher(self, hardware_id=settings.api_base_url)
        self.create_timer(settings.diagnostics_period, self._report)
        self.remote = self._start_remote_config()  # the node is whole: its values may change
        self.uploader.after_heartbeat = lambda exchange, answer: self.remote.after_heartbeat(
            exchange, self.settings.device_id, answer)
        if settings.enabled and api_key:
            self.uploader.start()
        self.get_logger().info(
            f'cloud bridge ready: {settings.api_base_url} as {settings.device_id} (key from '
            f'{self._key_source}), outbox in {settings.data_dir}'
            + ('; replay: alerts and counts are marked as replays' if settings.replay else '')
            + (f'; {self._problem}' if self._problem else ''))

    @property
    def settings(self) -> BridgeSettings:
        """Return the current parameter values, typed."""
        return self.params.typed(BridgeSettings)

    def _apply(self, values: Dict[str, Any], previous: Dict[str, Any]) -> None:
        settings = BridgeSettings(**values)
        for period in self.watch.configure(settings):  # new lines: the open period, as it was
            self.writer.counts(period)
        self.outbox.max_storage_bytes = int(settings.max_storage_mb * MB)
        self.outbox.history_days = settings.history_days
        self.outbox.history_bytes = int(settings.history_mb * MB)
        self.budget.budget = int(settings.monthly_budget_mb * MB)
        self.uploader.settings = slice_of(UploadSettings, settings,
                                          api_key=self.uploader.settings.api_key)
        if (settings.counting_lines, settings.counting_zones, settings.speed_calibration) != (
                previous['counting_lines'], previous['counting_zones'],
                previous['speed_calibration']):
            self._warn(self.watch.recheck())
            self._publish_counts()

    # -- configuration from the dashboard ----------------------------------------------------
    def _start_remote_config(self) -> ConfigSync:
        """Apply the configuration kept from the last run (unless remote_config is false)."""
        self._local_values = dict(self.params.values)  # what a version leaving one out restores
        self._remote_request: Optional[Tuple[RemoteConfig, threading.Event, Dict[str, Any]]] = None
        self._remote_lock = threading.Lock()
        self._remote_wake = self.create_guard_condition(self._apply_remote_request)
        store, enabled = ConfigFile(self.settings.data_dir), self.settings.remote_config
        try:
            record = store.load()
        except ConfigFileDamaged as error:  # the server's latest version is fetched again
            self.get_logger().warning(f'configuration from the server forgotten: {error}')
            record = ConfigRecord()
        kept = record.applied if enabled else None
        if record.state == 'refused' or not enabled:
            record.version = 0  # ask again: this software (or remote_config) may differ now
        record.applied = None
        if kept is not None:
            reason = self._set_remote(kept, None)
            if reason is None:
                record.applied = kept
                self.get_logger().info(f'configuration version {kept.version} from the server '
                                       f'applied (kept from the last run in {store.path})')
            else:
                record.outcome(kept.version, reason)
                self.get_logger().warning(f'configuration version {kept.version} from the '
                                          f'server no longer applies: {reason}')
        return ConfigSync(store, record, enabled, self._apply_remote, self.get_logger())

    def _apply_remote(self, config: RemoteConfig) -> Optional[str]:
        """Have the executor apply ``config`` (health thread); return why it was refused."""
        done: threading.Event = threading.Event()
        verdict: Dict[str, Any] = {}
        with self._remote_lock:
            self._remote_request = (config, done, verdict)
        self._remote_wake.trigger()
        if not done.wait(REMOTE_APPLY_WAIT_S):
            raise TimeoutError(f'configuration {config.version} not applied in time')
        return verdict['reason']

    def _apply_remote_request(self) -> None:
        with self._remote_lock:
            request, self._remote_request = self._remote_request, None
        if request is not None:
            config, done, verdict = request
            verdict['reason'] = self._set_remote(config, self.remote.record.applied)
            done.set()

    def _set_remote(self, config: RemoteConfig, previous: Optional[RemoteConfig]
                    ) -> Optional[str]:
        """Set ``config``'s parameters all at once, as ``ros2 param set`` would; why not."""
        try:
            changes = changes_for(config, previous, self._local_values, BRIDGE_PARAMS)
        except ConfigRefused as error:
            return str(error)
        if not changes:
            return None
        result = self.set_parameters_atomically(
            [Parameter(name, value=value) for name, value in changes.items()])
        return None if result.successful else (result.reason or 'refused by the node')

    # -- executor side: cheap work only ----------------------------------------------------
    def _on_image(self, image: ReceivedImage) -> None:
        # On the executor, or on the camera's thread for a camera in this process.
        try:
            frame = image.bgr()
            stamp_ns = stamp_to_ns(image.header.stamp)
            self.frame_ring.add(stamp_ns, frame)
            # Two shares over ~10 000 sampled pixels: cheap enough for the executor.
            self._warn(self.watch.on_image((frame.shape[1], frame.shape[0]), stamp_ns,
                                           frame_light(frame)))
        except ImageEncodingError as error:
            self.get_logger().warning(f'image refused: {error}', throttle_duration_sec=10.0)

    def _on_detections(self, msg: Detection2DArray) -> None:
        watched = self.watch.update(to_sightings(msg), stamp_to_ns(msg.header.stamp))
        self._record(watched.events)  # takes their frames first: the ring may let them go
        self.frame_ring.hold(watched.held)
        for period in watched.closed:
            self.writer.counts(period)
        if watched.counted:
            self._publish_counts()

    def _record(self, events: List[VehicleEvent]) -> None:
        for event in events:
            if event.kind != 'vehicle':
                places = ', '.join(f'{k} {v}' for k, v in event.places.items())
                self.get_logger().info(f'{event.kind}: {event.sighting.class_name} '
                                       f'{event.sighting.track_id} ({places})')
            self.writer.event(event)

    def _warn(self, warning: str) -> None:
        if warning:  # said once; /diagnostics repeats it while it lasts
            self.get_logger().warning(warning)

    def _publish_counts(self) -> None:
        status = {'device_id': self.settings.device_id, 'camera_id': self.settings.camera_id,
                  **self.watch.status()}
        self._counts_pub.publish(String(data=json.dumps(status)))

    # -- health ------------------------------------------------------------------------------
    def health_figures(self) -> Dict[str, Any]:
        """
        Return the figures of a heartbeat, reading this box's CPU/GPU/temperature.

        Called from the uploader's health thread: reading the GPU may run
        ``nvidia-smi``. /diagnostics and ~/health_check reuse the last reading.
        """
        self._system = system_figures()
        return {**health.link_figures(self.outbox, self.uploader.stats, self.budget),
                **self._system}

    def _summary(self) -> Tuple[bytes, str, Dict[str, Any]]:
        link = self.uploader.stats
        figures = {**health.link_figures(self.outbox, link, self.budget), **self._system}
        figures.update({f'counted_{line}_{direction}': count for (line, direction), count
                        in self.watch.direction_totals().items()})
        record = self.remote.record
        figures.update(config_version=record.version, config_state=record.state or 'none')
        figures.update(alerts_this_run=self.recorder.recorded, key_source=self._key_source,
                       history_pruned=self.outbox.pruned, replay=self.settings.replay,
                       permanent_failures=link.permanent_failures,
                       missing_snapshots=link.missing_snapshots, last_error=link.last_error)
        verdict, message = health.link_verdict(self._problem, link, self.settings, figures)
        warnings = '; '.join(filter(None, (self.watch.problem, self._input_watch.check())))
        if warnings:  # after the link's state, whatever it is: both may need fixing
            verdict, message = (health.WARN if verdict == health.OK else verdict), (
                f'{message}; {warnings}')
        return LEVELS[verdict], message, figures

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
        events, periods = self.watch.flush()  # alerts in their window, the period so far
        self._record(events)
        for period in periods:
            self.writer.counts(period)
        self.writer.close()
        link_up = self.uploader.stats.link_state == LinkState.UP
        self.uploader.stop(drain_s=SHUTDOWN_DRAIN_S if link_up else 0.0)
        self.run_figures = run_figures(self.outbox, self._started)
        self.outbox.close()
        self._owner.release()


def main(args: Optional[List[str]] = None) -> int:
    """Entry point of ``ros2 run vehicle_detection cloud_bridge_node``."""
    return run_nodes([CloudBridgeNode], args)


if __name__ == '__main__':
    sys.exit(main())
