"""The merchant's admin page over real HTTP: embedded (session tokens, install), single-store with
a password, and local-only; on SQLite and PostgreSQL, with a fake Shopify over a real socket."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from conftest import TEST_BM_TOKEN, TEST_SECRET, TEST_SHOP, make_settings
from shopify_bm import create_app
from shopify_bm.models import ExportJob, ExportStatus, Shop, utcnow
from shopify_bm.runtime import Runtime
from shopify_bm.views.admin_access import HTTP_CLIENT
from support.shopify_fake import RunningFake, running_fake, session_token

PASSWORD = "correct horse battery staple"
CSP = f"frame-ancestors https://{TEST_SHOP} https://admin.shopify.com;"
ORDER = 5_812_345_678_901
PROBLEMS = [
    {"code": "missing_imei", "message": "IP13-128-BLK: 2 phones, 1 IMEI tag", "blocking": True},
    {
        "code": "imei_bad_check_digit",
        "message": "IP13:IMEI356938035643808: wrong check digit",
        "blocking": True,
    },
]


@pytest.fixture
def shopify() -> Iterator[RunningFake]:
    with running_fake() as running:
        yield running


@contextmanager
def serving(runtime: Runtime, shopify: RunningFake | None = None) -> Iterator[httpx.Client]:
    """The app on a free port; a client for it (no redirects followed)."""
    app = create_app(runtime=runtime)
    if shopify is not None:
        app.config[HTTP_CLIENT] = shopify.client
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=10) as client:
            yield client
    finally:
        server.shutdown()
        thread.join(timeout=5)


@contextmanager
def started(database_url: str, tmp_path: Path, **overrides: Any) -> Iterator[Runtime]:
    runtime = Runtime.start(make_settings(database_url, tmp_path, **overrides))
    runtime.prepare()
    try:
        yield runtime
    finally:
        runtime.db.dispose()


@pytest.fixture
def app(runtime: Runtime, shopify: RunningFake) -> Iterator[httpx.Client]:
    """Single-store mode without a password (the conftest runtime), Shopify faked."""
    with serving(runtime, shopify) as client:
        yield client


@pytest.fixture
def password_app(database_url: str, tmp_path: Path) -> Iterator[httpx.Client]:
    with (
        started(database_url, tmp_path, SHOPIFY_BM_ADMIN_PASSWORD=PASSWORD) as runtime,
        serving(runtime) as client,
    ):
        yield client


def bearer(shop: str = TEST_SHOP, **claims: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {session_token(shop, **claims)}"}


def embedded_url(shop: str = TEST_SHOP) -> str:
    return f"/?embedded=1&host=YWRtaW4&shop={shop}&id_token={session_token(shop)}"


def add_job(
    runtime: Runtime,
    order_id: int = ORDER,
    *,
    name: str = "#1042",
    status: str = ExportStatus.BLOCKED,
    reason_code: str | None = "missing_imei",
    problems: list[dict[str, Any]] | None = None,
    last_error: str | None = None,
    **values: Any,
) -> None:
    with runtime.db.transaction() as session:
        shop = session.execute(select(Shop).where(Shop.domain == TEST_SHOP)).scalar_one()
        session.add(
            ExportJob(
                shop_id=shop.id,
                shopify_order_id=order_id,
                order_name=name,
                status=status,
                reason_code=reason_code,
                problems=PROBLEMS if problems is None else problems,
                last_error=last_error,
                run_after=utcnow() + timedelta(hours=1),
                attempts=3,
                **values,
            )
        )


def job(runtime: Runtime, order_id: int = ORDER) -> ExportJob:
    with runtime.db.transaction() as session:
        return session.execute(
            select(ExportJob).where(ExportJob.shopify_order_id == order_id)
        ).scalar_one()


def post(
    client: httpx.Client, path: str, headers: dict[str, str], body: Any = None
) -> httpx.Response:
    return client.post(path, json=body or {}, headers=headers)


# The page ---------------------------------------------------------------------------------------


def test_the_page_lists_blocked_and_failed_exports_first_with_every_reason(
    app: httpx.Client, runtime: Runtime
) -> None:
    add_job(runtime, name="#1042")
    add_job(
        runtime,
        ORDER + 1,
        name="#1043",
        status=ExportStatus.FAILED,
        reason_code="backmarket_refused",
        problems=[],
        last_error="Back Market refused: order 48613271 is cancelled",
    )
    add_job(
        runtime,
        ORDER + 2,
        name="#1044",
        status=ExportStatus.EXPORTED,
        reason_code=None,
        problems=[],
        exported_at=utcnow(),
        shipment={"tracking_number": "6A12345678901", "carrier": "Colissimo"},
    )

    page = app.get(embedded_url())

    assert page.status_code == 200
    html = page.text
    for text in (
        "#1042",
        "Blocked",
        "IP13-128-BLK: 2 phones, 1 IMEI tag",
        "IP13:IMEI356938035643808: wrong check digit",
        "Add one order tag per phone",  # what to do about it
        "When the order changes, or on Retry",  # next attempt of a blocked export
        "#1043",
        "Failed",
        "Back Market refused: order 48613271 is cancelled",
        "Colissimo 6A12345678901",
    ):
        assert text in html
    assert html.index("#1042") < html.index("Recently exported") < html.index("#1044")
    assert f"/admin/exports/{ORDER}/retry" in html
    assert f"/admin/exports/{ORDER}/ship-without-imei" in html
    assert "allow-reused-imei" not in html
    assert f"/admin/exports/{ORDER + 2}/" not in html  # nothing to do for an exported order


def test_a_retrying_export_shows_its_next_attempt(app: httpx.Client, runtime: Runtime) -> None:
    add_job(
        runtime, status=ExportStatus.RETRY, reason_code=None, problems=[], last_error="HTTP 503"
    )
    when = job(runtime).run_after.strftime("%Y-%m-%d %H:%M UTC")

    html = app.get(embedded_url()).text

    assert "Being sent" in html
    assert "Retrying" in html
    assert when in html
    assert "HTTP 503" in html
    assert "Retry now" in html


def test_allow_reused_imei_is_offered_when_an_imei_was_already_exported(
    app: httpx.Client, runtime: Runtime
) -> None:
    add_job(
        runtime,
        reason_code="imei_already_exported",
        problems=[
            {
                "code": "imei_already_exported",
                "message": "IMEI 356938035643809 was already sent with order #998",
                "blocking": True,
            }
        ],
    )

    html = app.get(embedded_url()).text

    assert f"/admin/exports/{ORDER}/allow-reused-imei" in html
    assert "Allow reused IMEI" in html


def test_the_page_is_an_embedded_app_page(app: httpx.Client, runtime: Runtime) -> None:
    add_job(runtime)
    page = app.get(embedded_url())

    assert page.headers["Content-Security-Policy"] == CSP
    assert page.headers["Cache-Control"] == "no-store"
    scripts = re.findall(r'<script src="([^"]+)"', page.text)
    assert scripts[0] == "https://cdn.shopify.com/shopifycloud/app-bridge.js"
    assert "https://cdn.shopify.com/shopifycloud/polaris.js" in scripts
    assert '<meta name="shopify-api-key" content="test-client-id">' in page.text
    assert page.text.index('name="shopify-api-key"') < page.text.index("<script")
    for component in ("<s-page", "<s-section", "<s-table", "<s-button"):
        assert component in page.text


def test_secrets_never_reach_the_html(app: httpx.Client, runtime: Runtime) -> None:
    add_job(runtime)
    app.get(embedded_url())  # installs: Shopify tokens from the fake are now stored
    with runtime.db.transaction() as session:
        shop = session.execute(select(Shop)).scalar_one()
        shop.backmarket_token = TEST_BM_TOKEN
        stored = [shop.access_token, shop.refresh_token]

    html = app.get(embedded_url()).text

    assert all(stored)
    for secret in (TEST_BM_TOKEN, TEST_SECRET, *stored):
        assert secret not in html
    assert re.search(r'id="token-state">set<', html)


# Session tokens and install ---------------------------------------------------------------------


def test_a_bad_session_token_gets_401_with_the_retry_header(
    app: httpx.Client, runtime: Runtime
) -> None:
    add_job(runtime)
    forged = {"Authorization": "Bearer " + session_token(secret="x" * 40)}

    response = post(app, f"/admin/exports/{ORDER}/retry", forged)

    assert response.status_code == 401
    assert response.headers["X-Shopify-Retry-Invalid-Session-Request"] == "1"
    assert response.headers["Content-Security-Policy"] == CSP
    assert job(runtime).status == ExportStatus.BLOCKED


def test_an_expired_session_token_gets_401_with_the_retry_header(app: httpx.Client) -> None:
    response = post(app, "/admin/settings", bearer(issued=time.time() - 600))

    assert response.status_code == 401
    assert response.headers["X-Shopify-Retry-Invalid-Session-Request"] == "1"


def test_a_document_load_without_token_goes_through_the_patch_page(app: httpx.Client) -> None:
    response = app.get(f"/?shop={TEST_SHOP}&host=YWRtaW4")

    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert location.netloc == ""  # relative: safe behind a TLS-terminating proxy
    assert location.path == "/auth/patch-id-token"
    assert parse_qs(location.query)["shopify-reload"] == [f"/?shop={TEST_SHOP}&host=YWRtaW4"]

    patch = app.get(response.headers["Location"])

    assert patch.status_code == 200
    assert 'data-api-key="test-client-id"' in patch.text
    assert patch.headers["Content-Security-Policy"] == CSP


def test_the_patch_page_wants_a_shop(app: httpx.Client) -> None:
    assert app.get("/auth/patch-id-token?shop=evil.example").status_code == 400


def test_the_first_open_in_shopify_installs_a_new_shop(
    database_url: str, tmp_path: Path, shopify: RunningFake
) -> None:
    new = "new-refurb.myshopify.com"
    with (
        started(database_url, tmp_path, shopify_shop=None) as runtime,
        serving(runtime, shopify) as client,
    ):
        page = client.get(embedded_url(new))

        assert page.status_code == 200
        assert "Nothing is blocked or failed." in page.text
        assert page.headers["Content-Security-Policy"] == (
            f"frame-ancestors https://{new} https://admin.shopify.com;"
        )
        with runtime.db.transaction() as session:
            shop = session.execute(select(Shop).where(Shop.domain == new)).scalar_one()
            assert shop.installed
            assert shop.access_token == "shpat_fake_0001"
            assert shop.refresh_token == "shprt_fake_0001"
        assert [r["grant_type"] for r in shopify.fake.token_requests] == [
            "urn:ietf:params:oauth:grant-type:token-exchange"
        ]
        # Outside Shopify, a multi-shop app shows nothing.
        assert client.get("/").status_code == 403


def test_single_store_mode_serves_its_own_shop_only(app: httpx.Client) -> None:
    response = app.get(embedded_url("someone-else.myshopify.com"))

    assert response.status_code == 403


# Actions ----------------------------------------------------------------------------------------


def test_retry_requeues_the_export(app: httpx.Client, runtime: Runtime) -> None:
    add_job(runtime)
    before = utcnow()

    response = post(app, f"/admin/exports/{ORDER}/retry", bearer())

    assert response.status_code == 200
    assert response.json()["status"] == ExportStatus.PENDING
    queued = job(runtime)
    assert queued.status == ExportStatus.PENDING
    assert queued.attempts == 0
    assert before - timedelta(seconds=1) <= queued.run_after <= utcnow()
    assert not queued.ship_without_imei


def test_ship_without_imei_is_recorded_with_who_asked(app: httpx.Client, runtime: Runtime) -> None:
    add_job(runtime)

    response = post(app, f"/admin/exports/{ORDER}/ship-without-imei", bearer(user="77"))

    assert response.status_code == 200
    queued = job(runtime)
    assert queued.status == ExportStatus.PENDING
    assert queued.ship_without_imei
    assert "Shopify user 77: ship without IMEI" in (queued.override_note or "")


def test_allow_reused_imei_is_recorded(app: httpx.Client, runtime: Runtime) -> None:
    add_job(runtime, reason_code="imei_already_exported")

    assert post(app, f"/admin/exports/{ORDER}/allow-reused-imei", bearer()).status_code == 200

    assert job(runtime).allow_reused_imeis


def test_an_exported_order_cannot_be_sent_again(app: httpx.Client, runtime: Runtime) -> None:
    add_job(runtime, status=ExportStatus.EXPORTED, reason_code=None, problems=[])

    response = post(app, f"/admin/exports/{ORDER}/retry", bearer())

    assert response.status_code == 409
    assert "already exported" in response.json()["error"]


@pytest.mark.parametrize("path", [f"/admin/exports/{ORDER}/delete", "/admin/exports/1/retry"])
def test_unknown_actions_and_orders_are_404(app: httpx.Client, runtime: Runtime, path: str) -> None:
    add_job(runtime)

    assert post(app, path, bearer()).status_code == 404


# Settings ---------------------------------------------------------------------------------------


def test_settings_are_saved_and_the_token_is_write_only(
    app: httpx.Client, runtime: Runtime
) -> None:
    new_token = "bmtoken-0123456789abcdef0123456789"
    response = post(
        app,
        "/admin/settings",
        bearer(),
        {
            "backmarket_token": new_token,
            "contact_email": "support@acme-refurb.example",
            "company": "Acme Refurb SAS",
            "ship_without_imei": True,
            "exempt_skus": "CHARGER-USB-C, case-13\nCASE-13",
            "backmarket_url": "https://www.backmarket.com",
            "clear_backmarket_token": False,
        },
    )

    assert response.status_code == 200, response.text
    with runtime.db.transaction() as session:
        shop = session.execute(select(Shop)).scalar_one()
        assert shop.backmarket_token == new_token
        assert shop.backmarket_contact_email == "support@acme-refurb.example"
        assert shop.backmarket_company == "Acme Refurb SAS"
        assert shop.ship_without_imei
        assert shop.exempt_skus == ["CHARGER-USB-C", "case-13"]
        assert shop.backmarket_url == "https://www.backmarket.com"
    html = app.get(embedded_url()).text
    assert new_token not in html
    assert 'value="support@acme-refurb.example"' in html

    # An empty token keeps the stored one.
    assert post(app, "/admin/settings", bearer(), {"company": "Acme"}).status_code == 200
    with runtime.db.transaction() as session:
        assert session.execute(select(Shop)).scalar_one().backmarket_token == new_token


def test_the_token_can_be_removed(app: httpx.Client, runtime: Runtime) -> None:
    response = post(app, "/admin/settings", bearer(), {"clear_backmarket_token": True})

    assert response.status_code == 200
    html = app.get(embedded_url()).text
    assert re.search(r'id="token-state">not set<', html)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"contact_email": "not an email"}, "contact_email"),
        ({"backmarket_token": "has a space SECRET-PART"}, "backmarket_token"),
        ({"company": "Acme\x00"}, "company"),
        ({"exempt_skus": "X" * 101}, "exempt_skus"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_invalid_settings_are_refused_without_echoing_them(
    app: httpx.Client, runtime: Runtime, body: dict[str, Any], field: str
) -> None:
    response = post(app, "/admin/settings", bearer(), body)

    assert response.status_code == 400
    assert field in response.json()["fields"]
    assert "SECRET-PART" not in response.text


def test_a_made_up_backmarket_url_is_refused(app: httpx.Client) -> None:
    response = post(app, "/admin/settings", bearer(), {"backmarket_url": "https://evil.example"})

    assert response.status_code == 400


# Outside Shopify --------------------------------------------------------------------------------


def test_the_password_protects_the_page(password_app: httpx.Client) -> None:
    anonymous = password_app.get("/")
    wrong = password_app.get("/", auth=("admin", "guess"))
    right = password_app.get("/", auth=("admin", PASSWORD))

    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"].startswith("Basic ")
    assert anonymous.headers["Content-Security-Policy"] == CSP
    assert wrong.status_code == 401
    assert right.status_code == 200
    assert "Back Market exports" in right.text
    assert "app-bridge.js" not in right.text  # not inside Shopify: no App Bridge


def test_password_actions_need_the_pages_own_request(database_url: str, tmp_path: Path) -> None:
    with (
        started(database_url, tmp_path, SHOPIFY_BM_ADMIN_PASSWORD=PASSWORD) as runtime,
        serving(runtime) as client,
    ):
        add_job(runtime)
        url = f"/admin/exports/{ORDER}/retry"
        page_headers = {"X-Requested-With": "shopify-bm"}
        origin = str(client.base_url).rstrip("/")

        cases = {
            "no password": client.post(url, json={}, headers=page_headers),
            "form post": client.post(
                url, data={"x": "1"}, headers=page_headers, auth=("a", PASSWORD)
            ),
            "no header": client.post(url, json={}, auth=("a", PASSWORD)),
            "other site": client.post(
                url,
                json={},
                auth=("a", PASSWORD),
                headers={**page_headers, "Origin": "https://evil.example"},
            ),
            "cross-site fetch": client.post(
                url,
                json={},
                auth=("a", PASSWORD),
                headers={**page_headers, "Sec-Fetch-Site": "cross-site"},
            ),
        }
        assert {name: r.status_code for name, r in cases.items()} == {
            "no password": 401,
            "form post": 415,
            "no header": 403,
            "other site": 403,
            "cross-site fetch": 403,
        }
        assert job(runtime).status == ExportStatus.BLOCKED

        ok = client.post(
            url,
            json={},
            auth=("a", PASSWORD),
            headers={**page_headers, "Origin": origin, "Sec-Fetch-Site": "same-origin"},
        )
        assert ok.status_code == 200
        assert job(runtime).status == ExportStatus.PENDING


def test_without_a_password_only_this_machine_gets_in(app: httpx.Client) -> None:
    port = app.base_url.port

    assert app.get("/").status_code == 200
    assert app.get("/", headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 403
    # DNS rebinding: a foreign name that resolves to 127.0.0.1.
    assert app.get("/", headers={"Host": f"evil.example:{port}"}).status_code == 403
    assert app.get("/", headers={"Host": f"localhost:{port}"}).status_code == 200
