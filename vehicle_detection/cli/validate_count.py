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
``vehicle-detection validate count``: count a recorded window by hand, frame by frame.

Three ways to press the keys, one meaning (:class:`CountingDesk`): an
OpenCV window (needs an OpenCV with GUI support, ``opencv-python``: the
box's headless one has none, so count on a laptop with the bag copied
there); ``--script -``: the terminal, one or more keys per line, each
answered with where you are (with ``--frame-file`` the current frame is
written as a picture for any image viewer); ``--script FILE``: a file of
keys, headless (tests, or a count made elsewhere replayed). The count is
saved to ``--out`` after every mark, so an interrupted count loses nothing;
run the command again to go on from the furthest frame seen.
"""

from __future__ import annotations

import argparse
from pathlib import Path
import sys
from typing import Any, Dict, IO, List, Optional, Tuple

from vehicle_detection.core.bridge.config import BridgeSettings
from vehicle_detection.core.counting.schemes import scheme_classes
from vehicle_detection.core.validation.manual import (
    CONTROLS, CountError, CountingDesk, default_keys, load_count, ManualCount, Mark,
    parse_key, save_count, script_tokens)
from vehicle_detection.core.validation.recording import (
    count_statuses, COUNTS_TOPIC, frame_times, FrameReader, image_topic, recorded_lines,
    RecordingError)

# Key codes of cv2.waitKeyEx for keys without a character (X11/GTK, Windows).
SPECIAL_KEYS = {27: 'esc', 32: 'space', 65363: 'n', 2555904: 'n', 65361: 'b', 2424832: 'b'}


def add_arguments(count: argparse.ArgumentParser) -> None:
    """Options of ``validate count``."""
    count.add_argument('bag', help='the recording (validate record, or bag make)')
    count.add_argument('--out', required=True, metavar='FILE.json',
                       help='the manual count; an existing one is opened to go on')
    count.add_argument('--line', default='',
                       help='the counting line to count (default: the only one recorded)')
    count.add_argument('--directions', default='', metavar='FIRST/SECOND',
                       help="the line's directions, for a bag without the system's counts")
    count.add_argument('--classes', default=None,
                       help='classes, comma-separated, in key order: the names the system '
                            "counts in (default: the classes of the recording's class "
                            "scheme, else of the bridge's default, "
                            f'{BridgeSettings().class_scheme}: '
                            f'{",".join(scheme_classes(BridgeSettings().class_scheme))})')
    count.add_argument('--key', action='append', default=[], metavar='K=DIRECTION/CLASS',
                       help='another key for a mark (repeatable); by default 1..9 mark the '
                            "line's first direction in class order, q..o its second")
    count.add_argument('--topic', default='', help='the image topic (default: the only one)')
    count.add_argument('--script', default='', metavar='FILE',
                       help='keys from a file ("-": typed in the terminal) instead of a '
                            'window: whitespace between keys, "space", "esc", "goto:FRAME", '
                            '"#" comments')
    count.add_argument('--frame-file', default='', metavar='PICTURE.jpg',
                       help='with --script: write the current frame here after each step')


def open_count(args: argparse.Namespace) -> Tuple[ManualCount, Dict[str, Mark], Any]:
    """Return the count (new or resumed), its keys, and the bag's statuses' chosen line."""
    topic, kind = image_topic(args.bag, args.topic)
    times = frame_times(args.bag, topic)
    if not times:
        raise RecordingError(f'{args.bag}: no frame on {topic}')
    stamps = [stamp for _time, stamp in times]
    statuses = count_statuses(args.bag) if COUNTS_TOPIC in dict(
        _topics(args.bag)) else []
    lines = recorded_lines(statuses)
    if args.line:
        chosen = [line for line in lines if line.name == args.line]
        if lines and not chosen:
            raise CountError(f'--line {args.line}: the recording has lines '
                             f'{", ".join(line.name for line in lines)}')
    elif len(lines) > 1:
        raise CountError('the recording has lines ' + ', '.join(line.name for line in lines)
                         + ': choose one with --line')
    else:
        chosen = lines
    if args.directions:
        first, slash, second = args.directions.partition('/')
        if not slash or not first or not second or first == second:
            raise CountError(f'--directions {args.directions!r}: expected FIRST/SECOND')
        directions = (first, second)
    elif chosen:
        directions = chosen[0].directions
    else:
        raise CountError(f'{args.bag} names no counting line (no {COUNTS_TOPIC}): give '
                         '--line NAME and --directions FIRST/SECOND')
    line = chosen[0].name if chosen else args.line or 'line'
    if args.classes is None:  # the scheme the recorded counts name
        scheme = next((str(status['scheme']) for status in reversed(statuses)
                       if status.get('scheme')), BridgeSettings().class_scheme)
        args.classes = ','.join(scheme_classes(scheme))
    classes = [name.strip() for name in args.classes.split(',') if name.strip()]
    if Path(args.out).exists():
        count = load_count(args.out, stamps)
        if count.line != line or count.directions != directions:
            raise CountError(f'{args.out} counts line {count.line} {"/".join(count.directions)}'
                             f', not {line} {"/".join(directions)}')
    else:
        count = ManualCount(args.bag, topic, line, directions, classes, stamps)
    keys = default_keys(count.directions, count.classes)
    for text in args.key:
        key, mark = parse_key(text, count.directions)
        keys[key] = mark
    reader = FrameReader(args.bag, topic, kind, [time for time, _stamp in times])
    return count, keys, (reader, chosen[0].name if chosen else '', statuses)


def _topics(bag: str) -> List[Tuple[str, str]]:
    from vehicle_detection.core.system.bag_tools import bag_topics
    return bag_topics(bag)


def run(args: argparse.Namespace) -> int:
    """Count by window, terminal or script; save after every change; print the tally."""
    if args.frame_file and not args.script:
        raise CountError('--frame-file goes with --script (the window shows the frame)')
    count, keys, (reader, line, statuses) = open_count(args)
    desk = CountingDesk(count, keys)
    desk.position = count.reached
    view = FrameView(reader, line, statuses, keys)
    try:
        if args.script and args.script != '-':
            scripted(desk, Path(args.script).read_text(encoding='utf-8'), args, view)
        elif args.script == '-':
            terminal(desk, sys.stdin, args, view)
        else:
            window(desk, args, view)
    finally:  # what was counted, even on an error; nothing when nothing was
        if count.marks or count.reached or Path(args.out).exists():
            save_count(count, args.out)
    tally = ', '.join(f'{direction} {name} {n}' for (direction, name), n in
                      sorted(desk.tallies().items())) or 'no vehicle'
    print(f'counted {len(count.marks)} vehicle{"" if len(count.marks) == 1 else "s"} on '
          f'{count.line} ({tally}) up to frame '
          f'{count.reached} of {len(count.stamps) - 1}; saved to {args.out}')
    return 0


def scripted(desk: CountingDesk, text: str, args: argparse.Namespace,
             view: 'FrameView') -> None:
    """Press the script's keys in order; a key that does nothing is an error (line named)."""
    for number, token in script_tokens(text):
        try:
            desk.press(token)
        except CountError as error:
            raise CountError(f'{args.script}, line {number}: {error}') from error
        _after(desk, args, view, '')
        if desk.finished:
            break


