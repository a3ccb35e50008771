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
A headless Chromium for the dashboard's browser tests, and waits and reads of its live pages.

Shared by the tests that drive the dashboard in a real browser
(``test_dashboard_browser.py``, ``test_dashboard_tables.py``...); the
``browser`` fixture (conftest.py) yields :func:`chromium`.
"""

from __future__ import annotations

import os
from pathlib import Path
import shutil
from typing import Iterator, Optional

from cloud_helpers import require_tool


ARTIFACTS = Path(__file__).resolve().parents[1] / 'test-artifacts'


def page_wait(driver, seconds: float):
    """
    Wait on the live dashboard, whose tables re-render at every poll.

    An element found a moment ago may be replaced by the next render before
    its text is read (StaleElementReferenceException): the condition is then
    simply asked again, like an element not there yet.
    """
    from selenium.common.exceptions import (NoSuchElementException,
                                            StaleElementReferenceException)
    from selenium.webdriver.support.ui import WebDriverWait
    return WebDriverWait(driver, seconds, ignored_exceptions=(
        NoSuchElementException, StaleElementReferenceException))


def click_when_shown(wait, selector: str) -> None:
    """Find and click ``selector`` in one go, again if a re-render replaced it between."""
    from selenium.webdriver.common.by import By
    wait.until(lambda d: d.find_element(By.CSS_SELECTOR, selector).click() is None)


def text_of(driver, selector: str) -> str:
    """Read the rendered text of the first element matching ``selector`` ('' if none)."""
    return driver.execute_script(
        'const e = document.querySelector(arguments[0]); return e ? e.innerText : ""', selector)


def texts_of(driver, selector: str, attribute: Optional[str] = None) -> list:
    """
    Read the text (or ``attribute``) of every element matching ``selector`` at once.

    One script call sees one render of the page: element handles kept across
    calls may belong to a table the next poll has already replaced.
    """
    return driver.execute_script(
        'return [...document.querySelectorAll(arguments[0])]'
        '.map(e => arguments[1] ? e.getAttribute(arguments[1]) : e.innerText)',
        selector, attribute)


def chromium(env: Optional[dict] = None) -> Iterator[object]:
    """Yield a headless Chromium (1400 x 1000); ``env``: more variables (its ``TZ``)."""
    chromium = shutil.which('chromium') or shutil.which('chromium-browser')
    driver_path = shutil.which('chromedriver')
    require_tool(bool(chromium and driver_path),
                 'Chromium and chromedriver are not installed (apt-get install chromium '
                 'chromium-driver)')
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ('--headless=new', '--no-sandbox', '--disable-gpu',
                 '--disable-dev-shm-usage', '--window-size=1400,1000'):
        options.add_argument(flag)
    service = Service(driver_path, env={**os.environ, **(env or {})})
    driver = webdriver.Chrome(service=service, options=options)
    try:
        yield driver
    finally:
        driver.quit()
