"""The clerk's console and GraphiQL in real Chromium (Debian's, driven by Playwright) against the running demo.

Every request either page makes is recorded; all must go to the gateway on loopback. With
``ONEWINDOW_SCREENSHOTS=1`` the tests also refresh docs/images/console.png and docs/images/graphiql.png.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import Browser, ConsoleMessage, Page, Request, async_playwright

from demo.data import SAMPLE_PERSON_ID
from demo.departments import DemoDepartments
from gateway.app import create_app
from gateway.config import GatewayConfig
from gateway.pages import CONSOLE_CSP
from gateway.serving import serve_asgi
from tests.conftest import unavailable
from tests.demo_config import demo_config

CHROMIUM = os.environ.get("ONEWINDOW_TEST_CHROMIUM", "/usr/bin/chromium")
DOCS_IMAGES = Path(__file__).parents[2] / "docs" / "images"
SCREENSHOTS = os.environ.get("ONEWINDOW_SCREENSHOTS", "") == "1"


@dataclass
class Demo:
    """The demo as ``onewindow demo`` configures it (its own policy and development principal), served."""

    url: str
    departments: DemoDepartments
    config: GatewayConfig

    def department_calls(self) -> int:
        return sum(counter.total for counter in self.departments.counters.values())


@pytest.fixture
async def demo(departments: DemoDepartments, tmp_path: Path) -> AsyncIterator[Demo]:
    config = demo_config(departments.variables, tmp_path, open_policy=False)
    async with serve_asgi(create_app(config)) as url:
        yield Demo(url, departments, config)


@pytest.fixture
def chromium() -> str:
    """Debian's Chromium (Playwright drives it; it never downloads a browser of its own)."""
    found = shutil.which(CHROMIUM)
    if found is None:
        unavailable(f"Chromium is not at {CHROMIUM} (apt-get install chromium; scripts/test.sh does)")
    return found


@pytest.fixture
async def browser(chromium: str) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        # as root (CI), Chromium's sandbox cannot start; the pages are the gateway's own
        launched = await playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            await launched.close()


async def _page(browser: Browser, requests: list[str], failures: list[str], *, height: int = 900) -> Page:
    """A new page recording the address of every request it makes, and its script errors (a CSP refusal too)."""
    page = await browser.new_page(viewport={"width": 1280, "height": height})

    def record(request: Request) -> None:
        requests.append(request.url)

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            failures.append(message.text)

    page.on("request", record)
    page.on("console", console)
    page.on("pageerror", lambda error: failures.append(str(error)))
    return page


def _all_loopback(requests: list[str]) -> None:
    assert requests
    away = [url for url in requests if urlsplit(url).hostname != "127.0.0.1"]
    assert not away, f"requests left loopback: {away}"


async def _screenshot(page: Page, name: str) -> None:
    if SCREENSHOTS:
        DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(DOCS_IMAGES / name), full_page=True)


async def _look_up(page: Page, demo: Demo) -> str:
    """The sample person looked up for the sample purpose (a case of 最低生活保障审核确认); the purpose's number."""
    purpose = demo.departments.dataset.sample_purpose.case_number
    response = await page.goto(f"{demo.url}/console")
    assert response is not None
    assert response.headers["content-security-policy"] == CONSOLE_CSP
    await page.wait_for_selector("body[data-ready=forms]")
    await page.fill("#id-number", SAMPLE_PERSON_ID)
    await page.fill("#purpose", purpose)
    await page.click("#submit")
    return purpose


async def test_console_shows_the_applicant_with_badges_and_timeline(demo: Demo, browser: Browser) -> None:
    dataset = demo.departments.dataset
    with_form = {form.template.service_item for form in demo.config.compiled_forms.values()}
    # an item of one of the applicant's cases without a form: the person's own fields are shown for it
    item = next(c.service_item for c in dataset.cases_by_applicant[SAMPLE_PERSON_ID] if c.service_item not in with_form)
    requests: list[str] = []
    failures: list[str] = []
    page = await _page(browser, requests, failures)
    purpose = await _look_up(page, demo)
    await page.wait_for_selector("body[data-shown]")
    # the picker offers the applicant's service items, the purpose case's chosen
    assert "最低生活保障审核确认" in await page.locator("#service-item option:checked").inner_text()
    await page.select_option("#service-item", item)
    await page.wait_for_selector(f"body[data-shown='{item}'] tr[data-field=maritalStatus]")

    assert await page.inner_text("tr[data-field=name] td.value") == "王秀英"
    marital = page.locator("tr[data-field=maritalStatus]")
    assert await marital.locator("td.value").inner_text() == "WIDOWED"
    assert await marital.locator(".badge.department").inner_text() == "民政局婚姻登记系统"
    assert "live" in await marital.locator(".badge.age").inner_text()
    # not shared outside Public Security: refused, with the reason, and no department badge
    ethnicity = page.locator("tr[data-field=ethnicity]")
    assert await ethnicity.locator(".badge.refused").inner_text() == "refused: NOT_SHARED"
    assert await ethnicity.locator(".badge.department").count() == 0
    # the item's materials, each with its status, and the purpose case in the timeline
    assert await page.locator("#materials li[data-material=居民身份证] .badge").count() >= 1
    case = page.locator(f".case.purpose[data-case='{purpose}']")
    assert "最低生活保障审核确认" in await case.inner_text()
    assert await case.locator("ol li").count() >= 1
    assert await case.locator(".badge.ON_TIME, .badge.WARNING, .badge.OVERDUE, .badge.CLOSED").count() == 1
    assert await page.locator(".case.picked .badge").count() >= 1

    _all_loopback(requests)
    assert not failures


