"""Session tokens, install by token exchange, and offline-token refresh, against a fake Shopify
over real sockets, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from pydantic import SecretStr
from shopify_app import RequestInput, ShopifyApp
from sqlalchemy import select, text

from conftest import TEST_SECRET, TEST_SHOP
from shopify_bm.models import Shop, utcnow
from shopify_bm.runtime import Runtime
from shopify_bm.shopify import auth
from shopify_bm.shopify.errors import ShopifyTokenError, ShopifyUnavailableError
from support.shopify_fake import Reply, RunningFake, running_fake, session_token

APP_URL = "https://shopify-bm.example.com/"
OTHER_SECRET = "shpss_some_other_apps_secret_0123456789"


@pytest.fixture
def shopify() -> Iterator[RunningFake]:
    with running_fake() as running:
        yield running


def app() -> ShopifyApp:
    return ShopifyApp(client_id="test-client-id", client_secret=TEST_SECRET)


def fetch(token: str, url: str = APP_URL + "admin/settings") -> RequestInput:
    return auth.request_input("POST", url, {"Authorization": f"Bearer {token}"})


def document(query: str) -> RequestInput:
    return auth.request_input("GET", f"{APP_URL}?{query}", {})


def verified(shop: str = TEST_SHOP, **claims: object) -> auth.VerifiedSession:
    return auth.verify_session(app(), fetch(session_token(shop, **claims)))


def shop_row(runtime: Runtime, domain: str = TEST_SHOP) -> Shop:
    with runtime.db.transaction() as session:
        return session.execute(select(Shop).where(Shop.domain == domain)).scalar_one()


def set_tokens(runtime: Runtime, domain: str = TEST_SHOP, **values: object) -> None:
    with runtime.db.transaction() as session:
        shop = session.execute(select(Shop).where(Shop.domain == domain)).scalar_one()
        for key, value in values.items():
            setattr(shop, key, value)


# Session tokens ---------------------------------------------------------------------------------


def test_a_valid_session_token_names_the_shop_and_user() -> None:
    session = verified(user="77")

    assert (session.shop, session.user_id) == (TEST_SHOP, "77")
    assert session.id_token.exchangeable


def test_a_document_load_with_id_token_gets_the_frame_ancestors_csp() -> None:
    session = auth.verify_session(app(), document(f"shop={TEST_SHOP}&id_token={session_token()}"))

    assert session.document_headers["Content-Security-Policy"] == (
        f"frame-ancestors https://{TEST_SHOP} https://admin.shopify.com;"
    )


@pytest.mark.parametrize(
    ("make_token", "code"),
    [
        # Minted when the test runs: tokens live 60 s, and a long run would expire them.
        (lambda: session_token(issued=time.time() - 3600), "expired_id_token"),
        (lambda: session_token(secret=OTHER_SECRET), "invalid_id_token"),
        (lambda: session_token(audience="another-app"), "invalid_aud"),
        (lambda: "not-a-jwt", "invalid_id_token"),
    ],
    ids=["expired", "forged", "other-app", "garbage"],
)
def test_a_bad_token_on_a_fetch_gets_401_with_the_retry_header(
    make_token: Callable[[], str], code: str
) -> None:
    with pytest.raises(auth.SessionRejectedError) as caught:
        auth.verify_session(app(), fetch(make_token()))

    assert caught.value.code == code
    assert caught.value.response.status == 401
    assert caught.value.response.headers["X-Shopify-Retry-Invalid-Session-Request"] == "1"


def test_app_bridge_clock_skew_within_ten_seconds_is_accepted() -> None:
    # App Bridge can send an `nbf` a few seconds in the future.
    session = verified(issued=time.time() + 8)

    assert session.shop == TEST_SHOP


def test_a_token_naming_two_shops_is_refused() -> None:
    token = session_token(iss="https://evil-shop.myshopify.com/admin")

    with pytest.raises(auth.SessionRejectedError) as caught:
        auth.verify_session(app(), fetch(token))

    assert caught.value.code == "invalid_shop_claims"
    assert caught.value.response.status == 401


def test_a_document_load_without_token_goes_to_the_patch_page() -> None:
    with pytest.raises(auth.SessionRejectedError) as caught:
        auth.verify_session(app(), document(f"shop={TEST_SHOP}&host=YWRtaW4"))

    response = caught.value.response
    location = urlsplit(response.headers["Location"])
    assert response.status == 302
    assert location.path == auth.PATCH_ID_TOKEN_PATH
    assert parse_qs(location.query)["shopify-reload"] == [f"/?shop={TEST_SHOP}&host=YWRtaW4"]


def test_the_patch_page_loads_app_bridge_with_the_client_id() -> None:
    page = auth.patch_id_token_page(
        app(), document(f"shop={TEST_SHOP}&shopify-reload=%2F%3Fshop%3D{TEST_SHOP}")
    )

    assert page.status == 200
    assert 'data-api-key="test-client-id"' in page.body
    assert "app-bridge.js" in page.body


def test_csp_names_only_a_valid_shop() -> None:
    assert auth.frame_ancestors("acme.myshopify.com") == (
        "frame-ancestors https://acme.myshopify.com https://admin.shopify.com;"
    )
    assert auth.frame_ancestors("evil.example; script-src *") == (
        "frame-ancestors https://admin.shopify.com;"
    )


# Install (token exchange) ---------------------------------------------------------------------


def test_first_load_of_a_new_shop_installs_it_with_an_expiring_offline_token(
    runtime: Runtime, shopify: RunningFake
) -> None:
    new = "new-refurb.myshopify.com"
    now = utcnow()

    exchanged = auth.install_shop(
        runtime.db, app(), verified(new), runtime.settings, now, http_client=shopify.client
    )

    shop = shop_row(runtime, new)
    assert exchanged
    assert shop.installed
    assert shop.access_token == "shpat_fake_0001"
    assert shop.refresh_token == "shprt_fake_0001"
    assert shop.scope == "read_orders"
    assert shop.access_token_expires_at is not None
    assert timedelta(minutes=59) < shop.access_token_expires_at - now <= timedelta(minutes=61)
    assert shop.refresh_token_expires_at is not None
    assert shop.refresh_token_expires_at - now > timedelta(days=89)
    assert shop.backmarket_url == runtime.settings.backmarket_base_url
    request = shopify.fake.token_requests[0]
    assert request["host"] == new
    assert request["requested_token_type"] == (
        "urn:shopify:params:oauth:token-type:offline-access-token"
    )
    assert request["expiring"] == 1


def test_tokens_are_encrypted_at_rest(runtime: Runtime, shopify: RunningFake) -> None:
    auth.install_shop(
        runtime.db, app(), verified(), runtime.settings, utcnow(), http_client=shopify.client
    )

    with runtime.db.transaction() as session:
        raw = session.execute(
            text("SELECT access_token, refresh_token FROM shops WHERE domain = :d"),
            {"d": TEST_SHOP},
        ).one()
    assert "shpat_fake" not in raw[0]
    assert "shprt_fake" not in raw[1]
    assert shop_row(runtime).access_token == "shpat_fake_0001"


def test_later_loads_do_not_exchange_again(runtime: Runtime, shopify: RunningFake) -> None:
    for _ in range(3):
        auth.install_shop(
            runtime.db, app(), verified(), runtime.settings, utcnow(), http_client=shopify.client
        )

    assert len(shopify.fake.token_requests) == 1


def test_a_reinstall_after_uninstall_exchanges_again(
    runtime: Runtime, shopify: RunningFake
) -> None:
    auth.install_shop(
        runtime.db, app(), verified(), runtime.settings, utcnow(), http_client=shopify.client
    )
    set_tokens(runtime, installed=False, access_token=None, refresh_token=None)

    assert auth.install_shop(
        runtime.db, app(), verified(), runtime.settings, utcnow(), http_client=shopify.client
    )
    assert shop_row(runtime).installed
    assert shop_row(runtime).access_token == "shpat_fake_0002"


def test_shopify_refusing_the_session_token_answers_with_the_retry_response(
    runtime: Runtime, shopify: RunningFake
) -> None:
    shopify.fake.token_faults.append(Reply(400, {"error": "invalid_subject_token"}))

    with pytest.raises(auth.SessionRejectedError) as caught:
        auth.install_shop(
            runtime.db, app(), verified(), runtime.settings, utcnow(), http_client=shopify.client
        )

    assert caught.value.response.status == 401
    assert caught.value.response.headers["X-Shopify-Retry-Invalid-Session-Request"] == "1"
    assert shop_row(runtime).access_token is None


def test_a_new_shop_is_not_created_when_the_exchange_fails(
    runtime: Runtime, shopify: RunningFake
) -> None:
    shopify.fake.token_faults.append(Reply(400, {"error": "invalid_subject_token"}))

    with pytest.raises(auth.SessionRejectedError):
        auth.install_shop(
            runtime.db,
            app(),
            verified("ghost.myshopify.com"),
            runtime.settings,
            utcnow(),
            http_client=shopify.client,
        )

    with runtime.db.transaction() as session:
        assert (
            session.execute(select(Shop).where(Shop.domain == "ghost.myshopify.com")).first()
            is None
        )


# Refresh ----------------------------------------------------------------------------------------


def install(runtime: Runtime, shopify: RunningFake) -> None:
    auth.install_shop(
        runtime.db, app(), verified(), runtime.settings, utcnow(), http_client=shopify.client
    )


def expire(runtime: Runtime) -> None:
    """Make the stored access token expire in 30 s (inside the refresh margin)."""
    set_tokens(runtime, access_token_expires_at=utcnow() + timedelta(seconds=30))


def test_a_fresh_token_is_used_without_calling_shopify(
    runtime: Runtime, shopify: RunningFake
) -> None:
    install(runtime, shopify)

    token = auth.access_token_for(
        runtime.db, app(), TEST_SHOP, utcnow(), http_client=shopify.client
    )

    assert token == "shpat_fake_0001"
    assert len(shopify.fake.token_requests) == 1  # the install only


def test_an_expiring_token_is_refreshed_and_both_tokens_stored(
    runtime: Runtime, shopify: RunningFake
) -> None:
    install(runtime, shopify)
    expire(runtime)

    token = auth.access_token_for(
        runtime.db, app(), TEST_SHOP, utcnow(), http_client=shopify.client
    )

    shop = shop_row(runtime)
    assert token == shop.access_token == "shpat_fake_0002"
    assert shop.refresh_token == "shprt_fake_0002"
    assert shop.access_token_expires_at is not None
    assert shop.access_token_expires_at > utcnow() + timedelta(minutes=59)
    refresh = shopify.fake.token_requests[-1]
    assert (refresh["grant_type"], refresh["refresh_token"]) == ("refresh_token", "shprt_fake_0001")


def test_concurrent_refreshes_of_one_shop_call_shopify_once(
    runtime: Runtime, shopify: RunningFake
) -> None:
    install(runtime, shopify)
    expire(runtime)
    shopify.fake.refresh_delay = 0.3  # long enough for every thread to arrive meanwhile
    results: list[str] = []
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def use_token() -> None:
        start.wait()
        try:
            results.append(
                auth.access_token_for(
                    runtime.db, app(), TEST_SHOP, utcnow(), http_client=shopify.client
                )
            )
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=use_token) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert results == ["shpat_fake_0002"] * 4
    refreshes = [r for r in shopify.fake.token_requests if r["grant_type"] == "refresh_token"]
    assert len(refreshes) == 1


def test_a_dead_refresh_token_clears_the_tokens_and_asks_for_the_merchant(
    runtime: Runtime, shopify: RunningFake
) -> None:
    install(runtime, shopify)
    expire(runtime)
    shopify.fake.valid_refresh_tokens.clear()  # revoked on Shopify's side

    with pytest.raises(ShopifyTokenError, match="open the app"):
        auth.access_token_for(runtime.db, app(), TEST_SHOP, utcnow(), http_client=shopify.client)

    shop = shop_row(runtime)
    assert (shop.access_token, shop.refresh_token) == (None, None)
    # The next App Home load installs again.
    assert auth.install_shop(
        runtime.db, app(), verified(), runtime.settings, utcnow(), http_client=shopify.client
    )


def test_a_token_endpoint_outage_is_transient_and_keeps_the_tokens(
    runtime: Runtime, shopify: RunningFake
) -> None:
    install(runtime, shopify)
    expire(runtime)
    shopify.fake.token_faults.extend([Reply(503, {"error": "unavailable"})] * 3)

    with pytest.raises(ShopifyUnavailableError) as caught:
        auth.access_token_for(runtime.db, app(), TEST_SHOP, utcnow(), http_client=shopify.client)

    assert caught.value.transient
    assert shop_row(runtime).refresh_token == "shprt_fake_0001"


def test_a_non_expiring_token_from_the_environment_is_used_as_is(runtime: Runtime) -> None:
    set_tokens(runtime, access_token="shpat_from_env")

    assert auth.access_token_for(runtime.db, app(), TEST_SHOP, utcnow()) == "shpat_from_env"


@pytest.mark.parametrize("state", ["no token", "uninstalled", "unknown shop"])
def test_no_usable_token_is_a_token_error(runtime: Runtime, state: str) -> None:
    domain = "nobody.myshopify.com" if state == "unknown shop" else TEST_SHOP
    if state == "uninstalled":
        set_tokens(runtime, access_token="shpat_old", installed=False)

    with pytest.raises(ShopifyTokenError):
        auth.access_token_for(runtime.db, app(), domain, utcnow())


def test_app_credentials_are_required(runtime: Runtime) -> None:
    settings = runtime.settings.model_copy(update={"shopify_api_key": None})

    with pytest.raises(auth.AppNotConfiguredError):
        auth.shopify_app(settings)


def test_shopify_app_uses_the_old_secret_while_rotating(runtime: Runtime) -> None:
    settings = runtime.settings.model_copy(
        update={
            "shopify_api_secret": SecretStr(OTHER_SECRET),
            "shopify_api_secret_old": SecretStr(TEST_SECRET),
        }
    )

    session = auth.verify_session(auth.shopify_app(settings), fetch(session_token()))

    assert session.shop == TEST_SHOP
