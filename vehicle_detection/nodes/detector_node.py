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
Detector node: ``/camera/image_raw`` in, ``/detections`` (vision_msgs) out.

A managed (lifecycle) node: configure creates the publishers and the image
subscription, activate starts the worker threads (the first thing they do is
load the model, so a TensorRT build never blocks the executor), deactivate
stops them and frees the model, cleanup destroys the topics. It configures and
activates itself at start unless ``autostart`` is false. Activation fails (the
node stays inactive, /diagnostics says ERROR with the path) while the model
file is missing: ``ros2 param set`` a right ``model_path``, then activate.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Optional

import numpy as np
from rclpy.context import Context
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from sensor_msgs.msg import Image
from std_msgs.msg import Header, String

from vehicle_detection.core.counting.overlay import draw_counts, parse_status
from vehicle_detection.core.detection.backends.base import ModelLoadError
from vehicle_detection.core.detection.detections import Detections
from vehicle_detection.core.detection.detector import Detector, Timing
from vehicle_detection.core.detection.frame_slot import NewestFrameSlot
from vehicle_detection.core.detection.node_config import (
    DETECTOR_PARAMS, detector_settings, DetectorNodeSettings, MODEL_PARAMS)
from vehicle_detection.core.detection.node_status import (
    detector_status, DetectorState, model_problem)
from vehicle_detection.core.detection.pipeline_figures import PipelineFigures
from vehicle_detection.ros.detection_msgs import annotate, to_detection_array
from vehicle_detection.ros.diagnostics import DiagnosticsPublisher
from vehicle_detection.ros.graph_watch import PublisherWatch
from vehicle_detection.ros.image_conv import ImageEncodingError, stamp_to_ns, to_image_msg
from vehicle_detection.ros.intra_process import ImageInput, ReceivedImage
from vehicle_detection.ros.parameters import DeclaredParameters
from vehicle_detection.ros.qos import COUNTS_QOS, DETECTIONS_QOS, image_qos
from vehicle_detection.ros.spin import run_nodes
from vision_msgs.msg import Detection2DArray

LOAD_ERRORS = ModelLoadError  # a missing backend, an unknown layout, class names: all one
RELOAD_RETRY_S = 5.0
SUCCESS = TransitionCallbackReturn.SUCCESS


