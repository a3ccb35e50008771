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

"""The dashboard in a real headless Chromium: alerts, device health and the monitor appear live."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
import os
from pathlib import Path
import subprocess
from typing import Optional
from urllib.parse import parse_qs, urlsplit
import uuid

from browser_pages import ARTIFACTS, click_when_shown, page_wait, text_of, texts_of
from cloud_helpers import add_device, alert_body, cloud_cli, CloudServer, PostgresServer
import requests

from vehicle_detection.wire import CountRecord, utc_iso


def photo_jpegs(samples_dir: Path) -> list:
    """Return the sample photos as 320 px wide JPEG snapshots."""
    import cv2
    images = [cv2.imread(str(p)) for p in sorted(samples_dir.iterdir())
              if p.suffix in ('.png', '.jpg')]
    return [cv2.imencode('.jpg', cv2.resize(i, (320, 320 * i.shape[0] // i.shape[1])))[1]
            .tobytes() for i in images]


def test_dashboard_shows_alerts_and_health_without_reload(browser, tmp_path: Path,
                                                          samples_dir: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    db, storage = f'sqlite:///{tmp_path}/cloud.db', str(tmp_path / 'images')
    key = add_device('gate-north', db, storage)
    server = CloudServer(db, storage)
    api = server.url + '/api/v1'
    headers = {'X-API-Key': key}
    try:
        ARTIFACTS.mkdir(exist_ok=True)
        browser.get(server.url + '/')
        wait = page_wait(browser, 20)
        wait.until(lambda d: d.execute_script('return window.vdRefreshes') >= 1)
        browser.execute_script('window.vdMarker = "same page"')
        posted, ids = [], []
        photos = photo_jpegs(samples_dir)
        # Sorted samples: motorcycle.png, then the street photo with the bicycle and truck.
        for index, name in enumerate(['motorcycle', 'bicycle', 'truck']):
            body = alert_body('gate-north', class_name=name, track_id=index,
                              detected_at=_now_iso())
            created = requests.post(f'{api}/alerts', json=body, headers=headers, timeout=5)
            assert created.status_code == 201
            ids.append(created.json()['id'])
            answer = requests.put(f'{api}/alerts/{body["event_id"]}/image',
                                  data=photos[min(index, len(photos) - 1)], timeout=5,
                                  headers={**headers, 'Content-Type': 'image/jpeg'})
            assert answer.status_code == 201
            posted.append(body['event_id'])
        heartbeat = {'cpu_percent': 37.0, 'memory_percent': 52.0, 'temperature_c': 48.5,
                     'queue_depth': 4, 'oldest_unsent_s': 12.0, 'upload_success_rate': 0.97,
                     'bytes_month': 512 * 1048576, 'budget_bytes': 20480 * 1048576,
                     'outbox_db_bytes': 3 * 1048576, 'snapshot_bytes': 1048576 // 2,
                     'log_bytes': 0}
        assert requests.post(f'{api}/devices/gate-north/heartbeat', json=heartbeat,
                             headers=headers, timeout=5).status_code == 200

        def thumbnails_loaded(driver) -> bool:
            return driver.execute_script(
                'return [...document.querySelectorAll("#alerts .alert img")]'
                '.filter(i => i.complete && i.naturalWidth > 0).length') == len(posted)
        wait.until(thumbnails_loaded)  # the 5 s refresh picks them up
        assert set(texts_of(browser, '#alerts .alert', 'data-event-id')) == set(posted)
        row = '#devices tr[data-device="gate-north"]'

        def device_row_online(driver) -> str:
            text = text_of(driver, row)
            return text if 'online' in text and '37 %' in text else ''
        shown = wait.until(device_row_online)
        assert '512.0 MB / 20480.0 MB' in shown and '97 %' in shown
        assert '3.5 MB' in shown  # disk used on the box: outbox, snapshots, logs
        assert browser.execute_script('return window.vdMarker') == 'same page'  # no reload
        # After the first page, each refresh asks only for alerts newer than those shown.
        wait.until(lambda d: any(f'after_id={max(ids)}' in query for query in d.execute_script(
            'return window.vdAlertQueries')))
        assert browser.execute_script(  # one bar per class
            'return Chart.getChart(document.getElementById("chart-class")).data.labels'
        ) == ['bicycle', 'motorcycle', 'truck']
        check_traffic_queries(browser, api, headers)
        check_refused_range_and_replays(browser, api, headers, set(posted))
        click_when_shown(wait, '#alerts .alert img')
        wait.until(lambda d: d.execute_script(
            'const i = document.getElementById("viewer-img");'
            'return document.getElementById("viewer").open && i.complete '
            '&& i.naturalWidth == 320 && document.querySelector("#viewer-box rect")'))
        browser.save_screenshot(str(ARTIFACTS / 'dashboard-viewer.png'))
        browser.find_element(By.ID, 'viewer-close').click()
        # A wrong-way driver: marked on its card, and the Kind filter shows it alone.
        wrong = alert_body('gate-north', class_name='car', track_id=9, detected_at=_now_iso(),
                           kind='wrong_way', line='north', direction='towards')
        assert requests.post(f'{api}/alerts', json=wrong, headers=headers,
                             timeout=5).status_code == 201
        kinds = Select(browser.find_element(By.ID, 'f-kind'))
        wait.until(lambda d: 'wrong_way' in [o.get_attribute('value') for o in kinds.options])
        kinds.select_by_value('wrong_way')
        # Read in one go: the 5 s refresh may redraw the cards between two reads.
        wait.until(lambda d: d.execute_script(
            'return [...document.querySelectorAll("#alerts .alert")].map(c => c.dataset.eventId)'
        ) == [wrong['event_id']])
        assert 'wrong way on north (towards)' in browser.execute_script(
            'return document.querySelector("#alerts .alert").innerText')
        kinds.select_by_value('')
        assert browser.save_screenshot(str(ARTIFACTS / 'dashboard.png'))
        assert os.path.getsize(ARTIFACTS / 'dashboard.png') > 10000
    finally:
        server.stop()


def check_traffic_queries(browser, api: str, headers: dict) -> None:
    """Check that the traffic panel asks only for what it draws: its stacking, a bucket's span."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    minute = datetime.now(timezone.utc).replace(second=0, microsecond=0) - timedelta(minutes=1)
    body = CountRecord(str(uuid.uuid4()), 'gate-north', 'cam0', utc_iso(minute), 60, (
        ('bar', 'away', 'car', 3), ('bar', 'away', 'truck', 1), ('bar', 'towards', 'car', 2)),
        scheme='uk6', quality={'flags': ['dark', 'glare'], 'observed_s': 50.0})
    assert requests.post(f'{api}/counts', json=body.to_json(), headers=headers,
                         timeout=5).status_code == 201

    def last_query(driver, table: bool = False) -> dict:
        """Return the last query of the charts (or of the 15-minute table: every key)."""
        urls = driver.execute_script(
            'return performance.getEntriesByType("resource").map(e => e.name)'
            '.filter(n => n.includes("/api/v1/counts?"))')
        queries = [parse_qs(urlsplit(url).query) for url in urls]
        queries = [q for q in queries if (q['by'] == ['direction,class_name']) == table]
        return queries[-1] if queries else {}

    def span_h(query: dict) -> float:
        return (datetime.fromisoformat(query['until'][0].replace('Z', '+00:00')) -
                datetime.fromisoformat(query['since'][0].replace('Z', '+00:00'))
                ).total_seconds() / 3600

    wait = page_wait(browser, 20)
    legend = 'figure.traffic[data-line="bar"] ul.legend li'
    browser.execute_script(  # refresh now, as a change of the traffic controls does
        'document.getElementById("traffic-controls").dispatchEvent(new Event("change"))')
    wait.until(lambda d: {t.text for t in d.find_elements(By.CSS_SELECTOR, legend)} == {
        'away (4)', 'towards (2)'})
    # The period was dark and glaring: its bucket is marked, the chart's caption says so
    # (read in one script: the panel redraws itself while it refreshes).
    marked = browser.execute_script(
        'const f = document.querySelector(\'figure.traffic[data-line="bar"]\');'
        'const r = f && f.querySelector("ul.degraded li");'
        'const chart = r && Chart.getChart(f.querySelector("canvas"));'
        'return r && [r.dataset.flags, r.textContent, f.querySelector("figcaption").textContent,'
        ' chart.options.plugins.vdNoData.degraded.length]')
    assert marked is not None and marked[0] == 'dark glare', marked
    assert 'observed 50 of 60 s' in marked[1], marked
    assert 'degraded (counts may be low): dark, glare' in marked[2], marked
    assert marked[3] == 1, marked  # the chart's orange mark under that bucket
    query = last_query(browser)
    assert (query['bucket'], query['by'], round(span_h(query))) == (['15min'], ['direction'], 24)
    assert query['replay'] == ['exclude']  # live traffic only, unless the filter says
    Select(browser.find_element(By.ID, 't-stack')).select_by_value('class_name')
    Select(browser.find_element(By.ID, 't-bucket')).select_by_value('1min')
    wait.until(lambda d: last_query(d).get('by') == ['class_name'] and
               last_query(d).get('bucket') == ['1min'])
    assert round(span_h(last_query(browser))) == 3  # 180 bars of a minute
    table = last_query(browser, table=True)  # the table: 15 minutes, at most a day
    assert (table['bucket'], round(span_h(table))) == (['15min'], 3)
    wait.until(lambda d: {t.text for t in d.find_elements(By.CSS_SELECTOR, legend)} == {
        'car (5)', 'truck (1)'})
    csv_link = browser.find_element(By.ID, 't-csv').get_attribute('href')
    assert 'by=' not in csv_link  # the export keeps every direction and class


