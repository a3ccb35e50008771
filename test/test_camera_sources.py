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

"""Unit tests of the frame sources and the self-healing camera stream (no ROS)."""

from __future__ import annotations

import os
from pathlib import Path
import threading
from typing import List, Optional

import cv2
import numpy as np
import pytest

from vehicle_detection.core.camera.config import CameraConfig
from vehicle_detection.core.camera.sources import (
    FrameSource, ImageFolderSource, natural_key, open_source, parse_source, SourceError,
    SourceHistory, SourceKind, SourceSpec)
from vehicle_detection.core.camera.stream import CameraStream, Frame, resize, StreamState
from vehicle_detection.core.params import ParamError
from waiting import Inbox, wait_until


def write_images(folder: Path, names: List[str], size=(48, 64)) -> None:
    """Write images whose pixel value encodes their position in ``names``."""
    folder.mkdir(parents=True, exist_ok=True)
    for index, name in enumerate(names):
        image = np.full((size[0], size[1], 3), index * 10, dtype=np.uint8)
        assert cv2.imwrite(str(folder / name), image)


def test_parse_source_kinds() -> None:
    assert parse_source('0') == SourceSpec(SourceKind.DEVICE, 0)
    assert parse_source('/dev/video2') == SourceSpec(SourceKind.DEVICE, '/dev/video2')
    assert parse_source('rtsp://cam/stream').kind is SourceKind.STREAM
    assert parse_source('https://cam/mjpg').kind is SourceKind.STREAM
    pipeline = parse_source('nvarguscamerasrc ! nvvidconv')
    assert pipeline.kind is SourceKind.GSTREAMER and pipeline.target.endswith('appsink '
                                                                              'drop=true '
                                                                              'max-buffers=1')
    assert parse_source('/data/frames').kind is SourceKind.PATH
    assert not parse_source('/data/frames').live and parse_source('0').live
    with pytest.raises(ValueError, match='empty'):
        parse_source('  ')
    with pytest.raises(ValueError, match='unsupported URL scheme'):
        parse_source('ftp://host/file')


def test_folder_natural_order_and_loop(tmp_path: Path) -> None:
    names = ['frame10.png', 'frame2.png', 'frame1.jpg', 'notes.txt']
    write_images(tmp_path, ['frame1.jpg', 'frame2.png', 'frame10.png'])
    (tmp_path / 'notes.txt').write_text('not an image')
    assert sorted(names, key=natural_key)[:3] == ['frame1.jpg', 'frame2.png', 'frame10.png']
    source = open_source(parse_source(str(tmp_path)), loop=True)
    values = [int(source.read()[0, 0, 0]) for _ in range(7)]
    assert values[:3] == [0, 10, 20] and values[3:6] == [0, 10, 20]  # looped
    once = open_source(parse_source(str(tmp_path)), loop=False)
    assert [int(once.read()[0, 0, 0]) for _ in range(3)] == [0, 10, 20]
    assert once.read() is None


def test_looping_folder_decodes_each_image_once(tmp_path: Path) -> None:
    write_images(tmp_path, ['a.png', 'b.png'])
    files = [str(tmp_path / 'a.png'), str(tmp_path / 'b.png')]
    source = ImageFolderSource(files, True, SourceHistory())
    first, second, again = source.read(), source.read(), source.read()
    assert again is first and second is not first  # served from the cache
    assert not first.flags.writeable  # shared frames cannot be drawn on by accident
    image = np.full((48, 64, 3), 200, np.uint8)
    assert cv2.imwrite(str(tmp_path / 'b.png'), image)
    os.utime(tmp_path / 'b.png', ns=(1, 1))  # a replaced file has another mtime
    assert int(source.read()[0, 0, 0]) == 200  # decoded again
    # A budget smaller than one frame caches nothing, but still plays.
    tight = ImageFolderSource(files, True, SourceHistory(), cache_bytes=first.nbytes - 1)
    first_tight = tight.read()
    tight.read()
    again_tight = tight.read()
    assert again_tight is not first_tight and np.array_equal(again_tight, first_tight)
    once = ImageFolderSource(files, False, SourceHistory())
    assert once.read().flags.writeable  # a single pass caches nothing


