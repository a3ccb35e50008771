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
A manual count of a recorded window: crossings marked frame by frame, by key.

The operator steps through the recording's frames and presses a key when a
vehicle crosses the counting line: one key per direction and class (by
default ``1``..``9`` for the line's first direction, ``q``..``o`` for its
second, in the order of the classes). :class:`CountingDesk` is the keys'
meaning, the same for a window, the terminal and a script of keys, so the
headless script tests what the operator uses. The count is saved as JSON
(:func:`save_count`) after every change that matters, and reopened to go on.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
import json
from pathlib import Path
import re
from typing import Dict, List, Sequence, Tuple

FORMAT = 'vehicle_detection manual count 1'
FIRST_KEYS = '123456789'
SECOND_KEYS = 'qwertyuio'
JUMP = 10  # frames of '.' and ','
CONTROLS = {  # key -> (action, what the help line says)
    'n': ('next', 'next frame'), 'space': ('next', 'next frame'), 'b': ('back', 'back'),
    '.': ('forward', f'+{JUMP} frames'), ',': ('rewind', f'-{JUMP} frames'),
    'z': ('undo', "undo this frame's last mark"), 's': ('save', 'save'),
    'x': ('quit', 'save and quit'), 'esc': ('quit', 'save and quit')}
_GOTO = re.compile(r'^goto:(\d+)$')
Mark = Tuple[str, str]  # direction, class


class CountError(ValueError):
    """A manual count file, a key map or a script is wrong; the message says where."""


@dataclass
class MarkedCrossing:
    """One vehicle the operator saw cross: the frame, its stamp, direction and class."""

    frame: int
    stamp_ns: int
    direction: str
    class_name: str


@dataclass
class ManualCount:
    """The operator's count of one line over a recording's frames."""

    bag: str
    topic: str
    line: str
    directions: Tuple[str, str]
    classes: List[str]
    stamps: List[int]  # every frame's header stamp (ns)
    marks: List[MarkedCrossing] = field(default_factory=list)
    reached: int = 0  # the furthest frame the operator has seen

    @property
    def window(self) -> Tuple[float, float]:
        """Return (first frame, furthest frame seen) in epoch seconds: what was counted."""
        return self.stamps[0] / 1e9, self.stamps[self.reached] / 1e9


def default_keys(directions: Sequence[str], classes: Sequence[str]) -> Dict[str, Mark]:
    """Return the default keys: digits for the first direction, q..o for the second."""
    if not 1 <= len(classes) <= len(FIRST_KEYS):
        raise CountError(f'1 to {len(FIRST_KEYS)} classes have a key each; got {len(classes)}')
    keys = {key: (directions[0], name) for key, name in zip(FIRST_KEYS, classes)}
    keys.update({key: (directions[1], name) for key, name in zip(SECOND_KEYS, classes)})
    return keys


def parse_key(text: str, directions: Sequence[str]) -> Tuple[str, Mark]:
    """Parse ``K=DIRECTION/CLASS`` (a key of one character); refuse control keys."""
    key, equals, target = text.partition('=')
    direction, slash, name = target.partition('/')
    if not equals or not slash or len(key) != 1 or not name:
        raise CountError(f'--key {text!r}: expected K=DIRECTION/CLASS, K one character')
    if key in CONTROLS or key == ' ':
        raise CountError(f'--key {text!r}: {key!r} is the key to {CONTROLS.get(key, CONTROLS["space"])[1]}')  # noqa: E501
    if direction not in directions:
        raise CountError(f"--key {text!r}: the direction must be one of the line's: "
                         f'{", ".join(directions)}')
    return key, (direction, name)