def check_refused_range_and_replays(browser, api: str, headers: dict, live: set) -> None:
    """Since after Until: the server's reason, nothing stale. Replays: hidden, then shown."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    wait = page_wait(browser, 20)
    cards = '#alerts .alert'
    browser.execute_script(
        'const local = (ms) => new Date(ms - new Date(ms).getTimezoneOffset() * 60000)'
        '.toISOString().slice(0, 16);'
        'document.getElementById("f-since").value = local(Date.now() + 3600e3);'
        'document.getElementById("f-until").value = local(Date.now() - 3600e3);'
        'document.getElementById("filters").dispatchEvent(new Event("change"));')
    problem = browser.find_element(By.ID, 'problem')
    wait.until(lambda d: problem.is_displayed() and 'since must come before until' in problem.text)
    assert 'HTTP' not in problem.text
    assert not browser.find_elements(By.CSS_SELECTOR, cards)
    assert not browser.find_elements(By.CSS_SELECTOR, '#traffic figure')
    for stale in ('chart-hour', 'chart-class'):
        assert browser.execute_script(
            f'return Chart.getChart(document.getElementById("{stale}")) === undefined'), stale
    browser.find_element(By.CSS_SELECTOR, '#filters button[type="reset"]').click()
    wait.until(lambda d: not problem.is_displayed() and
               len(d.find_elements(By.CSS_SELECTOR, cards)) == len(live))

    replay = alert_body('gate-north', class_name='bus', detected_at=_now_iso(), replay=True)
    assert requests.post(f'{api}/alerts', json=replay, headers=headers,
                         timeout=5).status_code == 201
    minute = datetime.now(timezone.utc).replace(second=0, microsecond=0) - timedelta(minutes=1)
    counts = CountRecord(str(uuid.uuid4()), 'gate-north', 'cam0', utc_iso(minute), 60,
                         (('bar', 'away', 'car', 7),), replay=True)
    assert requests.post(f'{api}/counts', json=counts.to_json(), headers=headers,
                         timeout=5).status_code == 201
    legend = 'figure.traffic[data-line="bar"] ul.legend li'
    refreshes = browser.execute_script(  # a refresh now, after the posts, as a change does
        'document.getElementById("filters").dispatchEvent(new Event("change"));'
        'return window.vdRefreshes')
    wait.until(lambda d: d.execute_script('return window.vdRefreshes') > refreshes)
    assert set(texts_of(browser, cards, 'data-event-id')) == live  # the replay is hidden
    assert set(texts_of(browser, legend)) == {  # by default, its counts too
        'car (5)', 'truck (1)'}
    Select(browser.find_element(By.ID, 'f-replay')).select_by_value('include')
    marked = f'#alerts .alert.replay[data-event-id="{replay["event_id"]}"] .replay-badge'
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, marked))
    wait.until(lambda d: {t.text for t in d.find_elements(By.CSS_SELECTOR, legend)} == {
        'car (12)', 'truck (1)'})
    Select(browser.find_element(By.ID, 'f-replay')).select_by_value('exclude')
    wait.until(lambda d: not d.find_elements(By.CSS_SELECTOR, marked))


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()


def test_monitor_panel_shows_the_database_going_down(browser, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    cluster = PostgresServer()  # its own: stopped and started again here
    storage = str(tmp_path / 'images')
    try:
        db = cluster.new_database()
        cloud_cli('migrate', db=db, storage=storage)
        add_device('gate-north', db, storage)
        server = CloudServer(db, storage, ['--workers', '2'])
        try:
            ARTIFACTS.mkdir(exist_ok=True)
            browser.get(server.url + '/')
            wait = page_wait(browser, 30)

            def tile(key: str, attribute: Optional[str] = None) -> str:
                """Read a tile's text (or attribute) as the panel shows it now."""
                found = texts_of(browser, f'#monitor .tile[data-key="{key}"]', attribute)
                return found[0] if found else ''

            wait.until(lambda d: d.execute_script('return window.vdMonitorRefreshes') >= 1)
            wait.until(lambda d: tile('workers').splitlines()[1:2] == ['2 of 2'])
            database = tile('database')
            assert 'postgresql' in database and 'up' in database and 'schema' in database
            assert 'down' not in tile('database', 'class')
            assert 'free' in tile('storage') and 'hits' in tile('cache')
            assert '/s' in tile('requests') and 'version' in tile('uptime')
            # Unchanged reads are revalidated with their ETag: the server answers 304.
            wait.until(lambda d: d.execute_script('return window.vdRefreshes') >= 3)
            assert _answered_304(server.url) > 0
            browser.save_screenshot(str(ARTIFACTS / 'dashboard-monitor.png'))
            browser.execute_script('window.vdMarker = "same page"')

            subprocess.run([*cluster.prefix, cluster.pg_ctl, '-D', cluster.data, '-m',
                            'immediate', 'stop'], capture_output=True, timeout=60, check=True)
            wait.until(lambda d: 'down' in tile('database', 'class'))
            assert 'DOWN' in tile('database')
            red = browser.execute_script(
                'return getComputedStyle(document.querySelector('
                '\'#monitor .tile[data-key="database"] .value\')).color')
            assert red in ('rgba(179, 38, 30, 1)', 'rgb(179, 38, 30)')
            wait.until(lambda d: 'update failed' in d.find_element(By.ID, 'status').text)
            browser.save_screenshot(str(ARTIFACTS / 'dashboard-monitor-database-down.png'))
            refreshes = browser.execute_script('return window.vdMonitorRefreshes')
            wait.until(lambda d: d.execute_script('return window.vdMonitorRefreshes')
                       > refreshes)  # the page goes on
            assert 'down' not in tile('workers', 'class')

            _start_again(cluster)
            wait.until(lambda d: 'down' not in tile('database', 'class'))
            wait.until(lambda d: d.find_element(By.ID, 'status').text.startswith('updated'))
            assert browser.execute_script('return window.vdMarker') == 'same page'
        finally:
            server.stop()
    finally:
        cluster.stop()


def _answered_304(url: str) -> float:
    text = requests.get(f'{url}/metrics', timeout=10).text
    return sum(float(line.rsplit(' ', 1)[1]) for line in text.splitlines()
               if line.startswith('vd_http_requests_total{') and 'status="304"' in line)


def _start_again(cluster: PostgresServer) -> None:
    """Start a stopped test cluster again, on its port."""
    subprocess.run([*cluster.prefix, cluster.pg_ctl, '-D', cluster.data, '-l',
                    os.path.join(cluster.folder, 'log'), '-w', '-t', '60', '-o',
                    f'-h 127.0.0.1 -p {cluster.port} -k {cluster.folder} -F', 'start'],
                   capture_output=True, timeout=90, check=True)