class DetectorNode(LifecycleNode):
    """Runs the detector on the newest frame in worker threads; drops stale frames."""

    def __init__(self, context: Optional[Context] = None,
                 parameter_overrides: Optional[List[Any]] = None) -> None:
        super().__init__('detector_node', context=context,
                         parameter_overrides=parameter_overrides)
        self.params = DeclaredParameters(self, DETECTOR_PARAMS, on_change=self._apply)
        self._detector: Optional[Detector] = None
        self._load_error = ''
        self._worker_error = ''
        self.activation_error = ''  # why the last activation was refused
        self._reload = threading.Event()
        self._stop = threading.Event()
        self.lifecycle_state = 'unconfigured'  # as `ros2 lifecycle get` names it
        self._threads: List[threading.Thread] = []
        self.image_input: Optional[ImageInput] = None
        self._counts: Optional[Dict[str, Any]] = None  # the latest traffic_counts status
        # Three stages on their own threads, each handing over through one slot:
        # prepare (decode + letterbox) the newest image -> infer the newest
        # prepared frame -> post-process and publish in order. While a frame is
        # inferred the next is already prepared and the previous one published.
        self._received: NewestFrameSlot[ReceivedImage] = NewestFrameSlot()
        self._prepared: NewestFrameSlot[tuple] = NewestFrameSlot()
        self._inferred: 'queue.Queue[Optional[tuple]]' = queue.Queue(maxsize=1)
        self.published = 0
        self._figures = PipelineFigures()
        # /diagnostics in every state: an operator sees an inactive detector too.
        self._diagnostics = DiagnosticsPublisher(self)
        self._input_watch = PublisherWatch(self, (self.settings.input_topic,))
        self.create_timer(self.settings.diagnostics_period, self._report)
        if self.settings.autostart:
            self.trigger_configure()
            self.trigger_activate()

    # -- lifecycle transitions (executor thread) ----------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Create the publishers and the image subscription."""
        qos = image_qos(self.settings.qos_depth, self.settings.image_reliability)
        self._detections_pub = self.create_lifecycle_publisher(
            Detection2DArray, 'detections', DETECTIONS_QOS)
        self._annotated_pub = self.create_lifecycle_publisher(Image, 'detections/image', qos)
        # The bridge's counting lines, zones and totals, drawn on detections/image.
        self._counts_sub = self.create_subscription(String, 'traffic_counts', self._on_counts,
                                                    COUNTS_QOS)
        # Frames of a camera node in this process come without DDS (see intra_process);
        # an older frame not yet taken is dropped.
        self.image_input = ImageInput(self, self.settings.input_topic, qos, self._on_image)
        self.lifecycle_state = 'inactive'
        return SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Start the worker threads (they load the model first); refuse without a model."""
        problem = model_problem(self.settings.model_path, self.settings.labels_file)
        if problem and problem != self.activation_error:  # logged once, not at every retry
            self.get_logger().error(f'cannot activate: {problem}; set model_path (ros2 param '
                                    'set), then activate (ros2 lifecycle set)')
        self.activation_error = problem
        if problem:
            return TransitionCallbackReturn.FAILURE
        self._stop.clear()
        self._reload.set()
        self._worker_error = ''
        self._inferred = queue.Queue(maxsize=1)  # no end marker left from a last run
        self._threads = [
            threading.Thread(target=self._guarded(loop), daemon=True, name=f'detector-{name}')
            for name, loop in (('prepare', self._prepare_loop), ('infer', self._infer_loop),
                               ('publish', self._publish_loop))]
        for thread in self._threads:
            thread.start()
        self.lifecycle_state = 'active'
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop the worker threads and free the model (or TensorRT engine)."""
        self._stop_workers()
        self.lifecycle_state = 'inactive'
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Destroy the publishers and the image subscription."""
        self._release_topics()
        self.lifecycle_state = 'unconfigured'
        return SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Release everything, from whichever state."""
        self._stop_workers()
        self._release_topics()
        self.lifecycle_state = 'finalized'
        return SUCCESS

    def _stop_workers(self) -> None:
        if self.lifecycle_state == 'active':
            self.lifecycle_state = 'inactive'
        self._stop.set()
        self._received.notify()
        self._prepared.notify()
        for thread in self._threads:
            thread.join(5.0)
        self._threads = []
        detector, self._detector = self._detector, None
        if detector is not None:
            detector.close()

    def _release_topics(self) -> None:
        if self.image_input is not None:
            self.image_input.destroy()
            self.image_input = None
            self.destroy_lifecycle_publisher(self._detections_pub)
            self.destroy_lifecycle_publisher(self._annotated_pub)
            self.destroy_subscription(self._counts_sub)

    def _guarded(self, loop: Callable[[], None]) -> Callable[[], None]:
        """Wrap a worker loop so that its death is reported, not silent."""
        def run() -> None:
            try:
                loop()
            except Exception as error:  # any bug: say it on /diagnostics, not "running"
                self._worker_error = f'{threading.current_thread().name} died: {error!r}'
                self.get_logger().error(self._worker_error)
                self._stop.set()  # the other stages stop too: nothing half-running
                self._received.notify()
                self._prepared.notify()
                try:
                    self._inferred.put_nowait(None)
                except queue.Full:
                    pass
        return run

    @property
    def ready(self) -> bool:
        """Whether a model is loaded and frames are being detected."""
        return self._detector is not None

    @property
    def frames(self) -> int:
        """Images received."""
        return self._received.frames

    @property
    def dropped(self) -> int:
        """Images replaced by a newer one before they were prepared or inferred."""
        return self._received.dropped + self._prepared.dropped

    # -- executor side ---------------------------------------------------------
    def _on_image(self, frame: ReceivedImage) -> None:
        if self.lifecycle_state == 'active':
            self._received.put(frame)

    @property
    def settings(self) -> DetectorNodeSettings:
        """Return the current parameter values, typed."""
        return self.params.typed(DetectorNodeSettings)

    def _apply(self, values: Dict[str, Any], previous: Dict[str, Any]) -> None:
        settings = DetectorNodeSettings(**values)
        detector = self._detector
        if detector is not None:
            detector.set_thresholds(settings.confidence_threshold, settings.nms_iou_threshold)
        if any(values[name] != previous[name] for name in MODEL_PARAMS):
            self._reload.set()
            self._prepared.notify()

    # -- worker side -------------------------------------------------------------
    def _load(self) -> None:
        self._reload.clear()
        settings = detector_settings(self.params.values)
        if not settings.model_path:
            self._load_error = 'no model_path set'
            return
        try:
            detector = Detector(settings)
        except LOAD_ERRORS as error:
            if str(error) != self._load_error:  # once: /diagnostics repeats it meanwhile
                self.get_logger().error(f'cannot load the detector: {error}; retrying every '
                                        f'{RELOAD_RETRY_S:.0f} s')
            self._load_error = str(error)
            return
        for warning in detector.warnings:
            self.get_logger().warning(warning)
        old, self._detector, self._load_error = self._detector, detector, ''
        if old is not None:
            old.close()
        self.get_logger().info(f'detector ready: {settings.model_path}: {detector.describe()}')

    def _prepare_loop(self) -> None:
        while not self._stop.is_set():
            frame = self._received.take(RELOAD_RETRY_S, self._stop.is_set)
            detector = self._detector
            if frame is None or detector is None:
                continue
            try:
                image = frame.bgr()
            except ImageEncodingError as error:
                self.get_logger().error(f'image refused: {error}', throttle_duration_sec=10.0)
                continue
            self._prepared.put((detector, frame.header, image, detector.prepare(image)))

    def _infer_loop(self) -> None:
        next_retry = 0.0
        while not self._stop.is_set():
            if self._reload.is_set() or (self._detector is None
                                         and time.monotonic() >= next_retry):
                self._load()
                next_retry = time.monotonic() + RELOAD_RETRY_S
            item = self._prepared.take(RELOAD_RETRY_S, lambda: self._stop.is_set()
                                       or self._reload.is_set())
            # A frame prepared for a model that was since replaced is skipped.
            if item is None or item[0] is not self._detector:
                continue
            detector, header, image, prepared = item
            # How old the frame is when its inference starts: transport, preparation
            # and the wait for the previous inference (the share of latency_ms that
            # a faster camera or engine shortens).
            # Recorded with the frame's latency once it is published (one window).
            age_ms = (time.time_ns() - stamp_to_ns(header.stamp)) / 1e6
            self._inferred.put((detector, header, image, detector.infer(prepared), age_ms))
        self._inferred.put(None)

    def _publish_loop(self) -> None:
        last_stamp = 0
        while (item := self._inferred.get()) is not None:
            detector, header, image, inferred, age_ms = item
            stamp = stamp_to_ns(header.stamp)
            if stamp < last_stamp and detector.tracker is not None:
                # Time went back: a bag replayed again or a source that looped. Its
                # vehicles are not the ones tracked so far.
                detector.tracker.reset()
            last_stamp = stamp
            detections, timing = detector.finish(inferred, stamp / 1e9)
            self._publish(header, image, detections, timing, age_ms)

    def _publish(self, header: Header, image: np.ndarray, detections: Detections,
                 timing: Timing, age_ms: float) -> None:
        self._detections_pub.publish(to_detection_array(detections, header))
        self.published += 1
        self._figures.record(timing.inference_ms, age_ms,
                             (time.time_ns() - stamp_to_ns(header.stamp)) / 1e6)
        if self._annotated_pub.get_subscription_count() > 0:
            canvas = annotate(image, detections)
            if self._counts is not None:
                draw_counts(canvas, self._counts)
            self._annotated_pub.publish(to_image_msg(canvas,
                                                     header.stamp, header.frame_id))

    def _on_counts(self, msg: String) -> None:
        self._counts = parse_status(msg.data)

    def _report(self) -> None:
        detector = self._detector
        values: Dict[str, object] = {
            'model': self.settings.model_path, 'frames': self.frames,
            'published': self.published, 'dropped_frames': self.dropped,
            **self._figures.figures()}
        if detector is not None:
            values.update(backend=detector.backend.name, backend_detail=detector.backend.detail,
                          layout=detector.layout, input_dtype=str(detector.backend.input_dtype))
        level, message = detector_status(DetectorState(
            self.lifecycle_state, detector is not None, self._worker_error,
            self.activation_error, self._load_error, self._input_watch.check()))
        self._diagnostics.publish('detector', level, message, values)

    def close(self) -> None:
        """Stop the workers and release the model and the topics (the process ends)."""
        self._stop_workers()
        self._release_topics()


def main(args: Optional[List[str]] = None) -> int:
    """Entry point of ``ros2 run vehicle_detection detector_node``."""
    return run_nodes([DetectorNode], args)


if __name__ == '__main__':
    sys.exit(main())