def terminal(desk: CountingDesk, stream: IO[str], args: argparse.Namespace,
             view: 'FrameView') -> None:
    """Take keys typed in the terminal, a line at a time; say where the count stands."""
    print(help_text(desk.keys), file=sys.stderr)
    print(status_line(desk, ''), file=sys.stderr, flush=True)
    for text in stream:
        message = ''
        for token in text.split() or ['n']:  # Enter alone: the next frame
            try:
                message = desk.press(token)
            except CountError as error:
                message = str(error)
            if desk.finished:
                break
        _after(desk, args, view, message)
        print(status_line(desk, message), file=sys.stderr, flush=True)
        if desk.finished:
            break


def window(desk: CountingDesk, args: argparse.Namespace, view: 'FrameView') -> None:
    """Show each frame in an OpenCV window and take its keys."""
    import cv2
    title = f'validate count: {desk.count.line}'
    try:
        cv2.namedWindow(title, cv2.WINDOW_NORMAL)
    except cv2.error as error:
        raise CountError('this OpenCV cannot open a window (opencv-python-headless, or no '
                         'display): install opencv-python where you count, or use --script - '
                         f'(the terminal) with --frame-file ({error.msg.strip()})') from error
    message = ''
    try:
        while not desk.finished:
            cv2.imshow(title, view.draw(desk, message))
            code = -1
            while code < 0 and cv2.getWindowProperty(title, cv2.WND_PROP_VISIBLE) >= 1:
                code = cv2.waitKeyEx(100)  # polled: a window closed by its X gives no key
            if code < 0:
                break
            token = SPECIAL_KEYS.get(code, chr(code & 0xFF))
            try:
                message = desk.press(token)
            except CountError as error:
                message = str(error).split(' (keys:')[0]
            _after(desk, args, view, message)
    finally:
        cv2.destroyWindow(title)


