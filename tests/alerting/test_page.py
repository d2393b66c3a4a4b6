"""The nurse page in a real headless Chromium (Debian packages chromium, chromium-driver):
an alert shows up with its charts and what the patient entered in the app, and its button
acknowledges it."""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from alerting.api import make_app
from harness.pagerduty import PagerDutyStandIn
from tests.alerting.support import Clock, build, event, make_settings
from tests.support import wait_for
from vitals.records import Ice, Reading, TrendPoint

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# `make test` installs the browser; only a developer's bare machine may lack it. In CI a missing
# browser is a broken set-up, so the test fails there instead of being skipped.
pytestmark = pytest.mark.skipif(
    (CHROMIUM is None or shutil.which("chromedriver") is None) and not os.environ.get("CI"),
    reason="apt-get install chromium chromium-driver (make test does)")


HOSTILE_NOTE = "<img src=x onerror=\"document.title='owned'\"> shivering"


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'chrome'}"):
        opts.add_argument(flag)
    service = webdriver.ChromeService(executable_path=shutil.which("chromedriver"))
    driver = webdriver.Chrome(options=opts, service=service)
    yield driver
    driver.quit()


def test_an_alert_shows_up_and_the_button_acknowledges_it(tmp_path: Path,
                                                          receiver: PagerDutyStandIn,
                                                          browser) -> None:
    clock = Clock()
    settings = make_settings(tmp_path, receiver)
    started, stop = threading.Event(), threading.Event()
    state: dict[str, object] = {}

    def server() -> None:
        async def main() -> None:
            core, d = build(settings, clock)
            state["core"] = core
            for i in range(30):  # the last half hour of trends, fever rising
                core.trend(TrendPoint("P001", 1_795_000_000_000 + i * 60_000,
                                      temp=37.6 + i * 0.03, hr=95 + i, spo2=97 - i * 0.1))
            # what was entered in the app: a caregiver's ICE, and a check-in whose note is
            # markup (a patient's free text must show as text, never run)
            core.report(Reading("P001", "app", 1_795_000_000_000 - 3_600_000, "neuro_check",
                                1_795_000_000_000, seq=1, by="caregiver", ice_total=8,
                                ice=Ice(orientation=3, naming=3, commands=1, writing=0,
                                        attention=1)))
            core.report(Reading("P001", "app", 1_795_000_000_000 - 60_000, "symptoms",
                                1_795_000_000_000, seq=2, by="patient",
                                symptoms=("chills", "headache"), note=HOSTILE_NOTE))
            core.handle(event(severity="critical"))
            runner = web.AppRunner(make_app(core))
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            state["url"] = f"http://127.0.0.1:{runner.addresses[0][1]}/"
            astop = asyncio.Event()
            task = asyncio.create_task(d.run(astop))
            started.set()
            while not stop.is_set():
                await asyncio.sleep(0.05)
            astop.set()
            await task
            await runner.cleanup()
            await d.close()

        asyncio.run(main())

    t = threading.Thread(target=server, daemon=True)
    t.start()
    assert started.wait(10)
    try:
        receiver.wait(1)  # the page went out
        # the page's details hold what was entered in the app in the day before, newest first
        said = receiver.pd("trigger")[0]["payload"]["custom_details"]["reports"]
        assert [report["said"] for report in said] == [
            f'patient: chills, headache; note: "{HOSTILE_NOTE}"',
            "caregiver: ICE 8/10 (orientation 3/4, naming 3/3, commands 1/1, writing 0/1, "
            "attention 1/1)"]
        assert said[0]["at"] == "18 Nov 11:05 UTC"  # 1_795_000_000_000 is 11:06:40
        browser.get(state["url"])
        wait = WebDriverWait(browser, 10)
        wait.until(ec.visibility_of_element_located((By.ID, "token"))).send_keys(
            "token-alice-0123456789")
        browser.find_element(By.CSS_SELECTOR, "#login button").click()
        card = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "div.alert")))
        assert "P001" in card.text and "fever" in card.text and "paged" in card.text
        charts = card.find_elements(By.CSS_SELECTOR, "svg[data-points='30']")
        assert len(charts) == 3  # temperature, heart rate, SpO2
        entered = card.find_element(By.CSS_SELECTOR, "div.reports")
        assert "Entered in the app (2)" in entered.text
        assert HOSTILE_NOTE in entered.text and "ICE 8/10" in entered.text
        assert not card.find_elements(By.TAG_NAME, "img") and browser.title != "owned"
        # and under the alerts, every patient's newest reports
        latest = browser.find_elements(By.CSS_SELECTOR, "#latest-reports li")
        assert [item.text.split(" · ")[0] for item in latest] == ["P001", "P001"]
        assert HOSTILE_NOTE in latest[0].text
        browser.save_screenshot(str(tmp_path / "nurse-page.png"))  # for a person to look at
        card.find_element(By.CSS_SELECTOR, "button.ack").click()
        # the list is re-rendered after the click: read it afresh each time, not via `card`
        wait.until(lambda b: "acknowledged by alice" in (b.execute_script(
            "return document.querySelector('div.alert')?.textContent") or ""))
        wait_for(lambda: len(receiver.pd("acknowledge")) == 1, 10, "PagerDuty acknowledge")
        [ack] = receiver.pd("acknowledge")
        assert ack["routing_key"] == "key-alice"
        assert ack["dedup_key"] == receiver.pd("trigger")[0]["dedup_key"]
        assert not browser.find_elements(By.CSS_SELECTOR, "button.ack")
        # the ack link of a page opens the page with that alert marked
        browser.get(f"{state['url']}alerts/{ack['dedup_key']}")
        wait.until(lambda b: b.execute_script(
            "return document.querySelector('div.alert')?.style.outline") or None)
    finally:
        stop.set()
        t.join(10)
