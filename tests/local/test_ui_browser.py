"""The web page of ``tcc-otel dev`` in a real headless Chromium: run list, waterfall, details.

Needs Debian's ``chromium`` and ``chromium-driver`` and ``selenium`` (the dev extra). Outside CI
the tests are skipped when one is missing; in CI (``CI=true``) they fail instead, so the browser
check cannot silently vanish.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import pytest
from helpers.clients import fresh_client

import tcc_otel as tcc
from tcc_otel._local._api import Api
from tcc_otel._local._server import Receiver
from tcc_otel._local._store import Store

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.remote.webelement import WebElement

REPO = Path(__file__).resolve().parents[2]
SCREENSHOT = REPO / "docs" / "screenshot-run.png"
"""The README's picture; refreshed only with TCC_UPDATE_SCREENSHOT=1, so a test run leaves the
tree clean (otherwise the screenshot goes to the test's temporary directory)."""
"""Saved by the test; the README shows it."""
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WAIT_SECONDS = 15.0
"""Upper bound on each wait for the page; the test never asserts how fast it was."""
RUN_ID = "run-ui"
MODEL = "gpt-4o-2024-08-06"


def _missing() -> list[str]:
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if shutil.which(path) is None]
    if importlib.util.find_spec("selenium") is None:
        missing.append("selenium (pip install -e '.[dev]')")
    return missing


if _missing() and os.environ.get("CI") != "true":
    pytest.skip(
        f"browser test needs {', '.join(_missing())}; "
        "apt-get install chromium chromium-driver (required when CI=true)",
        allow_module_level=True,
    )


def record_run() -> None:
    """A run with three steps, the second failing, and a tool call asked for by the first."""
    with tcc.run(run_id=RUN_ID, session_id="session-ui") as r:
        r.prompt("Weather in London?").metadata({"tcc.agent": "weather"})
        with r.step(step_id="s1") as s:
            s.prompt("Weather in London?").model(requested="gpt-4o", used=MODEL)
            s.tool_definitions([{"name": "get_weather", "parameters": {"city": "string"}}])
            s.response("Calling get_weather.").finish_reason("tool_call")
            s.tokens(prompt_uncached=100, prompt_cached=20, completion=18).cost(0.0005)
            with s.tool_call("get_weather", tool_call_id="t1") as t:
                t.args({"city": "London"}).result({"temperature": 15})
        r.step(step_id="s2").prompt("Summarise").model(used=MODEL).error("model overloaded")
        with r.step(step_id="s3") as s:
            s.prompt("Summarise, again").model(used=MODEL).response("15 °C and cloudy.")
            s.tokens(prompt_uncached=40, completion=6).finish_reason("stop")
        r.response("15 °C and cloudy.")


@pytest.fixture
def server() -> Iterator[Receiver]:
    """A receiver on 127.0.0.1 with an in-memory store holding ``record_run``'s run."""
    with (
        Store(":memory:") as store,
        Receiver("127.0.0.1", 0, on_spans=store.add, on_get=Api(store)) as running,
    ):
        with fresh_client():
            tcc.configure(base_url=running.url, api_key="test-key-123")
            record_run()
            assert tcc.flush()
        yield running


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    """Headless Chromium through Debian's chromedriver, with no network of its own."""
    missing = _missing()
    assert not missing, f"CI=true but the browser test needs {', '.join(missing)}"
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    with tempfile.TemporaryDirectory(prefix="tcc-otel-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for argument in (
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1200,900",
            f"--user-data-dir={profile}",
        ):
            options.add_argument(argument)
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        try:
            yield driver
        finally:
            driver.quit()


def wait_for(driver: WebDriver, condition: Callable[[WebDriver], Any]) -> Any:
    """``condition``'s first truthy result, polled for at most ``WAIT_SECONDS``."""
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT_SECONDS).until(condition)


def by_testid(scope: WebDriver | WebElement, testid: str) -> list[WebElement]:
    """Elements under ``scope`` with ``data-testid=testid``, in document order."""
    from selenium.webdriver.common.by import By

    return scope.find_elements(By.CSS_SELECTOR, f'[data-testid="{testid}"]')


def text_of(scope: WebDriver | WebElement, testid: str) -> str:
    """The visible text of the one element with ``data-testid=testid`` under ``scope``."""
    found = by_testid(scope, testid)
    assert len(found) == 1, f"expected one {testid}, found {len(found)}"
    return found[0].text


