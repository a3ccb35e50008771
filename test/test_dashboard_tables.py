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
The engineer's views in a real headless Chromium: the 15-minute table, charts, the viewer.

The browser runs in Asia/Kolkata (UTC+05:30), so that local time and UTC
differ by a fraction of an hour: round local hours are not round UTC hours.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
import random
from typing import Dict, Iterator, List, Optional, Tuple
import uuid

from browser_pages import ARTIFACTS, chromium, click_when_shown, page_wait, text_of
from cloud_helpers import add_device, alert_body, CloudServer
import pytest
import requests

from vehicle_detection.wire import CountRecord, utc_iso

KOLKATA = timezone(timedelta(hours=5, minutes=30))  # no daylight saving time
QUARTER = timedelta(minutes=15)
DIRECTIONS, CLASSES = ('away', 'towards'), ('bus', 'car', 'truck')
NO_DATA, NO_TRAFFIC = 4, 7  # quarters: one not observed, one observed with no vehicle


@pytest.fixture
def browser() -> Iterator[object]:
    yield from chromium({'TZ': 'Asia/Kolkata'})


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Tuple[CloudServer, dict]]:
    db, storage = f'sqlite:///{tmp_path}/cloud.db', str(tmp_path / 'images')
    headers = {'X-API-Key': add_device('gate-north', db, storage)}
    cloud = CloudServer(db, storage)
    try:
        yield cloud, headers
    finally:
        cloud.stop()


