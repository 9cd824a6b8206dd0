"""The /compare page as people see it: Debian's headless Chromium (driven by Selenium through
Debian's chromedriver, nothing downloaded) loads it from a running server, picks an indicator, a
period and two territories, and reads the table and the chart it draws."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import requests

from .conftest import LiveServer

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")


@pytest.fixture
def browser() -> Iterator[Any]:
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip(
            "Debian's chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must not fetch a browser or a driver
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1200,1000"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def test_pick_two_territories_and_read_the_table(live_server: LiveServer, browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import Select, WebDriverWait

    browser.get(f"{live_server.url}/compare")
    Select(browser.find_element(By.ID, "indicator")).select_by_value("proposals")
    period = browser.find_element(By.ID, "period")
    period.clear()
    period.send_keys("2024")
    boxes = {box.get_attribute("value"): box for box in browser.find_elements(By.CSS_SELECTOR, ".territory")}
    assert {"lyon", "grenoble", "rennes"} <= set(boxes)
    for territory, box in boxes.items():  # every territory is ticked at first: keep two
        if box.is_selected() != (territory in ("lyon", "grenoble")):
            box.click()
    browser.find_element(By.CSS_SELECTOR, "#choice button[type=submit]").click()
    wait = WebDriverWait(browser, 30)
    wait.until(ec.visibility_of_element_located((By.ID, "values")))
    rows = [
        [td.text for td in tr.find_elements(By.TAG_NAME, "td")]
        for tr in browser.find_elements(By.CSS_SELECTOR, "#values tbody tr")
    ]
    # What the page shows is what the API answers; the address keeps the choice, to be shared.
    query = parse_qs(urlparse(browser.current_url).query)
    assert query["territories"] == ["grenoble,lyon"] and query["indicator"] == ["proposals"]  # in the page's order
    api = requests.get(
        f"{live_server.url}/api/v1/compare",
        params={"indicator": "proposals", "period": "2024", "territories": "grenoble,lyon"},
        timeout=30,
    ).json()
    assert rows == [[r["name"], str(r["value"]), "published", ""] for r in api["rows"]] and len(rows) == 2
    # The chart: vega-embed drew it (SVG), with one bar per territory and the axis titles.
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#chart svg .mark-rect path")))
    chart = browser.find_element(By.CSS_SELECTOR, "#chart svg")
    assert len(chart.find_elements(By.CSS_SELECTOR, ".mark-rect path")) == 2
    assert "Proposals (number)" in chart.text and "Territory" in chart.text
    # The shared address, opened anew, shows the same table.
    browser.get(browser.current_url)
    wait.until(ec.visibility_of_element_located((By.ID, "values")))
    again = [
        [td.text for td in tr.find_elements(By.TAG_NAME, "td")]
        for tr in browser.find_elements(By.CSS_SELECTOR, "#values tbody tr")
    ]
    assert again == rows