class TestRunPage:
    def test_list_waterfall_and_details(
        self, server: Receiver, browser: WebDriver, tmp_path: Path
    ) -> None:
        """The list shows the run; its page nests the spans, marks the failed step red and
        shows a step's prompt, response, model, tokens and cost."""
        browser.get(server.url + "/")
        rows = wait_for(browser, lambda d: by_testid(d, "run-row"))
        assert [row.get_attribute("data-run-id") for row in rows] == [RUN_ID]
        row = rows[0]
        assert {
            name: text_of(row, name)
            for name in ("run-status", "run-models", "run-tokens", "run-cost", "run-session")
        } == {
            "run-status": "ok",
            "run-models": MODEL,
            "run-tokens": "184",
            "run-cost": "$0.000500",
            "run-session": "session-ui",
        }

        row.click()
        spans = wait_for(browser, lambda d: by_testid(d, "span-row"))
        assert browser.current_url.endswith("#/runs/" + RUN_ID)
        shape = [(text_of(span, "span-name"), span.get_attribute("data-depth")) for span in spans]
        assert shape == [
            ("invoke_agent weather", "0"),
            (f"chat {MODEL}", "1"),
            ("execute_tool get_weather", "2"),
            (f"chat {MODEL}", "1"),
            (f"chat {MODEL}", "1"),
        ]
        statuses = [span.get_attribute("data-status") for span in spans]
        assert statuses == ["UNSET", "UNSET", "UNSET", "ERROR", "UNSET"]
        failed = spans[3]
        assert "error" in (failed.get_attribute("class") or "").split()
        red = by_testid(failed, "span-name")[0].value_of_css_property("color")
        assert red == "rgba(198, 40, 40, 1)"  # --error in style.css
        assert "error" in (by_testid(failed, "span-bar")[0].get_attribute("class") or "")

        failed.click()
        wait_for(browser, lambda d: by_testid(d, "detail-status-message"))
        assert text_of(browser, "detail-status-message") == "model overloaded"
        failed.click()  # closes it again
        wait_for(browser, lambda d: not by_testid(d, "detail-status-message"))

        spans[1].click()
        details = wait_for(browser, lambda d: by_testid(d, "span-details"))[0]
        assert {
            name: text_of(details, name)
            for name in (
                "detail-model",
                "detail-prompt",
                "detail-response",
                "detail-tokens",
                "detail-cost",
                "detail-finish-reason",
            )
        } == {
            "detail-model": f"{MODEL} (requested gpt-4o)",
            "detail-prompt": "Weather in London?",
            "detail-response": "Calling get_weather.",
            "detail-tokens": "120 in (20 cached), 18 out = 138",
            "detail-cost": "$0.000500",
            "detail-finish-reason": "tool_call",
        }
        assert '"get_weather"' in text_of(details, "detail-tool-definitions")

        spans[2].click()
        wait_for(browser, lambda d: by_testid(d, "detail-args"))
        assert '"city": "London"' in text_of(browser, "detail-args")
        assert '"temperature": 15' in text_of(browser, "detail-result")

        spans[2].click()  # the screenshot: the waterfall with one step and the failure open
        spans[1].click()
        failed.click()
        wait_for(browser, lambda d: len(by_testid(d, "span-details")) == 1)
        browser.execute_script("window.scrollTo(0, 0)")
        target = (
            SCREENSHOT if os.environ.get("TCC_UPDATE_SCREENSHOT") == "1" else tmp_path / "run.png"
        )
        assert browser.save_screenshot(str(target))
        assert target.read_bytes().startswith(b"\x89PNG")

    def test_filters(self, server: Receiver, browser: WebDriver) -> None:
        """Filtering by a status no run has empties the list; clearing it shows the run again."""
        from selenium.webdriver.support.ui import Select

        browser.get(server.url + "/#/?status=error")
        wait_for(browser, lambda d: by_testid(d, "no-runs"))
        Select(by_testid(browser, "filter-status")[0]).select_by_value("ok")
        by_testid(browser, "filter-agent")[0].send_keys("weather")
        by_testid(browser, "filter-apply")[0].click()
        rows = wait_for(browser, lambda d: by_testid(d, "run-row"))
        assert [row.get_attribute("data-run-id") for row in rows] == [RUN_ID]
        assert browser.current_url.endswith("#/?status=ok&agent=weather")