class CountingDesk:
    """Where the operator is in the recording and what each key does there."""

    def __init__(self, count: ManualCount, keys: Dict[str, Mark]) -> None:
        self.count = count
        self.keys = keys
        self.position = 0
        self.finished = False  # quit asked
        self.unsaved = False
        self.save_asked = False

    def press(self, token: str) -> str:
        """Act on one key (or ``goto:N``); return what happened, for the operator."""
        if token in self.keys:
            direction, name = self.keys[token]
            self.count.marks.append(MarkedCrossing(
                self.position, self.count.stamps[self.position], direction, name))
            self.unsaved = True
            return f'+1 {direction} {name} (frame {self.position})'
        goto = _GOTO.match(token)
        if goto:
            return self._move(int(goto.group(1)) - self.position)
        action = CONTROLS.get(token, ('', ''))[0]
        if action in ('next', 'back', 'forward', 'rewind'):
            return self._move({'next': 1, 'back': -1, 'forward': JUMP, 'rewind': -JUMP}[action])
        if action == 'undo':
            here = [i for i, mark in enumerate(self.count.marks) if mark.frame == self.position]
            if not here:
                return 'no mark on this frame to undo'
            mark = self.count.marks.pop(here[-1])
            self.unsaved = True
            return f'-1 {mark.direction} {mark.class_name} (frame {self.position})'
        if action == 'save':
            self.save_asked = True
            return 'saved'
        if action == 'quit':
            self.finished = True
            return 'saved; quitting'
        raise CountError(f'key {token!r} does nothing (keys: {", ".join(sorted(self.keys))}, '
                         f'{", ".join(CONTROLS)}, goto:FRAME)')

    def _move(self, step: int) -> str:
        last = len(self.count.stamps) - 1
        self.position = min(max(self.position + step, 0), last)
        if self.position > self.count.reached:
            self.count.reached = self.position
            self.unsaved = True
        return f'frame {self.position}/{last}'

    def tallies(self) -> Dict[Mark, int]:
        """Return the marks so far per (direction, class)."""
        tally: Dict[Mark, int] = {}
        for mark in self.count.marks:
            key = (mark.direction, mark.class_name)
            tally[key] = tally.get(key, 0) + 1
        return tally


def script_tokens(text: str) -> List[Tuple[int, str]]:
    """Return (line number, token) of a key script: keys and goto:N, ``#`` starts a comment."""
    return [(number, token) for number, line in enumerate(text.splitlines(), 1)
            for token in line.split('#', 1)[0].split()]


def save_count(count: ManualCount, path: str) -> None:
    """Write the count as JSON, through a temporary file (a crash never leaves half a file)."""
    data = {'format': FORMAT, 'bag': count.bag, 'topic': count.topic, 'line': count.line,
            'directions': list(count.directions), 'classes': count.classes,
            'frames': len(count.stamps), 'first_stamp_ns': count.stamps[0],
            'last_stamp_ns': count.stamps[-1], 'reached_frame': count.reached,
            'reached_stamp_ns': count.stamps[count.reached],
            'marks': [asdict(mark) for mark in sorted(count.marks, key=lambda m: m.frame)]}
    temporary = Path(path + '.partial')
    temporary.write_text(json.dumps(data, indent=1) + '\n', encoding='utf-8')
    temporary.replace(path)


def load_count(path: str, stamps: List[int]) -> ManualCount:
    """Read a manual count file of the recording whose frames have ``stamps`` (ns)."""
    try:
        data = json.loads(Path(path).read_text(encoding='utf-8'))
    except (OSError, ValueError) as error:
        raise CountError(f'{path}: cannot read a manual count ({error})') from error
    if not isinstance(data, dict) or data.get('format') != FORMAT:
        raise CountError(f'{path}: not a manual count file (made by `vehicle-detection '
                         'validate count`)')
    try:
        frames, first, reached = (int(data['frames']), int(data['first_stamp_ns']),
                                  int(data['reached_frame']))
        directions = (str(data['directions'][0]), str(data['directions'][1]))
        marks = [MarkedCrossing(int(m['frame']), int(m['stamp_ns']), str(m['direction']),
                                str(m['class_name'])) for m in data['marks']]
        count = ManualCount(str(data['bag']), str(data['topic']), str(data['line']),
                            directions, [str(c) for c in data['classes']], stamps, marks,
                            reached)
    except (KeyError, IndexError, TypeError, ValueError) as error:
        raise CountError(f'{path}: a field is missing or wrong ({error!r})') from error
    if len(stamps) != frames or stamps[0] != first:
        raise CountError(f'{path} counts another recording ({frames} frames from '
                         f'{first / 1e9:.3f}) than this one ({len(stamps)} frames from '
                         f'{stamps[0] / 1e9:.3f})')
    for mark in marks:
        if not 0 <= mark.frame < frames or mark.direction not in directions:
            raise CountError(f'{path}: mark {asdict(mark)} lies outside the recording or its '
                             f"line's directions {directions}")
    if not 0 <= reached < frames:
        raise CountError(f'{path}: reached_frame {reached} outside 0..{frames - 1}')
    return count
