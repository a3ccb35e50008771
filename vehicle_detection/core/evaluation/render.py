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
Drawing generated scenes: a road in perspective and real vehicle pictures on it.

Vehicles are crops of real photographs (rear views of cars and a pickup
from the road clip: see ``SPRITE_SOURCES``; lorries are drawn with the
larger cars' pictures, as no lorry is seen from behind in the samples),
scaled to their box and pasted far to near with soft edges, so nearer
vehicles hide farther ones as in the ground truth. The
pictures come from a folder given by the caller (``../shared/samples`` in
tests and benches); without it there is nothing to draw.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

import cv2
import numpy as np

from vehicle_detection.core.evaluation.scene import build_truth, Camera, LANE_WIDTH, Scene

CLIP = 'highway_bridge_jitter.mp4'
# kind -> (file, frame index, box x1, y1, x2, y2): clear, unoccluded views.
SPRITE_SOURCES: Dict[str, List[Tuple[str, int, Tuple[int, int, int, int]]]] = {
    'car': [(CLIP, f, box) for f, box in (
        (14, (44, 230, 120, 302)), (43, (217, 230, 284, 300)), (105, (51, 222, 131, 299)),
        (155, (119, 152, 178, 213)), (212, (208, 218, 273, 286)), (248, (73, 223, 153, 303)),
        (337, (215, 228, 282, 302)), (392, (192, 215, 249, 276)), (418, (129, 172, 179, 219)),
        (465, (179, 240, 244, 310)), (503, (190, 241, 256, 310)), (536, (185, 208, 241, 264)))],
}


def load_sprites(samples: Path) -> Dict[str, List[np.ndarray]]:
    """Cut the vehicle pictures out of the sample files in ``samples``."""
    frames: Dict[Tuple[str, int], np.ndarray] = {}
    wanted = {(name, index) for sources in SPRITE_SOURCES.values() for name, index, _ in sources}
    for name, index in sorted(wanted):
        path = samples / name
        image = _read_frame(path, index)
        if image is None:
            raise FileNotFoundError(f'cannot read frame {index} of {path}')
        frames[name, index] = image
    return {kind: [frames[name, index][y1:y2, x1:x2].copy()
                   for name, index, (x1, y1, x2, y2) in sources]
            for kind, sources in SPRITE_SOURCES.items()}


def _read_frame(path: Path, index: int) -> Optional[np.ndarray]:
    if path.suffix != '.mp4':
        return cv2.imread(str(path))
    capture = cv2.VideoCapture(str(path))
    capture.set(cv2.CAP_PROP_POS_FRAMES, index)
    ok, image = capture.read()
    capture.release()
    return image if ok else None


def road_background(camera: Camera, lanes_per_direction: int = 3) -> np.ndarray:
    """Draw grass, sky and a road with lane markings in perspective."""
    image = np.empty((camera.height, camera.width, 3), np.uint8)
    image[:] = (70, 130, 80)  # grass (BGR)
    image[:int(camera.horizon)] = (200, 170, 140)  # sky
    noise = np.random.default_rng(7).integers(-12, 12, image.shape, dtype=np.int16)

    def point(lateral: float, distance: float) -> Tuple[int, int]:
        x = camera.width / 2 + camera.focal * (lateral - camera.centre_offset) / distance
        y = camera.horizon + camera.focal * camera.mount_height / distance
        return round(x), round(y)

    half = lanes_per_direction * LANE_WIDTH + 0.5 + 3.0
    near, far = camera.near * 0.5, 2000.0
    road = np.array([point(-half, near), point(half, near), point(half, far),
                     point(-half, far)], np.int32)
    cv2.fillPoly(image, [road], (95, 95, 98))
    for lane in range(-lanes_per_direction, lanes_per_direction + 1):
        lateral = lane * LANE_WIDTH + (0.5 if lane > 0 else -0.5 if lane < 0 else 0.0)
        solid = lane == 0 or abs(lane) == lanes_per_direction
        step = 3.0 if solid else 12.0
        distance = near
        while distance < 300:
            end = distance + (step if solid else 4.0)
            cv2.line(image, point(lateral, distance), point(lateral, end), (225, 225, 225),
                     max(1, int(camera.focal * 0.15 / distance)))
            distance += step
    return np.clip(image.astype(np.int16) + noise, 0, 255).astype(np.uint8)


def render_frames(scene: Scene, sprites: Dict[str, List[np.ndarray]]) -> Iterator[np.ndarray]:
    """Yield the scene's frames (BGR), in step with ``scene.truth``."""
    background = road_background(scene.camera)
    vehicles = {v.vehicle_id: v for v in scene.vehicles}
    sprite_of = {v.vehicle_id: _pick(sprites, v.kind, v.sprite) for v in scene.vehicles}
    rng = np.random.default_rng(len(scene.vehicles))
    for frame_truth in scene.truth or build_truth(scene).truth:
        frame = background.copy()
        for truth in frame_truth:  # far first: near vehicles paint over
            vehicle = vehicles[truth.vehicle_id]
            # The whole box, also where the image edge cuts it (the truth's is clipped).
            box = vehicle.box(scene.camera, truth.distance)
            _paste(frame, sprite_of[truth.vehicle_id], box)
        # A little sensor noise, as a camera has.
        noise = rng.integers(-4, 5, frame.shape, dtype=np.int16)
        yield np.clip(frame.astype(np.int16) + noise, 0, 255).astype(np.uint8)


def _pick(sprites: Dict[str, List[np.ndarray]], kind: str, which: int) -> np.ndarray:
    choices = sprites.get(kind) or sprites['car']
    return choices[which % len(choices)]


def _paste(frame: np.ndarray, sprite: np.ndarray, box: Tuple[float, float, float, float]) -> None:
    """Scale ``sprite`` to ``box`` (may reach past the edges) and blend it in."""
    x1, y1, x2, y2 = (round(v) for v in box)
    width, height = x2 - x1, y2 - y1
    if width < 2 or height < 2:
        return
    scaled = cv2.resize(sprite, (width, height), interpolation=cv2.INTER_AREA
                        if width < sprite.shape[1] else cv2.INTER_LINEAR)
    # Soft edges: the crop's own background fades into the road.
    alpha = np.ones((height, width), np.float32)
    border = max(1, min(width, height) // 10)
    ramp = np.minimum(np.arange(width)[None, :] + 1, np.arange(width)[::-1][None, :] + 1)
    ramp = np.minimum(ramp, np.minimum(np.arange(height)[:, None] + 1,
                                       np.arange(height)[::-1][:, None] + 1))
    alpha = np.clip(ramp / border, 0.0, 1.0)[..., None].astype(np.float32)
    fx1, fy1 = max(x1, 0), max(y1, 0)
    fx2, fy2 = min(x2, frame.shape[1]), min(y2, frame.shape[0])
    if fx1 >= fx2 or fy1 >= fy2:
        return
    part = scaled[fy1 - y1:fy2 - y1, fx1 - x1:fx2 - x1].astype(np.float32)
    weight = alpha[fy1 - y1:fy2 - y1, fx1 - x1:fx2 - x1]
    target = frame[fy1:fy2, fx1:fx2].astype(np.float32)
    frame[fy1:fy2, fx1:fx2] = (part * weight + target * (1 - weight)).astype(np.uint8)