def post_quarters(api: str, headers: dict) -> Tuple[List[datetime], Dict[datetime, dict]]:
    """Post 10 quarters of counts (three 1-minute periods each) ending before now."""
    now = datetime.now(timezone.utc)
    last = now.replace(minute=now.minute // 15 * 15, second=0, microsecond=0) - QUARTER
    quarters = [last - (9 - q) * QUARTER for q in range(10)]
    chance = random.Random(26)
    truth: Dict[datetime, dict] = {}
    for q, start in enumerate(quarters):
        if q == NO_DATA:
            continue
        truth[start] = {}
        for minute in (0, 5, 10):
            rows = [] if q == NO_TRAFFIC else [
                ('bar', d, c, chance.randint(0, 4)) for d in DIRECTIONS for c in CLASSES]
            rows = [row for row in rows if row[3]]
            for _, d, c, n in rows:
                truth[start][(d, c)] = truth[start].get((d, c), 0) + n
            body = CountRecord(str(uuid.uuid4()), 'gate-north', 'cam0',
                               utc_iso(start + timedelta(minutes=minute)), 60, tuple(rows))
            answer = requests.post(f'{api}/counts', json=body.to_json(), headers=headers,
                                   timeout=5)
            assert answer.status_code == 201, answer.text
    return quarters, truth


def column_value(counts: dict, direction: Optional[str], name: Optional[str]) -> int:
    return sum(n for (d, c), n in counts.items()
               if direction in (None, d) and name in (None, c))


def columns() -> List[Tuple[Optional[str], Optional[str]]]:
    """Return the table's columns: per direction its classes and its total, then all."""
    return [(d, c) for d in DIRECTIONS for c in (*CLASSES, None)] + [(None, None)]


def peak_hour(quarters: List[datetime], truth: Dict[datetime, dict]
              ) -> Tuple[datetime, Dict[tuple, Tuple[int, Optional[float]]]]:
    """Return the first of the busiest 4 observed quarters in a row; per column V, PHF."""
    best: Optional[Tuple[int, int]] = None
    for i in range(len(quarters) - 3):
        hour = quarters[i:i + 4]
        if all(t in truth for t in hour):
            volume = sum(column_value(truth[t], None, None) for t in hour)
            if volume and (best is None or volume > best[0]):
                best = (volume, i)
    assert best is not None
    hour = quarters[best[1]:best[1] + 4]
    found = {}
    for d, c in columns():
        volumes = [column_value(truth[t], d, c) for t in hour]
        found[(d, c)] = (sum(volumes), sum(volumes) / (4 * max(volumes)) if max(volumes) else None)
    return hour[0], found


def read_cells(browser, selector: str) -> List[list]:
    """Return, per row of the table, [data-start, [[direction, class, text], ...]]."""
    return browser.execute_script(
        'return [...document.querySelectorAll(arguments[0])].map(r => [r.dataset.start || null,'
        ' [...r.cells].filter(c => c.tagName === "TD").map(c => [c.dataset.direction || null,'
        ' c.dataset.class || null, c.textContent])])', selector)


def test_the_15_minute_table_and_the_chart_agree_with_the_posted_counts(
        browser, server) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    cloud, headers = server
    quarters, truth = post_quarters(cloud.url + '/api/v1', headers)
    browser.get(cloud.url + '/')
    table = 'figure.traffic[data-line="bar"] table.t15'
    wait = page_wait(browser, 20)
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, f'{table} tbody tr')) == 10)
    iso = [utc_iso(t).replace('+00:00', 'Z') for t in quarters]
    body = read_cells(browser, f'{table} tbody tr')
    assert [start for start, _ in body] == [t.strftime('%Y-%m-%dT%H:%M:%S.000Z')
                                            for t in quarters], iso
    for (start, cells), quarter in zip(body, quarters):
        if quarter not in truth:  # not observed: said so, not a zero
            assert [text for _, _, text in cells] == ['no data']
            continue
        assert [(d, c) for d, c, _ in cells] == columns()
        assert [int(text) for _, _, text in cells] == [
            column_value(truth[quarter], d, c) for d, c in columns()], start
    assert not any(truth[quarters[NO_TRAFFIC]].values())
    [(_, totals)] = read_cells(browser, f'{table} tfoot tr.total')
    assert [int(text) for _, _, text in totals] == [
        sum(column_value(counts, d, c) for counts in truth.values()) for d, c in columns()]
    first, expected = peak_hour(quarters, truth)
    [(peak_start, volumes)] = read_cells(browser, f'{table} tfoot tr.peak')
    assert peak_start == first.strftime('%Y-%m-%dT%H:%M:%S.000Z')
    assert [int(text) for _, _, text in volumes] == [expected[k][0] for k in columns()]
    [(_, factors)] = read_cells(browser, f'{table} tfoot tr.phf')
    for (d, c, text), key in zip(factors, columns()):
        assert (d, c) == key
        phf = expected[key][1]
        assert (text == '–') if phf is None else abs(float(text) - phf) <= 0.005 + 1e-9, key
    label = text_of(browser, f'{table} tfoot tr.peak th')
    assert label == f'Peak hour {first.astimezone(KOLKATA):%H:%M}–' \
                    f'{(first + 4 * QUARTER).astimezone(KOLKATA):%H:%M}'

    # The chart: numeric axes, x ticks on round hours of the browser's zone, values on hover.
    chart = 'Chart.getChart(document.querySelector(\'figure.traffic[data-line="bar"] canvas\'))'
    y_ticks = browser.execute_script(
        f'return {chart}.scales.y.ticks.map(t => ({{value: t.value, label: t.label}}))')
    values = [tick['value'] for tick in y_ticks]
    busiest = max(column_value(counts, None, None) for counts in truth.values())
    assert values[0] == 0 and values == sorted(values) and len(values) >= 3
    assert browser.execute_script(f'return {chart}.scales.y.max') >= busiest
    assert [tick['label'] for tick in y_ticks] == [str(v) for v in values]
    x_ticks = browser.execute_script(
        f'return {chart}.scales.x.ticks.map(t => ({{value: t.value, label: t.label}}))')
    assert len(x_ticks) >= 6
    for tick in x_ticks:
        local = datetime.fromtimestamp(tick['value'] / 1000, KOLKATA)
        assert (local.minute, local.second) == (0, 0), local
        assert tick['label'] == (f'{local.day}/{local.month}' if local.hour == 0
                                 else f'{local:%H:00}')
    target = max(truth, key=lambda t: column_value(truth[t], None, None))
    x, y, width, height = browser.execute_script(
        f'const c = {chart}; const i = c.data.datasets[0].data.findIndex(p => p.x === '
        'arguments[0]); const bar = c.getDatasetMeta(0).data[i];'
        'return [bar.x, bar.y, c.canvas.clientWidth, c.canvas.clientHeight]',
        (target + QUARTER / 2).timestamp() * 1000)  # a bar spans its quarter
    canvas = browser.find_element(By.CSS_SELECTOR, 'figure.traffic[data-line="bar"] canvas')
    ActionChains(browser).move_to_element_with_offset(
        canvas, int(x - width / 2), int(y - height / 2) + 2).perform()
    wait.until(lambda d: d.execute_script(f'return {chart}.tooltip.opacity') > 0)
    hover = browser.execute_script(
        f'const t = {chart}.tooltip; return [t.title, t.dataPoints.map('
        'p => [p.dataset.label, p.parsed.x, p.parsed.y]), t.footer]')
    assert hover[0] == [f'{target.astimezone(KOLKATA):%Y-%m-%d %H:%M}–'
                        f'{(target + QUARTER).astimezone(KOLKATA):%H:%M}']
    assert hover[1] == [[d, (target + QUARTER / 2).timestamp() * 1000,
                         column_value(truth[target], d, None)] for d in DIRECTIONS]
    assert hover[2] == [f'total: {column_value(truth[target], None, None)}']
    ARTIFACTS.mkdir(exist_ok=True)
    assert browser.find_element(By.ID, 'traffic-panel').screenshot(
        str(ARTIFACTS / 'traffic-table.png'))
    # Chart.js runs under the strict CSP: nothing refused, nothing fetched from elsewhere.
    problems = [entry['message'] for entry in browser.get_log('browser')
                if entry['level'] == 'SEVERE' and '/favicon.ico' not in entry['message']]
    assert not problems, problems


def snapshot(colour: Tuple[int, int, int], bbox: List[float]) -> bytes:
    """Return a 320 x 240 JPEG (a 640 x 480 frame sent at half size): a patch at bbox."""
    import cv2
    import numpy as np
    image = np.full((240, 320, 3), (90, 90, 90), np.uint8)
    x1, y1, x2, y2 = (int(v / 2) for v in bbox)
    cv2.rectangle(image, (x1 + 3, y1 + 3), (x2 - 3, y2 - 3), colour, -1)
    return cv2.imencode('.jpg', image)[1].tobytes()


