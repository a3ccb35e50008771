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
What ``bench/soak.py`` is built from: a flaky link, process and disk samples, fits.

:class:`FlakyProxy` forwards TCP to the server and drops every connection
(refusing new ones) for ``down_s`` seconds at the end of every ``period_s``.
:func:`process_figures` reads a process tree's RSS, threads and open files;
:func:`slope` is the least-squares growth of a series over time; :class:`Probe`
reads /diagnostics (and varies the snapshots); the seeds give the server and the
outbox a month of history.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
import select
import socket
import threading
import time
from typing import Any, Dict, Iterable, List, Sequence, Tuple

import psutil


class FlakyProxy:
    """A TCP forwarder on 127.0.0.1 that is down ``down_s`` s in every ``period_s`` s."""

    def __init__(self, target_port: int, period_s: float = 300.0, down_s: float = 60.0) -> None:
        self.target_port = target_port
        self.period_s, self.down_s = period_s, down_s
        self.drops = 0  # outages so far
        self._started = time.monotonic()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._open: List[socket.socket] = []
        self._listener = self._listen(0)
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._run, daemon=True, name='flaky-proxy')
        self._thread.start()

    @property
    def url(self) -> str:
        """Return the URL the edge is given."""
        return f'http://127.0.0.1:{self.port}'

    def is_down(self) -> bool:
        """Tell whether the link is dropped now (the last ``down_s`` of each period)."""
        return (time.monotonic() - self._started) % self.period_s >= self.period_s - self.down_s

    def stop(self) -> None:
        """Stop forwarding and close every socket."""
        self._stop.set()
        self._thread.join(5.0)
        self._drop_all()
        self._listener.close()

    def _listen(self, port: int) -> socket.socket:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(('127.0.0.1', port))
        listener.listen(64)
        listener.settimeout(0.2)
        return listener

    def _run(self) -> None:
        while not self._stop.is_set():
            if self.is_down():  # no listener: connections are refused, open ones cut
                self.drops += 1
                self._listener.close()
                self._drop_all()
                while self.is_down() and not self._stop.wait(0.2):
                    pass
                self._listener = self._listen(self.port)
                continue
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            try:
                server = socket.create_connection(('127.0.0.1', self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open += [client, server]
            threading.Thread(target=self._pump, args=(client, server), daemon=True,
                             name='flaky-pump').start()

    def _pump(self, client: socket.socket, server: socket.socket) -> None:
        peers = {client: server, server: client}
        try:
            while not self._stop.is_set():
                readable, _, _ = select.select(list(peers), [], [], 0.5)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    peers[sock].sendall(data)
        except (OSError, ValueError):
            return  # dropped by an outage (a closed socket), or the peer went away
        finally:
            for sock in (client, server):
                sock.close()
            with self._lock:
                self._open = [s for s in self._open if s not in (client, server)]

    def _drop_all(self) -> None:
        with self._lock:
            sockets, self._open = self._open, []
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()


def process_figures(pid: int) -> Dict[str, float]:
    """Return RSS (MB), threads, open files and CPU time (s) of a process and its children."""
    root = psutil.Process(pid)
    rss = threads = files = cpu = 0.0
    for process in [root, *root.children(recursive=True)]:
        try:
            with process.oneshot():
                rss += process.memory_info().rss / 1024 / 1024
                threads += process.num_threads()
                files += process.num_fds()
                times = process.cpu_times()
                cpu += times.user + times.system
        except psutil.NoSuchProcess:
            continue  # a child that just ended (nvidia-smi, a worker restart)
    return {'rss_mb': rss, 'threads': threads, 'fds': files, 'cpu_s': cpu}


def open_files(pid: int) -> List[str]:
    """Return what the open files of a process and its children point to (sockets by kind)."""
    root, targets = psutil.Process(pid), []
    for process in [root, *root.children(recursive=True)]:
        try:
            fds = list(Path(f'/proc/{process.pid}/fd').iterdir())
        except OSError:
            continue  # a child that just ended
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:
                continue  # closed between the listing and the read
            targets.append(target.split(':')[0] if target.startswith(('socket:', 'pipe:',
                                                                      'anon_inode:'))
                           else target)
    return sorted(targets)


def note_open_files(path: Path, t: float, pids: Dict[str, int]) -> None:
    """Add a line to ``path``: what the open files of each named process are at ``t``."""
    row = {'t': t, **{name: open_files(pid) for name, pid in pids.items()}}
    with open(path, 'a', encoding='utf-8') as out:
        out.write(json.dumps(row) + '\n')


def disk_bytes(paths: Iterable[Path]) -> int:
    """Return the bytes of the files under ``paths`` (files or folders, missing ones 0)."""
    total = 0
    for path in paths:
        if path.is_dir():
            total += sum(f.stat().st_size for f in path.rglob('*') if f.is_file())
        elif path.exists():
            total += path.stat().st_size
    return total


def slope(points: Sequence[Tuple[float, float]]) -> float:
    """Return the least-squares slope of (x, y) points (0 with fewer than two)."""
    if len(points) < 2:
        return 0.0
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / spread if spread else 0.0


def seed_server(db_url: str, device: str, alerts: int) -> None:
    """
    Give the server the alerts of a device that has been running for a while.

    A fresh database grows in the soak, and SQLite's page cache of each
    connection (2 MB) fills with it: that is a cache filling once, not a
    leak, but it looks like one for the first tens of MB. Rows go in through
    the server's own tables, in one transaction.
    """
    from datetime import datetime, timedelta, timezone
    import uuid

    from sqlalchemy import insert, select
    from vehicle_detection.cloud.server.db import Alert, Device
    from vehicle_detection.cloud.server.engine import make_engine, to_stored
    engine = make_engine(db_url)
    start = datetime.now(timezone.utc) - timedelta(days=30)
    with engine.begin() as connection:
        device_id = connection.execute(select(Device.id).where(Device.name == device)).scalar()
        connection.execute(insert(Alert), [
            {'event_id': str(uuid.uuid4()), 'device_id': device_id, 'camera_id': 'cam0',
             'detected_at': to_stored(start + timedelta(seconds=index * 20)),
             'received_at': to_stored(start + timedelta(seconds=index * 20)),
             'track_id': index, 'class_name': 'car', 'confidence': 0.8,
             'bbox': [10.0, 20.0, 110.0, 90.0], 'image_width': 426, 'image_height': 320,
             'image_sha256': uuid.uuid4().hex * 2, 'kind': 'vehicle'}
            for index in range(alerts)])
    engine.dispose()


def seed_outbox(folder: Path, megabytes: float) -> int:
    """Fill a new outbox with sent history up to ``megabytes`` (a box in its second month)."""
    import json
    import sqlite3
    import uuid

    from vehicle_detection.core.bridge.outbox import Outbox
    Outbox(str(folder)).close()
    body = json.dumps({'event_id': str(uuid.uuid4()), 'device_id': 'soak', 'camera_id': 'cam0',
                       'detected_at': '2026-11-23T10:00:00Z', 'track_id': 1,
                       'class_name': 'car', 'confidence': 0.9,
                       'bbox': [100.0, 120.0, 400.0, 380.0], 'image_width': 426,
                       'image_height': 320, 'image_sha256': 'f' * 64, 'kind': 'vehicle'})
    rows = int(megabytes * 1024 * 1024 / 650)  # the soak measures about 640 bytes an event
    db = sqlite3.connect(folder / 'outbox.db', isolation_level=None)
    now = time.time()
    db.execute(
        'WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n LIMIT ?) '
        'INSERT INTO events (event_id, created_at, alert, alert_state, image_state) '
        "SELECT lower(hex(randomblob(16))), ? + i, ?, 'sent', 'sent' FROM n",
        (rows, now - rows - 60, body))
    db.close()
    return rows


def detector_rate(model: str, clip: str, seconds: float = 5.0) -> float:
    """Return the frames per second the detector takes on this machine (clip frames)."""
    import cv2
    from vehicle_detection.core.detection.detector import Detector, DetectorSettings
    detector = Detector(DetectorSettings(model, backend='onnxruntime'))
    capture = cv2.VideoCapture(clip)
    frames = [capture.read()[1] for _ in range(20)]
    capture.release()
    done, end = 0, time.monotonic() + seconds
    start = time.monotonic()
    while time.monotonic() < end:
        detector.detect(frames[done % len(frames)])
        done += 1
    detector.close()
    return done / (time.monotonic() - start)


class Probe:
    """
    The latest /diagnostics values of each status, read in the soak's ROS domain.

    Also turns the bridge's ``snapshot_quality``: the clip loops, and a frame
    seen again would give the same JPEG, which the server already holds (alerts
    of a known picture upload none); a real camera never repeats a frame.
    """

    def __init__(self, domain: int) -> None:
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rcl_interfaces.srv import SetParameters
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.signals import SignalHandlerOptions
        self.values: Dict[str, Dict[str, str]] = {}
        self._context = Context()
        # rclpy's own SIGINT handler would swallow Ctrl-C: the soak stops on it instead.
        rclpy.init(context=self._context, domain_id=domain,
                   signal_handler_options=SignalHandlerOptions.NO)
        self._node = rclpy.create_node(f'soak_probe_{domain}', context=self._context)
        self._node.create_subscription(DiagnosticArray, '/diagnostics', self._on_status, 50)
        self._set = self._node.create_client(SetParameters,
                                             '/cloud_bridge_node/set_parameters')
        self._quality = 0
        self._executor = SingleThreadedExecutor(context=self._context)
        self._executor.add_node(self._node)
        self._thread = threading.Thread(target=self._executor.spin, daemon=True)
        self._thread.start()

    def _on_status(self, msg: Any) -> None:
        for status in msg.status:
            self.values[status.name.split(':')[0]] = {v.key: v.value for v in status.values}

    def vary_snapshots(self) -> None:
        """Set the next of 36 snapshot qualities (60-95), without waiting for the answer."""
        from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
        from rcl_interfaces.srv import SetParameters
        self._quality += 1
        value = ParameterValue(type=ParameterType.PARAMETER_INTEGER,
                               integer_value=60 + self._quality * 7 % 36)
        self._set.call_async(SetParameters.Request(
            parameters=[Parameter(name='snapshot_quality', value=value)]))

    def number(self, node: str, key: str) -> float:
        """Return one figure of ``node``'s last status (0 when not seen yet)."""
        try:
            return float(self.values.get(node, {}).get(key, 0))
        except ValueError:
            return 0.0

    def close(self) -> None:
        """Stop listening."""
        self._executor.shutdown()
        self._node.destroy_node()
        self._context.try_shutdown()
