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
Configuration from the dashboard, end to end, in a real headless Chromium.

An admin draws a counting line on the device's latest picture; the real
bridge node (rclpy) applies it at its next heartbeat and counts vehicles on
it; a bad line drawn is refused by the node and shown refused, with the
node's reason, while the good one stays in force.
"""

from __future__ import annotations

from pathlib import Path
import re
import threading

from browser_pages import ARTIFACTS, click_when_shown, page_wait
from cloud_helpers import alert_body, jpeg_bytes
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import QoSProfile, ReliabilityPolicy
import requests
from ros_helpers import Harness
from sensor_msgs.msg import Image
from test_cloud_bridge_node import start_bridge
from test_counting_node import frame, START_NS
from test_operator_admin import PASSWORD
from test_remote_config import admin_server, FAST  # noqa: F401 (a fixture)

from vision_msgs.msg import Detection2DArray
from waiting import wait_until

RELIABLE = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)


def test_admin_draws_a_line_the_edge_counts_on_it_and_refuses_a_bad_one(
        ros_context, admin_server, browser, tmp_path: Path, monkeypatch) -> None:  # noqa: F811
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    server, key, admin = admin_server
    monkeypatch.setenv('VD_CLOUD_API_KEY', key)
    device = {'X-API-Key': key}
    body = alert_body('gate-1')  # the latest picture of the device, to draw on
    assert requests.post(f'{server.url}/api/v1/alerts', json=body, headers=device,
                         timeout=10).status_code == 201
    assert requests.put(f'{server.url}/api/v1/alerts/{body["event_id"]}/image',
                        data=jpeg_bytes(320, 240), timeout=10,
                        headers={**device, 'Content-Type': 'image/jpeg'}).status_code == 201
    harness = Harness(ros_context)
    try:
        node = start_bridge(harness, server.url, tmp_path, image_reliability='reliable',
                            count_period=10, counting_lines='', **FAST)
        images = harness.probe.create_publisher(Image, 'camera/image_raw', RELIABLE)
        detections = harness.probe.create_publisher(Detection2DArray, 'detections', RELIABLE)
        diagnostics = harness.subscribe(DiagnosticArray, 'diagnostics')
        wait = page_wait(browser, 20)
        browser.get(server.url + '/login')
        browser.find_element(By.ID, 'name').send_keys('ana')
        browser.find_element(By.ID, 'password').send_keys(PASSWORD)
        browser.find_element(By.ID, 'submit').click()
        row = '#devices tr[data-device="gate-1"]'
        click_when_shown(wait, f'{row} button.cfg-open')
        wait.until(lambda d: d.execute_script(
            'const i = document.getElementById("cfg-picture");'
            'return document.getElementById("config-editor").open && i.complete '
            '&& i.naturalWidth == 320'))
        overlay = browser.find_element(By.ID, 'cfg-overlay')

        def click_at(x: float, y: float) -> None:
            """Click the picture at fractions of its width and height."""
            size = overlay.size
            ActionChains(browser).move_to_element_with_offset(
                overlay, round((x - 0.5) * size['width']),
                round((y - 0.5) * size['height'])).click().perform()

        name = browser.find_element(By.ID, 'cfg-name')
        name.clear()
        name.send_keys('gate')
        click_at(0.05, 0.5)
        click_at(0.95, 0.5)  # a line is two points: it is added to the text at once
        drawn = browser.find_element(By.ID, 'cfg-lines').get_attribute('value')
        assert drawn.startswith('gate ') and drawn.endswith(' towards/away'), drawn
        browser.find_element(By.ID, 'cfg-save').click()
        state = f'{row} .cfg-state'
        wait.until(lambda d: d.find_element(By.CSS_SELECTOR, state).text == 'v1 applied')
        assert node.params['counting_lines'] == drawn
        # A car drives down across the drawn line: counted on it, sent to the server.
        diagnostics.wait_count(1)  # discovery done
        pace = threading.Event()
        for seq in [*range(30), 100]:  # the frame of the next period closes this one
            bottom = 60.0 + 5 * seq
            vehicles = [(4, 'car', (100.0, bottom - 40, 140.0, bottom))] if seq < 30 else []
            image, array = frame(seq, START_NS + seq * 100_000_000, vehicles)
            images.publish(image)
            detections.publish(array)
            pace.wait(0.02)
        series = counts_of_the_period(server.url, admin)
        assert [(r['line'], r['direction'], r['class_name'], r['count'])
                for r in series['rows']] == [('gate', 'towards', 'car', 1)]
        # A bad line: one point only. Saved as drawn; the edge refuses it and says why.
        name.clear()
        name.send_keys('bad')
        click_at(0.5, 0.3)
        browser.find_element(By.ID, 'cfg-finish').click()
        browser.find_element(By.ID, 'cfg-save').click()
        shown = wait.until(lambda d: (lambda text: text.startswith('v2 refused') and text)(
            d.find_element(By.CSS_SELECTOR, state).text))
        assert re.search(r"counting_lines: line 'bad 0\.\d+,0\.\d+ towards/away': expected NAME "
                         r'X1,Y1 X2,Y2', shown), shown
        assert shown.endswith('(v1 applied)'), shown
        assert node.params['counting_lines'] == drawn  # all or nothing: the good line stays
        wait.until(lambda d: d.find_element(
            By.CSS_SELECTOR, '#cfg-history li[data-version="2"]').get_attribute(
            'data-state') == 'refused')
        ARTIFACTS.mkdir(exist_ok=True)
        browser.save_screenshot(str(ARTIFACTS / 'dashboard-config.png'))
    finally:
        harness.close()


def counts_of_the_period(url: str, admin: requests.Session) -> dict:
    """Wait for gate-1's counts of the test's minute on the server; return them."""
    series: dict = {}

    def arrived() -> bool:
        series.update(admin.get(f'{url}/api/v1/counts', timeout=5, params={
            'device': 'gate-1', 'from': '2023-11-14T22:13:00Z', 'to': '2023-11-14T22:14:00Z',
            'bucket': '1min'}).json())
        return bool(series['rows'])

    wait_until(arrived, timeout=20, what='counts on the server', poll=0.1)
    return series