# Boxes in the frame's pixels (640 x 480): at the bottom edge, top right, middle.
BOXES = ([40.0, 380.0, 200.0, 478.0], [400.0, 60.0, 560.0, 200.0], [260.0, 200.0, 380.0, 300.0])


def geometry(browser, selector: str) -> dict:
    return browser.execute_script(
        'const r = document.querySelector(arguments[0]).getBoundingClientRect();'
        'return {left: r.left, top: r.top, right: r.right, bottom: r.bottom, width: r.width,'
        ' height: r.height}', selector)


def assert_box_on_image(image: dict, box: dict, bbox: List[float]) -> None:
    """Assert that the box lies where bbox (640 x 480 frame pixels) falls on the image."""
    sx, sy = image['width'] / 640, image['height'] / 480
    for side, expected in (('left', image['left'] + bbox[0] * sx),
                           ('top', image['top'] + bbox[1] * sy),
                           ('right', image['left'] + bbox[2] * sx),
                           ('bottom', image['top'] + bbox[3] * sy)):
        assert abs(box[side] - expected) <= 1.5, (side, box, expected)


def test_the_viewer_draws_the_box_and_steps_through_the_alerts(browser, server) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    cloud, headers = server
    api = cloud.url + '/api/v1'
    posted = []
    for index, (bbox, colour) in enumerate(zip(BOXES, ((40, 90, 160), (160, 90, 40),
                                                       (60, 140, 60)))):
        body = alert_body('gate-north', class_name='car', track_id=index, bbox=bbox,
                          image_width=640, image_height=480,
                          detected_at=utc_iso(datetime.now(timezone.utc)
                                              - timedelta(seconds=30 - index)))
        assert requests.post(f'{api}/alerts', json=body, headers=headers,
                             timeout=5).status_code == 201
        assert requests.put(f'{api}/alerts/{body["event_id"]}/image', data=snapshot(colour, bbox),
                            headers={**headers, 'Content-Type': 'image/jpeg'},
                            timeout=5).status_code == 201
        posted.append(body['event_id'])
    newest_first = list(reversed(posted))
    browser.get(cloud.url + '/')
    wait = page_wait(browser, 20)
    wait.until(lambda d: d.execute_script(
        'return [...document.querySelectorAll("#alerts .thumb img")]'
        '.filter(i => i.complete && i.naturalWidth > 0).length') == 3)
    # Thumbnails: cropped around the box, which stays whole in the frame (the one at the
    # bottom edge too), outlined where the vehicle is.
    for event_id, bbox in zip(posted, BOXES):
        card = f'#alerts .alert[data-event-id="{event_id}"] .thumb'
        frame, box = geometry(browser, card), geometry(browser, f'{card} .box')
        assert_box_on_image(geometry(browser, f'{card} img'), box, bbox)
        assert frame['left'] - 0.5 <= box['left'] and box['right'] <= frame['right'] + 0.5
        assert frame['top'] - 0.5 <= box['top'] and box['bottom'] <= frame['bottom'] + 0.5
        assert box['width'] >= 0.2 * frame['width']  # zoomed in: not a speck
    ARTIFACTS.mkdir(exist_ok=True)
    assert browser.find_element(By.ID, 'alerts').screenshot(str(ARTIFACTS / 'thumbnails.png'))
    click_when_shown(wait, f'.alert[data-event-id="{newest_first[0]}"] .thumb')

    def shows(event_id: str) -> None:
        wait.until(lambda d: d.execute_script(
            'return document.getElementById("viewer").dataset.shown') == event_id)
        image = geometry(browser, '#viewer-img')
        assert image['width'] >= 2 * 320  # a 320 px snapshot opens at a readable size
        assert_box_on_image(image, geometry(browser, '#viewer-box rect.bbox'),
                            BOXES[posted.index(event_id)])

    shows(newest_first[0])
    browser.save_screenshot(str(ARTIFACTS / 'dashboard-viewer-box.png'))
    assert not browser.find_element(By.ID, 'viewer-prev').is_enabled()
    assert browser.find_element(By.ID, 'viewer-position').text == '1 of 3'
    browser.find_element(By.ID, 'viewer-next').click()
    shows(newest_first[1])
    dialog = browser.find_element(By.ID, 'viewer')
    dialog.send_keys(Keys.ARROW_RIGHT)
    shows(newest_first[2])
    assert not browser.find_element(By.ID, 'viewer-next').is_enabled()
    assert browser.find_element(By.ID, 'viewer-position').text == '3 of 3'
    dialog.send_keys(Keys.ARROW_LEFT)
    shows(newest_first[1])
    browser.find_element(By.ID, 'viewer-prev').click()
    shows(newest_first[0])
    browser.find_element(By.ID, 'viewer-close').click()
    wait.until(lambda d: not d.find_element(By.ID, 'viewer').get_attribute('open'))
