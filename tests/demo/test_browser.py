"""The portfolio demo end to end in a real headless browser (issue 11).

``python -m stomp_proto.demo`` on a free port, and the same demo as an ASGI
application under uvicorn (``uvicorn stomp_proto.demo:app``); Debian's ``chromium`` driven by
Playwright for Python (the system browser: ``executable_path``, never
``playwright install``) loads the page, which loads stompjs from our server and
opens ``ws://.../portfolio``. The test is refused with a wrong password, logs
in as fabrice (and as fabrice in a second tab, and as paulson in a third),
watches prices change, buys, sees the position update in both of fabrice's tabs
and not in paulson's, sends a trade that cannot be executed and sees its error
(in the sending tab only), trades again on the same connection, and saves a
screenshot (docs/_static/demo.png is one).

Without chromium or Playwright the test skips, except with CI=true, where it
fails. Set ``DEMO_SCREENSHOT=path`` to also write the screenshot there.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import missing
from .test_portfolio import wait_for_url

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


#: How the demo is served: ``stomp-proto demo``'s own listener, or the ASGI
#: application under uvicorn; the command and the log line that gives the URL.
SERVED = {
    "stomp-proto-demo": (["stomp_proto.demo", "--port", "0"], "portfolio demo at "),
    "uvicorn": (["uvicorn", "stomp_proto.demo:app", "--port", "0"], "Uvicorn running on "),
}


@pytest.fixture(params=list(SERVED))
def demo_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    args, marker = SERVED[request.param]
    log = tmp_path / "demo.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    try:
        yield wait_for_url(log, process, marker=marker)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def browser() -> Iterator[Any]:
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        missing(f"{CHROMIUM} is not installed (Debian: apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("Playwright for Python is not installed (pip install playwright)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def test_trading_in_the_browser(browser: Any, demo_url: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    failures: list[str] = []
    requests: list[str] = []

    def open_page() -> Any:
        page = browser.new_context(viewport={"width": 1200, "height": 760}).new_page()
        page.set_default_timeout(10_000)
        page.on("pageerror", lambda exc: failures.append(f"page error: {exc}"))
        page.on("requestfailed", lambda r: failures.append(f"request failed: {r.url}"))
        page.on("request", lambda request: requests.append(request.url))
        page.goto(demo_url)
        return page

    def log_in(page: Any, user: str, passcode: str) -> None:
        page.fill("#login", user)
        page.fill("#passcode", passcode)
        page.click("#login-button")
        expect(page.locator("#status")).to_have_text(f"connected as {user}")
        expect(page.locator("#positions tbody tr")).to_have_count(3)

    page = open_page()

    # a wrong password: refused, and the page says so
    page.fill("#login", "fabrice")
    page.fill("#passcode", "wrong")
    page.click("#login-button")
    expect(page.locator("#login-error")).to_contain_text("Login refused: access refused")
    expect(page.locator("#app-view")).to_be_hidden()

    log_in(page, "fabrice", "fab123")
    other_tab = open_page()  # fabrice again, in another browser context
    log_in(other_tab, "fabrice", "fab123")
    paulson = open_page()
    log_in(paulson, "paulson", "bond")

    # live prices: MMM's changes
    mmm_price = page.locator('#prices tr[data-ticker="MMM"] .price')
    expect(mmm_price).to_have_text(re.compile(r"^\$\d+\.\d\d$"))
    expect(page.locator("#prices tbody tr")).to_have_count(7)
    first = mmm_price.inner_text()
    page.wait_for_function(
        "old => document.querySelector('#prices tr[data-ticker=\"MMM\"] .price')"
        ".textContent !== old",
        arg=first,
    )

    # positions, then a BUY updates them
    mmm_shares = page.locator('#positions tr[data-ticker="MMM"] .shares')
    expect(mmm_shares).to_have_text("75")
    page.fill("#ticker", "MMM")
    page.fill("#shares", "25")
    page.click("#trade-button")
    expect(mmm_shares).to_have_text("100")
    bought = re.compile(r"Bought 25 MMM at \$\d+\.\d\d: you now hold 100")
    expect(page.locator("#activity li.ok").first).to_contain_text(bought)
    # every session of the trader sees it, and nobody else
    expect(other_tab.locator('#positions tr[data-ticker="MMM"] .shares')).to_have_text("100")
    expect(other_tab.locator("#activity li.ok").first).to_contain_text(bought)

    # a trade that cannot be executed: its error, and the connection stays open
    page.check("input[value=SELL]")
    page.fill("#ticker", "ORCL")
    page.fill("#shares", "1000")
    page.click("#trade-button")
    expect(page.locator("#activity li.error").first).to_contain_text(
        "Refused: cannot sell 1000 ORCL: you hold 45"
    )
    page.fill("#shares", "45")
    page.click("#trade-button")
    expect(page.locator('#positions tr[data-ticker="ORCL"]')).to_have_count(0)
    expect(page.locator("#activity li.ok").first).to_contain_text("Sold 45 ORCL")
    page.check("input[value=BUY]")
    page.fill("#ticker", "AAPL")
    page.fill("#shares", "10")
    page.click("#trade-button")
    expect(page.locator('#positions tr[data-ticker="AAPL"] .shares')).to_have_text("10")
    page.fill("#ticker", "ACME")
    page.click("#trade-button")
    expect(page.locator("#activity li.error").first).to_contain_text('unknown ticker "ACME"')
    expect(page.locator("#status")).to_have_text("connected as fabrice")
    expect(page.locator("#total")).to_have_text(re.compile(r"^\$[\d,]+\.\d\d$"))
    expect(other_tab.locator("#activity li.error")).to_have_count(0)  # errors: the sender's
    expect(paulson.locator("#activity li")).to_have_count(0)
    expect(paulson.locator("#positions tbody tr")).to_have_count(3)
    expect(paulson.locator('#positions tr[data-ticker="MMM"]')).to_have_count(0)
    # log out, and in as fabrice: the positions are the server's, trades included
    paulson.click("#logout")
    expect(paulson.locator("#login-view")).to_be_visible()
    expect(paulson.locator("#status")).to_have_text("offline")
    paulson.fill("#login", "fabrice")
    paulson.fill("#passcode", "fab123")
    paulson.click("#login-button")
    expect(paulson.locator("#status")).to_have_text("connected as fabrice")
    expect(paulson.locator('#positions tr[data-ticker="MMM"] .shares')).to_have_text("100")
    expect(paulson.locator('#positions tr[data-ticker="AAPL"] .shares')).to_have_text("10")
    expect(paulson.locator("#activity li")).to_have_count(0)

    shot = tmp_path / "demo.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    if os.environ.get("DEMO_SCREENSHOT"):
        shutil.copyfile(shot, os.environ["DEMO_SCREENSHOT"])

    origin = demo_url.rstrip("/")
    assert requests and all(url.startswith(origin) for url in requests), requests  # no CDN
    assert any(url.endswith("/stomp.umd.min.js") for url in requests)
    assert failures == []
