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
Checks of the image stream as a subscriber in another process sees it (no ROS here).

A camera driver publishing 720p frames with stock Fast DDS settings sends each
2.7 MB frame as UDP fragments (its 512 KB shared-memory segment cannot hold
one); with a best-effort subscription one lost fragment loses the frame, and
``bench/foreign_camera.py`` measured 1 frame of 60 arriving here. These checks
turn a sample of the stream (taken by ``vehicle_detection.ros.image_probe``)
and the kernel's socket buffer sizes into doctor results with the fix.
"""

from __future__ import annotations

from dataclasses import dataclass
import itertools
from pathlib import Path
import statistics
from typing import Dict, List, Optional, Sequence, Tuple

from vehicle_detection.core.system.doctor import CheckResult

#: above this share of lost frames the stream is reported; above LOSS_FAIL it fails
LOSS_WARN = 0.05
LOSS_FAIL = 0.5
ASSUMED_FRAME = (1280, 720)


@dataclass(frozen=True)
class StreamSample:
    """What a subscriber received from one image topic during a listening window."""

    topic: str
    seconds: float
    reliability: str  # of the subscription, as image_reliability names it
    stamps_ns: Sequence[int]  # of the whole frames received
    frame_bytes: int  # size of one received frame, 0 when none came
    publishers: Sequence[str]  # reliability of each publisher on the topic
    #: (publisher id, its publication sequence number) of each whole frame received;
    #: number 0 where the middleware does not count
    numbers: Sequence[Tuple[Tuple[int, ...], int]] = ()
    camera_infos: int = 0  # messages on the camera_info topic beside it, same window
    #: when each whole frame arrived here (monotonic ns), in the order of ``numbers``
    arrivals_ns: Sequence[int] = ()


def camera_info_topic(image_topic: str) -> str:
    """Return the camera_info topic beside image topic (``/a/image_raw``: ``/a/camera_info``)."""
    head, _, _ = image_topic.rpartition('/')
    return f'{head}/camera_info'


def lost_share(stamps_ns: Sequence[int]) -> Optional[float]:
    """
    Estimate the share of frames lost from the gaps between received stamps.

    The median gap is the camera period; a gap of three periods means two
    frames lost. None with fewer than three frames (no period to go by). Blind
    to loss spread evenly (every fifth frame arriving reads as a slower
    camera): only the last resort of :func:`published_estimate`.
    """
    stamps = sorted(set(stamps_ns))
    if len(stamps) < 3:
        return None
    period = statistics.median(b - a for a, b in itertools.pairwise(stamps))
    if period <= 0:
        return None
    expected = round((stamps[-1] - stamps[0]) / period) + 1
    return max(0.0, 1.0 - len(stamps) / expected)


def sent_by_numbers(numbers: Sequence[Tuple[Tuple[int, ...], int]],
                    arrivals_ns: Sequence[int] = (), seconds: float = 0.0) -> Optional[int]:
    """
    Return how many frames the publishers sent while we listened, by their numbers.

    Each publisher numbers its messages 1, 2, 3...: frames 7 and 12 received
    mean 6 sent between them, whichever arrived. With the arrival times and
    the window's length, the publisher's pace (numbers per second here, never
    the stamps, which a bag replay shifts) also counts the frames sent before
    the first and after the last that arrived: two frames of thirty arriving
    are not "one in three lost". None when the middleware gave no numbers or
    fewer than two frames of any publisher arrived.
    """
    spans: Dict[Tuple[int, ...], Tuple[int, int, int, int]] = {}
    timed = len(arrivals_ns) == len(numbers) and seconds > 0
    for index, (publisher, number) in enumerate(numbers):
        if number <= 0:
            return None
        at = arrivals_ns[index] if timed else 0
        low, high, first, last = spans.get(publisher, (number, number, at, at))
        spans[publisher] = (min(low, number), max(high, number), min(first, at), max(last, at))
    sent = 0
    for low, high, first, last in spans.values():
        span = high - low + 1
        if timed and high > low and last > first:
            span = max(span, round((high - low) * seconds * 1e9 / (last - first)))
        sent += span
    return sent if spans and sent > len(spans) else None


def published_estimate(sample: StreamSample) -> Tuple[Optional[int], str]:
    """
    Return (frames the publisher sent over the frames received, how that is known).

    In order of trust: the publishers' sequence numbers; the camera_info
    messages beside the images (one per frame, and small enough to arrive);
    the gaps between the received stamps (blind to evenly spread loss).
    """
    received = len(sample.stamps_ns)
    sent = sent_by_numbers(sample.numbers, sample.arrivals_ns, sample.seconds)
    if sent is not None:
        return sent, "counted by the publisher's sequence numbers"
    if sample.camera_infos >= 3:
        return max(received, sample.camera_infos), 'counted by its camera_info messages'
    lost = lost_share(sample.stamps_ns)
    if lost is not None and lost < 1.0:
        return round(received / (1.0 - lost)), 'guessed from the gaps between stamps'
    return None, ''


def stream_fix(profile: Path, publishers: Sequence[str], reliability: str) -> str:
    """Say how to get whole frames from a publisher in another process."""
    fixes = [f'start the publisher with FASTDDS_DEFAULT_PROFILES_FILE={profile} '
             '(shared memory large enough for a frame)']
    if reliable_to_best_effort(publishers, reliability):
        fixes.insert(0, 'its publishers are reliable: set image_reliability: reliable on '
                        'detector_node and cloud_bridge_node (frames then arrive whole)')
    fixes.append('or raise net.core.rmem_max and net.core.rmem_default (sysctl) above a few '
                 'frames')
    return '; '.join(fixes)


def reliable_to_best_effort(publishers: Sequence[str], reliability: str) -> bool:
    """Whether every publisher is reliable while the subscription is best effort."""
    return bool(publishers) and all(p == 'reliable' for p in publishers) and (
        reliability != 'reliable')


def check_image_stream(sample: StreamSample, profile: Path) -> CheckResult:
    """Judge a sample: publishers present, frames arriving, few lost (of those sent)."""
    name = f'images {sample.topic}'
    if not sample.publishers:
        return CheckResult(name, True, f'no publisher in {sample.seconds:.0f} s',
                           'is the camera running (in another process)?', warning=True)
    if sample.reliability == 'reliable' and 'best_effort' in sample.publishers:
        return CheckResult(name, False, 'image_reliability is reliable, and a best-effort '
                                        'publisher is never heard by a reliable subscription',
                           'set image_reliability: best_effort, or publish reliable')
    received = len(sample.stamps_ns)
    who = f'{len(sample.publishers)} publisher(s), {", ".join(sorted(set(sample.publishers)))}'
    fix = stream_fix(profile, sample.publishers, sample.reliability)
    cause = ('; the publisher is reliable and this subscription best effort: a frame that '
             'loses a fragment is dropped here, never resent'
             if reliable_to_best_effort(sample.publishers, sample.reliability) else '')
    sent, how = published_estimate(sample)
    if sent is None:
        if received < 3:
            return CheckResult(name, False, f'{received} whole frames in {sample.seconds:.0f} s '
                                            f'from {who}: frames are lost in transport{cause}',
                               fix)
        sent, how = received, ''
    lost = max(0.0, 1.0 - received / sent) if sent else 0.0
    rate = received / sample.seconds
    detail = (f'{received} frames in {sample.seconds:.0f} s ({rate:.1f} fps) from {who}, '
              f'{lost:.0%} lost')
    if how:
        detail += f' ({received} of the {sent} frames sent arrived, {how})'
    if lost > LOSS_FAIL:
        return CheckResult(name, False, f'{detail}: frames are lost in transport{cause}', fix)
    return CheckResult(name, True, detail + (cause if lost > LOSS_WARN else ''), fix,
                       warning=lost > LOSS_WARN)


def read_socket_buffers(root: Path = Path('/proc/sys/net/core')) -> Tuple[int, int]:
    """Return (rmem_default, rmem_max) in bytes; (0, 0) where they cannot be read."""
    values: List[int] = []
    for name in ('rmem_default', 'rmem_max'):
        try:
            values.append(int((root / name).read_text().split()[0]))
        except (OSError, ValueError, IndexError):
            values.append(0)
    return values[0], values[1]


def check_socket_buffers(frame_bytes: int, rmem_default: int, rmem_max: int) -> CheckResult:
    """
    Check the kernel's UDP receive buffers against the size of one frame.

    Fast DDS's UDP transport takes ``rmem_default`` unless a profile asks for
    more, and no profile gets more than ``rmem_max``: when that cannot hold a
    frame, a frame sent over UDP (another host, or a publisher without shared
    memory) is lost whenever the reader is a moment late.
    """
    name = 'socket buffers'
    if not rmem_max:
        return CheckResult(name, True, 'net.core.rmem_max unreadable: not checked')
    detail = (f'net.core.rmem_max {rmem_max} B, rmem_default {rmem_default} B; one frame is '
              f'{frame_bytes} B')
    fix = (f'sysctl -w net.core.rmem_max={4 * frame_bytes} net.core.rmem_default='
           f'{4 * frame_bytes} (and in /etc/sysctl.d/ to keep it), for frames over UDP')
    return CheckResult(name, True, detail, fix, warning=rmem_max < frame_bytes)