def test_folder_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match='does not exist'):
        open_source(parse_source(str(tmp_path / 'missing')))
    with pytest.raises(SourceError, match='holds no images'):
        open_source(parse_source(str(tmp_path)))
    (tmp_path / 'broken.png').write_bytes(b'not a png')
    with pytest.raises(SourceError, match='cannot decode'):
        open_source(parse_source(str(tmp_path))).read()


def write_video(path: Path, frames: int, size=(64, 48)) -> None:
    """Write a small MJPG video whose frames differ in brightness."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'MJPG'), 10, size)
    assert writer.isOpened()
    for index in range(frames):
        writer.write(np.full((size[1], size[0], 3), 20 * index, dtype=np.uint8))
    writer.release()


def test_video_file_plays_and_loops(tmp_path: Path) -> None:
    video = tmp_path / 'clip.avi'
    write_video(video, 5)
    source = open_source(parse_source(str(video)), loop=False)
    frames = []
    while (frame := source.read()) is not None:
        frames.append(frame)
    assert len(frames) == 5 and frames[0].shape == (48, 64, 3)
    assert frames[4].mean() > frames[0].mean() + 40
    source.close()
    looping = open_source(parse_source(str(video)), loop=True)
    assert sum(looping.read() is not None for _ in range(12)) == 12
    looping.close()


def test_resize_keeps_aspect_when_one_side_given() -> None:
    image = np.zeros((100, 200, 3), np.uint8)
    assert resize(image, 0, 0) is image
    assert resize(image, 100, 0).shape == (50, 100, 3)
    assert resize(image, 0, 50).shape == (50, 100, 3)
    assert resize(image, 320, 240).shape == (240, 320, 3)


def test_config_refuses_bad_values() -> None:
    with pytest.raises(ParamError, match=r'fps: -1\.0 is below the minimum 0'):
        CameraConfig.from_values({'fps': -1.0})
    with pytest.raises(ParamError, match='must not exceed reconnect_max'):
        CameraConfig.from_values({'reconnect_initial': 10.0, 'reconnect_max': 1.0})
    with pytest.raises(ParamError, match='frame_id'):
        CameraConfig.from_values({'frame_id': 'has space'})
    assert CameraConfig.from_values({'fps': 5}).fps == 5.0


def test_stream_paces_recorded_frames(tmp_path: Path) -> None:
    write_images(tmp_path, [f'{i}.png' for i in range(6)])
    collector: Inbox[Frame] = Inbox()
    stream = CameraStream(CameraConfig(source=str(tmp_path), fps=20.0, loop=True), collector)
    stream.start()
    try:
        frames = collector.wait_count(11)
    finally:
        stream.stop()
    gaps = np.diff([f.stamp_ns for f in frames[:11]]) / 1e9
    # Not faster than the cap; slower only by what a loaded machine takes (the bound
    # tells a paced stream from one waiting several periods per frame).
    assert 0.4 <= gaps.sum() < 1.5, f'10 periods at 20 fps took {gaps.sum():.3f} s'
    assert gaps.min() > 0.03
    assert [f.seq for f in frames[:11]] == list(range(11))
    assert int(frames[6].image[0, 0, 0]) == 0  # looped back to the first image


def test_stream_resizes(tmp_path: Path) -> None:
    write_images(tmp_path, ['a.png'])
    collector: Inbox[Frame] = Inbox()
    stream = CameraStream(CameraConfig(source=str(tmp_path), fps=0.0, width=32, loop=True),
                          collector)
    stream.start()
    try:
        frame = collector.wait_count(1)[0]
    finally:
        stream.stop()
    assert frame.image.shape == (24, 32, 3)


def test_missing_folder_reconnects_when_it_appears(tmp_path: Path) -> None:
    folder = tmp_path / 'later'
    collector: Inbox[Frame] = Inbox()
    logs: List[str] = []
    stream = CameraStream(CameraConfig(source=str(folder), fps=0.0, reconnect_initial=0.05,
                                       reconnect_max=0.2),
                          collector, log=lambda level, msg: logs.append(f'{level}: {msg}'))
    stream.start()
    try:
        wait_until(lambda: stream.stats().reconnects >= 2, what='reconnect attempts')
        stats = stream.stats()
        assert stats.state is StreamState.RECONNECTING
        assert 'does not exist' in stats.last_error
        assert any('retrying in' in line for line in logs)
        write_images(folder, ['1.png', '2.png'])
        collector.wait_count(2)
        wait_until(lambda: stream.stats().state is StreamState.ENDED, what='end of folder')
        write_images(folder, ['3.png'])  # new material in a finished folder is played
        frames = collector.wait_count(3)
    finally:
        stream.stop()
    assert len(frames) == 3


class BlockingSource(FrameSource):
    """A live source that delivers ``count`` frames, then blocks like a dead stream."""

    live = True

    def __init__(self, count: int, release: threading.Event) -> None:
        self._left = count
        self._release = release

    def read(self) -> Optional[np.ndarray]:
        if self._left > 0:
            self._left -= 1
            return np.zeros((8, 8, 3), np.uint8)
        self._release.wait()
        raise SourceError('released')


def test_stalled_source_is_reopened() -> None:
    release = threading.Event()
    opened: List[int] = []

    def opener(spec: SourceSpec, loop: bool, history: SourceHistory) -> FrameSource:
        opened.append(1)
        return BlockingSource(3, release)

    collector: Inbox[Frame] = Inbox()
    stream = CameraStream(CameraConfig(source='0', fps=0.0, stall_timeout=0.2,
                                       reconnect_initial=0.05, reconnect_max=0.1),
                          collector, opener=opener)
    stream.start()
    try:
        collector.wait_count(6)  # second generation delivered after the stall
        assert len(opened) >= 2
        assert stream.stats().reconnects >= 1
        wait_until(lambda: 'stalled' in stream.stats().last_error, what='stall report')
    finally:
        release.set()
        stream.stop()


def test_update_switches_source(tmp_path: Path) -> None:
    first, second = tmp_path / 'a', tmp_path / 'b'
    write_images(first, ['1.png'])
    write_images(second, ['1.png', '2.png'], size=(20, 30))
    collector: Inbox[Frame] = Inbox()
    config = CameraConfig(source=str(first), fps=50.0, loop=True)
    stream = CameraStream(config, collector)
    stream.start()
    try:
        collector.wait_count(2)
        stream.update(CameraConfig(source=str(second), fps=50.0, loop=True))
        wait_until(lambda: collector.messages[-1].image.shape == (20, 30, 3),
                   what='frames of the new source')
    finally:
        stream.stop()
    assert stream.stats().state is StreamState.STOPPED


def test_finished_video_is_not_replayed(tmp_path: Path) -> None:
    video = tmp_path / 'clip.avi'
    write_video(video, 3)
    opens: List[int] = []

    def counting_opener(spec: SourceSpec, loop: bool, history: SourceHistory) -> FrameSource:
        opens.append(1)
        return open_source(spec, loop, history)

    collector: Inbox[Frame] = Inbox()
    stream = CameraStream(CameraConfig(source=str(video), fps=0.0, reconnect_initial=0.05,
                                       reconnect_max=0.05), collector, opener=counting_opener)
    stream.start()
    try:
        collector.wait_count(3)
        wait_until(lambda: len(opens) >= 4, what='re-checks of the finished file')
        assert len(collector.messages) == 3 and stream.stats().state is StreamState.ENDED
        replacement = tmp_path / 'new.avi'
        write_video(replacement, 4)
        os.replace(replacement, video)  # a new recording under the same name
        frames = collector.wait_count(7)
    finally:
        stream.stop()
    assert stream.stats().reconnects == 0  # re-checking a finished file is no failure
    assert len(frames) == 7
