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

"""Logging in to the dashboard in a real headless Chromium: its session cookie, logging out."""

from __future__ import annotations

from pathlib import Path
import subprocess

from browser_pages import page_wait
from cloud_helpers import add_device, CLOUD, CloudServer


def test_login_flow_in_the_browser(browser, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    db, storage = f'sqlite:///{tmp_path}/cloud.db', str(tmp_path / 'images')
    add_device('gate-north', db, storage)
    server = CloudServer(db, storage, public=False)
    added = subprocess.run([CLOUD, 'add-user', 'ana', '--password-stdin', '--db', db,
                            '--storage', storage], input='a long passphrase\n', text=True,
                           capture_output=True, timeout=60)
    assert added.returncode == 0, added.stderr
    wait = page_wait(browser, 20)
    try:
        browser.get(server.url + '/')
        wait.until(lambda d: d.current_url.endswith('/login'))  # not logged in yet

        def log_in(password: str) -> None:
            for field, value in (('name', 'ana'), ('password', password)):
                element = browser.find_element(By.ID, field)
                element.clear()
                element.send_keys(value)
            browser.find_element(By.ID, 'submit').click()

        log_in('a wrong passphrase')
        wait.until(lambda d: 'Wrong name or password' in d.find_element(By.ID, 'error').text)
        log_in('a long passphrase')
        wait.until(lambda d: not d.current_url.endswith('/login')
                   and d.execute_script('return window.vdRefreshes || 0') >= 1)
        cookie = browser.get_cookie('vd_session')
        assert cookie and cookie['httpOnly'] and cookie['sameSite'] == 'Strict'
        assert browser.execute_script('return document.cookie') == ''  # not readable by JS
        browser.find_element(By.ID, 'logout').click()
        wait.until(lambda d: d.current_url.endswith('/login'))
        browser.get(server.url + '/')
        wait.until(lambda d: d.current_url.endswith('/login'))  # the session is gone
    finally:
        server.stop()