async def test_console_prefills_the_form_of_the_purpose_item_with_materials_held(demo: Demo, browser: Browser) -> None:
    requests: list[str] = []
    failures: list[str] = []
    page = await _page(browser, requests, failures)
    await _look_up(page, demo)
    # the purpose case's item, 最低生活保障审核确认, has the social_assistance form: its rows, prefilled
    await page.wait_for_selector("tr[data-path='Person.maritalStatus']")
    assert "最低生活保障申请表" in await page.inner_text("#form-title")
    name = page.locator("tr[data-path='Person.name']")
    assert await name.get_attribute("data-field") == "name"
    assert await name.locator("td.value").inner_text() == "王秀英"
    assert await name.locator(".badge.PREFILLED").inner_text() == "PREFILLED"
    assert await name.locator(".badge.department").count() >= 1
    marital = page.locator("tr[data-field=maritalStatus]")
    assert await marital.locator("td.value").inner_text() == "WIDOWED"
    assert await marital.locator(".badge.PREFILLED, .badge.CONFLICT").count() == 1
    assert await page.locator("#values tbody tr .badge.PREFILLED").count() >= 5
    # no person row: every row is a form field
    assert await page.locator("#values tbody tr:not([data-path])").count() == 0
    # the materials of the item, the ID card held by government
    id_card = page.locator("#materials li[data-material=居民身份证]")
    assert await id_card.locator(".badge.HELD").inner_text() == "HELD"
    assert "居民身份证" in await id_card.inner_text()
    assert await page.locator("#materials li .badge.NOT_CONNECTED").count() >= 1

    await _screenshot(page, "console.png")
    _all_loopback(requests)
    assert not failures


async def test_a_bad_id_number_is_refused_in_the_page_without_a_request(demo: Demo, browser: Browser) -> None:
    requests: list[str] = []
    failures: list[str] = []
    page = await _page(browser, requests, failures)
    await page.goto(f"{demo.url}/console")
    await page.wait_for_selector("body[data-ready]")
    before = list(requests)
    calls = demo.department_calls()

    await page.fill("#id-number", SAMPLE_PERSON_ID[:-1] + ("0" if SAMPLE_PERSON_ID[-1] != "0" else "1"))
    await page.fill("#purpose", demo.departments.dataset.sample_purpose.case_number)
    await page.click("#submit")

    assert "check character" in await page.inner_text("#error")
    assert await page.get_attribute("#id-number", "aria-invalid") == "true"
    assert await page.is_hidden("#results")
    assert requests == before  # nothing asked of the gateway
    assert demo.department_calls() == calls
    _all_loopback(requests)


async def test_graphiql_renders_its_editor_offline(demo: Demo, browser: Browser) -> None:
    requests: list[str] = []
    failures: list[str] = []
    page = await _page(browser, requests, failures, height=700)
    response = await page.goto(f"{demo.url}/graphql")
    assert response is not None
    assert "default-src 'none'" in response.headers["content-security-policy"]
    await page.wait_for_selector(".graphiql-editor .CodeMirror")
    await page.wait_for_selector(".graphiql-doc-explorer-title, .graphiql-sidebar")
    await page.click(".graphiql-execute-button")
    await page.wait_for_function("document.querySelector('.result-window')?.innerText.includes('demo-clerk')")

    await _screenshot(page, "graphiql.png")
    paths = {urlsplit(url).path for url in requests}
    assert "/static/graphiql/graphiql.min.js" in paths
    _all_loopback(requests)
    assert not failures


async def test_the_console_is_served_where_graphiql_is_unless_configured(
    departments: DemoDepartments, tmp_path: Path
) -> None:
    config = demo_config(departments.variables, tmp_path)
    console_on = config.model_copy(update={"http": config.http.model_copy(update={"console": True})})
    pages = ("/console", "/static/console/console.js", "/static/graphiql/graphiql.min.js")
    cases = [
        (config, True, (200, 200, 200)),
        (config, False, (404, 404, 404)),  # GraphiQL off (as in production): no console either
        (console_on, False, (200, 200, 404)),  # http.console: true serves it alone
    ]
    for built, graphiql, expected in cases:
        app = create_app(built, graphiql=graphiql)
        async with serve_asgi(app) as url, httpx.AsyncClient(base_url=url) as client:
            got = tuple([(await client.get(path)).status_code for path in pages])
        assert got == expected, (graphiql, built.http.console)