def _after(desk: CountingDesk, args: argparse.Namespace, view: 'FrameView',
           message: str) -> None:
    """Save what changed (a crash loses nothing); write the frame for a viewer."""
    if desk.unsaved or desk.save_asked:
        save_count(desk.count, args.out)
        desk.unsaved = desk.save_asked = False
    if args.frame_file:
        import cv2
        cv2.imwrite(args.frame_file, view.draw(desk, message))


def status_line(desk: CountingDesk, message: str) -> str:
    """Return one line: the frame, its time, the marks on it and the tallies."""
    from vehicle_detection.core.validation.report import iso
    count = desk.count
    here = [f'{m.direction} {m.class_name}' for m in count.marks if m.frame == desk.position]
    tally = ' '.join(f'{d}/{c}={n}' for (d, c), n in sorted(desk.tallies().items()))
    return (f'frame {desk.position}/{len(count.stamps) - 1} '
            f'{iso(count.stamps[desk.position] / 1e9)}'
            + (f' marked here: {", ".join(here)}' if here else '')
            + f' | {tally or "nothing counted"}' + (f' | {message}' if message else ''))


def help_text(keys: Dict[str, Mark]) -> str:
    """Return the keys and what they do."""
    marks = '  '.join(f'{key}={direction}/{name}' for key, (direction, name) in keys.items())
    controls = '  '.join(f'{key}={what}' for key, (_action, what) in CONTROLS.items())
    return f'marks: {marks}\nkeys: {controls}  goto:FRAME (script, terminal)'


class FrameView:
    """Draws a frame with the counting line, the time and the tallies for the operator."""

    def __init__(self, reader: FrameReader, line: str, statuses: List[Dict[str, Any]],
                 keys: Dict[str, Mark]) -> None:
        """Keep the reader and the chosen line's pixels from the last status naming it."""
        self.reader = reader
        self.keys = keys
        self.segment: Optional[Tuple[Tuple[int, int], Tuple[int, int]]] = None
        for status in reversed(statuses):
            for entry in status.get('lines') or []:
                if isinstance(entry, dict) and entry.get('name') == line:
                    try:
                        a, b = entry['a'], entry['b']
                        self.segment = ((int(a[0]), int(a[1])), (int(b[0]), int(b[1])))
                    except (KeyError, IndexError, TypeError, ValueError):
                        continue
                    break
            if self.segment:
                break

    def draw(self, desk: CountingDesk, message: str) -> Any:
        """Return the current frame, annotated (a copy): bands of text above and below."""
        import cv2
        from vehicle_detection.core.validation.report import iso
        canvas = self.reader.get(desk.position).copy()
        if self.segment:
            cv2.line(canvas, *self.segment, (0, 220, 255), 2, cv2.LINE_AA)
        count = desk.count
        here = [f'{m.direction} {m.class_name}' for m in count.marks if m.frame == desk.position]
        top = [f'frame {desk.position}/{len(count.stamps) - 1}  '
               f'{iso(count.stamps[desk.position] / 1e9)}  line {count.line}',
               '  '.join(f'{d} {c}: {n}' for (d, c), n in sorted(desk.tallies().items()))
               or 'nothing counted yet', message or ('here: ' + ', '.join(here) if here else '')]
        bottom = ['  '.join(f'{key}={direction[:7]}/{name[:5]}' for key, (direction, name)
                            in self.keys.items() if direction == count.directions[index])
                  for index in (0, 1)]
        bottom.append('n/space next  b back  . +10  , -10  z undo  s save  x quit')
        _band(canvas, [text for text in top if text], top=True)
        _band(canvas, bottom, top=False)
        return canvas


def _band(canvas: Any, texts: List[str], top: bool) -> None:
    """Write lines of text on a darkened band at the top or bottom of the picture."""
    import cv2
    scale = max(0.4, canvas.shape[1] / 1400)
    step = int(22 * scale / 0.45)
    height = step * len(texts) + 6
    rows = slice(0, height) if top else slice(max(canvas.shape[0] - height, 0), None)
    canvas[rows] = (canvas[rows] * 0.35).astype(canvas.dtype)
    first = step - 4 if top else canvas.shape[0] - height + step - 4
    for row, text in enumerate(texts):
        cv2.putText(canvas, text, (6, first + row * step), cv2.FONT_HERSHEY_SIMPLEX, scale,
                    (255, 255, 255), 1, cv2.LINE_AA)
