"""The admin page in a real browser (Debian's Chromium driven by Playwright): the page's own
JavaScript sends the actions and the settings. Shopify's CDN is blocked, so this is the page as
it works outside Shopify (single-store mode from this machine) with the plain-HTML fallbacks.
Skipped where Playwright or Chromium is not installed."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from conftest import TEST_SHOP
from shopify_bm import create_app
from shopify_bm.models import ExportJob, ExportStatus, Shop, utcnow
from shopify_bm.runtime import Runtime

sync_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed"),
]
ORDER = 5_812_345_678_901


@pytest.fixture
def page_url(runtime: Runtime) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, create_app(runtime=runtime), threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.port}/"
    server.shutdown()
    thread.join(timeout=5)


@pytest.fixture
def browser_page() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        page = browser.new_page()
        page.route("https://cdn.shopify.com/**", lambda route: route.abort())
        try:
            yield page
        finally:
            browser.close()


def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def blocked_job(runtime: Runtime) -> None:
    with runtime.db.transaction() as session:
        shop = session.execute(select(Shop).where(Shop.domain == TEST_SHOP)).scalar_one()
        session.add(
            ExportJob(
                shop_id=shop.id,
                shopify_order_id=ORDER,
                order_name="#1042",
                status=ExportStatus.BLOCKED,
                reason_code="missing_imei",
                problems=[{"code": "missing_imei", "message": "IP13: 2 phones, 1 IMEI tag"}],
                run_after=utcnow(),
            )
        )


def status(runtime: Runtime) -> str:
    with runtime.db.transaction() as session:
        return session.execute(select(ExportJob.status)).scalar_one()


def test_the_retry_button_requeues_the_export(
    runtime: Runtime, page_url: str, browser_page: Any
) -> None:
    blocked_job(runtime)
    browser_page.goto(page_url, wait_until="domcontentloaded")

    assert browser_page.get_by_text("IP13: 2 phones, 1 IMEI tag").is_visible()
    browser_page.locator(f's-button[data-action-url="/admin/exports/{ORDER}/retry"]').click()

    sync_api.expect(browser_page.locator("#notice")).to_contain_text("#1042: queued again")
    eventually(lambda: status(runtime) == ExportStatus.PENDING)


def test_the_settings_form_saves(runtime: Runtime, page_url: str, browser_page: Any) -> None:
    browser_page.goto(page_url, wait_until="domcontentloaded")

    browser_page.locator('input[name="company"]').fill("Browser Refurb")
    browser_page.locator('input[name="backmarket_token"]').fill("bm-token-from-the-browser")
    browser_page.locator('input[name="ship_without_imei"]').check()
    browser_page.locator('textarea[name="exempt_skus"]').fill("CHARGER, CASE-13")
    browser_page.locator('select[name="backmarket_url"]').select_option(
        "https://www.backmarket.com"
    )
    browser_page.get_by_text("Save settings").click()
    sync_api.expect(browser_page.locator("#notice")).to_contain_text("Settings saved")

    def saved() -> bool:
        with runtime.db.transaction() as session:
            shop = session.execute(select(Shop)).scalar_one()
            return shop.backmarket_company == "Browser Refurb"

    eventually(saved)
    with runtime.db.transaction() as session:
        shop = session.execute(select(Shop)).scalar_one()
        assert shop.backmarket_token == "bm-token-from-the-browser"
        assert shop.ship_without_imei
        assert shop.exempt_skus == ["CHARGER", "CASE-13"]
        assert shop.backmarket_url == "https://www.backmarket.com"
