"""The web view at /_sandbox/ui: a static page under the control plane's protection,
and, in a real headless browser (Debian's chromium), a live view and its controls."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import ccxt
import httpx
import pytest

from simulator.testing import ServedSandbox, served_sandbox

pytestmark = pytest.mark.integration
TOKEN = "a-control-token-of-some-length"


def test_the_page_is_static_and_framed_by_nobody(kraken_sandbox: ServedSandbox) -> None:
    page = httpx.get(f"{kraken_sandbox.url}/_sandbox/ui")

    assert page.status_code == 200 and page.headers["content-type"] == "text/html; charset=utf-8"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    assert '"X-TG-Sandbox": "1"' in page.text
    cross_site = httpx.get(f"{kraken_sandbox.url}/_sandbox/ui", headers={"Sec-Fetch-Site": "cross-site"})
    assert cross_site.status_code == 403


def test_with_a_token_the_page_loads_but_its_data_needs_the_token() -> None:
    with served_sandbox(control_token=TOKEN) as served:
        assert httpx.get(f"{served.url}/_sandbox/ui").status_code == 200
        assert httpx.get(f"{served.url}/_sandbox/state").status_code == 403
        with_token = httpx.get(f"{served.url}/_sandbox/state", headers={"Authorization": f"Bearer {TOKEN}"})
        assert with_token.json()["error"] == []


CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture
def browser() -> Iterator[object]:
    if CHROMEDRIVER is None:
        pytest.fail("the web view is tested in a real browser: apt-get install chromium chromium-driver (.ci/run does)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    yield driver
    driver.quit()


def test_the_page_shows_an_order_and_adds_a_fault_that_then_shows_in_the_log(
    kraken_sandbox: ServedSandbox, browser: object
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.support import expected_conditions as shown
    from selenium.webdriver.support.wait import WebDriverWait

    assert isinstance(browser, WebDriver)
    until = WebDriverWait(browser, 10).until
    browser.get(f"{kraken_sandbox.url}/_sandbox/ui")
    until(shown.text_to_be_present_in_element((By.ID, "clock"), "2026-01-01 00:00:00 UTC, frozen"))

    kraken = ccxt.kraken(kraken_sandbox.ccxt_config())
    try:
        order = kraken.create_order("BTC/USD", "limit", "buy", 0.01, 30_000)
        until(shown.text_to_be_present_in_element((By.ID, "open-orders"), order["id"]))

        browser.find_element(By.ID, "fault-spec").send_keys("busy:endpoint=BalanceEx")
        browser.find_element(By.ID, "add-fault").click()
        until(shown.text_to_be_present_in_element((By.ID, "fault-rules"), "busy"))
        assert [rule["fault"] for rule in kraken_sandbox.control.faults()] == ["busy"]
        with pytest.raises(ccxt.ExchangeNotAvailable):
            kraken.fetch_balance()
        until(shown.text_to_be_present_in_element((By.ID, "fault-log"), "EService:Busy"))
    finally:
        kraken.session.close()

    browser.find_element(By.ID, "advance").click()  # 60 s, the field's default
    until(shown.text_to_be_present_in_element((By.ID, "clock"), "2026-01-01 00:01:00 UTC"))
    browser.find_element(By.ID, "clear-faults").click()
    until(lambda _: kraken_sandbox.control.faults() == [])
