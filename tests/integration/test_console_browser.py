"""The console in a real browser: headless Chromium from the system (apt: chromium,
chromium-driver) driven by selenium, against ``relay serve`` on the embedded log and a
real subscriber. Skips, saying why, where either is missing.

With ``RELAY_SCREENSHOTS=<dir>`` it also saves screenshots of the main pages there
(that is how docs/console/ is made).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.subscriber import Subscriber
from tests.support import free_port, wait_ready

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
TOKEN = "browser-admin-token-0123456789"
FIXTURES = Path(__file__).parents[1] / "fixtures" / "chatwoot"

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
    pytest.skip(
        f"no system Chromium ({CHROMIUM}, {CHROMEDRIVER}): "
        "apt-get install chromium chromium-driver",
        allow_module_level=True,
    )

from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.support.wait import WebDriverWait  # noqa: E402


def until(driver: WebDriver, check: Callable[[WebDriver], Any], within: float = 20.0) -> Any:
    """Wait for the page a click navigated to (a click does not wait for it)."""
    return WebDriverWait(driver, within, poll_frequency=0.1).until(check)


def browser() -> WebDriver:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1440,1000",
        "--no-first-run",
        "--disable-extensions",
    ):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def wait_for(driver: WebDriver, check: Callable[[], Any], within: float = 20.0) -> Any:
    """Reload the page until ``check`` holds (the index is fed in the background)."""
    import time

    deadline = time.monotonic() + within
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not seen within {within}s on {driver.current_url}")
        time.sleep(0.3)
        driver.refresh()


def shoot(driver: WebDriver, name: str) -> None:
    folder = os.environ.get("RELAY_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        height = driver.execute_script("return document.body.scrollHeight")
        driver.set_window_size(1440, max(700, min(int(height) + 40, 2200)))
        driver.save_screenshot(str(Path(folder) / f"{name}.png"))
        driver.set_window_size(1440, 1000)


async def test_find_an_event_see_its_attempts_redrive_it(tmp_path: Path) -> None:
    subscriber = await Subscriber(script=lambda s, body, headers: 503).start()
    port = free_port()
    config = tmp_path / "relay.yaml"
    config.write_text(
        f"data_dir: {tmp_path / 'var'}\n"
        f"listen: {{host: 127.0.0.1, port: {port}}}\n"
        f"admin: {{token: {TOKEN}}}\n"
        "sources:\n"
        "  nexloo: {provider: chatwoot, tokens: [t0k3n]}\n"
        "  plugchat: {provider: plugchat, tokens: [t0k3n]}\n"
        "subscribers:\n"
        f"  - {{name: crm, url: '{subscriber.url}', start_from: earliest,"
        " retry: {max_attempts: 3, initial: 50ms, max: 100ms, jitter: false}}\n"
        "logging: {format: json}\n"
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "relay",
        "serve",
        "--config",
        str(config),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    driver: WebDriver | None = None
    try:
        await wait_ready(port, process)
        async with aiohttp.ClientSession() as session:
            for fixture in ("conversation_created.json", "message_created.json"):
                async with session.post(
                    f"{base}/v1/hooks/nexloo?token=t0k3n",
                    data=(FIXTURES / fixture).read_bytes(),
                    headers={"Content-Type": "application/json"},
                ) as response:
                    assert response.status == 202
                    ids = (await response.json())["ids"]
        [message_id] = ids
        driver = await asyncio.to_thread(browser)
        await asyncio.to_thread(_log_in, driver, base)
        await asyncio.to_thread(_find_and_open, driver, base, message_id)

        subscriber.script = lambda s, body, headers: 200  # the subscriber's team fixed it
        await asyncio.to_thread(_redrive, driver, base, message_id)
        await subscriber.wait_for(lambda s: len(s.delivered()) == 1)
        await asyncio.to_thread(_see_delivered, driver, base, message_id)
    finally:
        if driver is not None:
            await asyncio.to_thread(driver.quit)
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), 25)
        await subscriber.close()


def _log_in(driver: WebDriver, base: str) -> None:
    driver.get(f"{base}/console/")
    assert "/console/login" in driver.current_url  # no session yet
    driver.find_element(By.ID, "token").send_keys("not-the-token")
    driver.find_element(By.ID, "login").click()
    until(driver, lambda d: "That is not the admin token" in d.page_source)
    driver.find_element(By.ID, "token").send_keys(TOKEN)
    driver.find_element(By.ID, "login").click()
    until(driver, lambda d: d.current_url == f"{base}/console/")
    cookie = driver.get_cookie("relay_console")
    assert cookie is not None and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert TOKEN not in driver.page_source
    assert driver.find_element(By.CSS_SELECTOR, "#subscribers [data-subscriber=crm]")


def _find_and_open(driver: WebDriver, base: str, message_id: str) -> None:
    driver.get(f"{base}/console/events")
    driver.find_element(By.ID, "key").send_keys("nexloo:4711")
    driver.find_element(By.ID, "search").click()
    until(driver, lambda d: "key=nexloo%3A4711" in d.current_url)
    links = wait_for(driver, lambda: driver.find_elements(By.CSS_SELECTOR, "a.event-link"))
    assert "key=nexloo%3A4711" in driver.current_url
    # both events of the conversation, the message first (newest event time)
    assert message_id in [link.text for link in links]
    # times are shown in the viewer's zone by the script, UTC on hover
    stamp = driver.find_element(By.CSS_SELECTOR, "#results time")
    assert stamp.get_attribute("title").endswith("UTC")
    until(driver, lambda d: stamp.text != stamp.get_attribute("title"))
    shoot(driver, "events")
    next(link for link in links if link.text == message_id).click()
    until(driver, lambda d: d.find_elements(By.ID, "event-id"))
    assert driver.find_element(By.ID, "event-id").text == message_id
    wait_for(
        driver,
        lambda: driver.find_elements(By.CSS_SELECTOR, "#attempts li.deadlettered"),
    )
    attempts = driver.find_elements(By.CSS_SELECTOR, "#attempts li.attempt")
    assert [a.get_attribute("class").split()[-1] for a in attempts] == [
        "retrying",
        "retrying",
        "deadlettered",
    ]
    assert "HTTP 503" in attempts[0].text
    assert '"message_created"' in driver.find_element(By.ID, "raw-body").text
    shoot(driver, "event")


def _redrive(driver: WebDriver, base: str, message_id: str) -> None:
    driver.get(f"{base}/console/deadletters?subscriber=crm")
    assert "pending" in driver.page_source
    shoot(driver, "deadletters")
    driver.get(f"{base}/console/events/{message_id}")
    driver.find_element(By.CSS_SELECTOR, "button.redrive-one").click()
    notice = until(driver, lambda d: d.find_elements(By.CSS_SELECTOR, ".notice"))
    assert "redriving 1 dead letter" in notice[0].text


def _see_delivered(driver: WebDriver, base: str, message_id: str) -> None:
    driver.get(f"{base}/console/events/{message_id}")
    delivered = wait_for(
        driver, lambda: driver.find_elements(By.CSS_SELECTOR, "#attempts li.delivered")
    )
    assert "crm" in delivered[0].text and "HTTP 200" in delivered[0].text
    driver.get(f"{base}/console/deadletters?subscriber=crm")
    wait_for(driver, lambda: "redelivered" in driver.page_source)
    driver.get(f"{base}/console/")
    wait_for(driver, lambda: "1 delivered" in driver.page_source)
    shoot(driver, "overview")
