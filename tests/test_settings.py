"""The configuration contract: environment variables in, typed settings out."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from shopify_bm.settings import DEFAULT_WEBHOOK_MAX_BYTES, Settings, normalize_shop_domain


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Nothing from the machine's environment leaks in; relative paths resolve in tmp_path."""
    names: set[str] = set()
    for name, field in Settings.model_fields.items():
        names.add(name.casefold())
        if field.alias:
            names.add(field.alias.casefold())
    for variable in list(os.environ):
        if variable.casefold() in names:
            monkeypatch.delenv(variable)
    monkeypatch.chdir(tmp_path)


def settings_from(monkeypatch: pytest.MonkeyPatch, **environment: str) -> Settings:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return Settings()


def test_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    settings = settings_from(monkeypatch)

    assert not settings.single_store
    assert settings.shopify_shop is None
    assert settings.exempt_skus == []
    assert (settings.ship_without_imei, settings.accept_orders) == (False, True)
    assert settings.backmarket_base_url == "https://www.backmarket.fr"
    assert settings.webhook_secrets == []
    assert settings.webhook_max_bytes == DEFAULT_WEBHOOK_MAX_BYTES
    assert (settings.host, settings.port) == ("127.0.0.1", 8080)
    assert settings.encryption_key is None
    assert settings.backmarket_note_attribute == "backmarket_order_id"
    assert settings.backmarket_tag_prefix == "BM:"
    # The embedded default: a SQLite file in ./instance, as an absolute path.
    expected = (tmp_path / "instance" / "shopify-bm.sqlite3").resolve()
    assert settings.resolved_database_url == f"sqlite:///{expected}"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("CHARGER-USB-C,CASE-13", ["CHARGER-USB-C", "CASE-13"], id="two"),
        pytest.param(" CHARGER-USB-C , CASE-13 ", ["CHARGER-USB-C", "CASE-13"], id="blanks"),
        pytest.param("CASE-13,,", ["CASE-13"], id="empty-items"),
        pytest.param("CASE-13", ["CASE-13"], id="one"),
        pytest.param("", [], id="empty"),
        pytest.param(" , ", [], id="only-separators"),
    ],
)
def test_exempt_skus_are_comma_separated(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: list[str]
) -> None:
    settings = settings_from(monkeypatch, SHOPIFY_BM_EXEMPT_SKUS=value)

    assert settings.exempt_skus == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("acme-refurb", "acme-refurb.myshopify.com"),
        ("acme-refurb.myshopify.com", "acme-refurb.myshopify.com"),
        ("Acme-Refurb.MyShopify.com", "acme-refurb.myshopify.com"),
        ("https://acme-refurb.myshopify.com/", "acme-refurb.myshopify.com"),
        ("http://acme-refurb.myshopify.com", "acme-refurb.myshopify.com"),
        ("  HTTPS://ACME-REFURB.MYSHOPIFY.COM  ", "acme-refurb.myshopify.com"),
    ],
)
def test_shop_domain_is_normalised(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: str
) -> None:
    settings = settings_from(monkeypatch, SHOPIFY_SHOP=value)

    assert settings.shopify_shop == expected
    assert settings.single_store
    assert normalize_shop_domain(value) == expected


def test_an_empty_shop_is_not_single_store_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not settings_from(monkeypatch, SHOPIFY_SHOP="").single_store


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        pytest.param({}, "https://www.backmarket.fr", id="default-eu"),
        pytest.param({"BACKMARKET_REGION": "eu"}, "https://www.backmarket.fr", id="eu"),
        pytest.param({"BACKMARKET_REGION": "us"}, "https://www.backmarket.com", id="us"),
        pytest.param({"BACKMARKET_REGION": "ap"}, "https://www.backmarket.co.jp", id="ap"),
        pytest.param(
            {"BACKMARKET_REGION": "us", "BACKMARKET_API_URL": "http://127.0.0.1:8765/"},
            "http://127.0.0.1:8765",
            id="explicit-url-wins-without-trailing-slash",
        ),
    ],
)
def test_backmarket_url_from_region_or_override(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], expected: str
) -> None:
    assert settings_from(monkeypatch, **environment).backmarket_base_url == expected


def test_unknown_region_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError, match="backmarket_region"):
        settings_from(monkeypatch, BACKMARKET_REGION="mars")


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        pytest.param({}, [], id="none"),
        pytest.param({"SHOPIFY_API_SECRET": "hmac-current"}, ["hmac-current"], id="current"),
        pytest.param(
            {"SHOPIFY_API_SECRET": "hmac-current", "SHOPIFY_API_SECRET_OLD": "hmac-previous"},
            ["hmac-current", "hmac-previous"],
            id="rotating-current-first",
        ),
        pytest.param(
            {"SHOPIFY_API_SECRET": "hmac-current", "SHOPIFY_API_SECRET_OLD": ""},
            ["hmac-current"],
            id="old-empty",
        ),
        pytest.param({"SHOPIFY_API_SECRET": ""}, [], id="empty"),
    ],
)
def test_webhook_secrets(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], expected: list[str]
) -> None:
    settings = settings_from(monkeypatch, **environment)

    assert settings.webhook_secrets == expected
    assert "hmac-" not in repr(settings)  # secrets never show in logs


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        pytest.param(
            {"DATABASE_URL": "postgresql+psycopg://app@db/shopify_bm"},
            "postgresql+psycopg://app@db/shopify_bm",
            id="explicit",
        ),
        pytest.param({"database_url": "sqlite:///elsewhere.db"}, "sqlite:///elsewhere.db", id="lc"),
    ],
)
def test_database_url_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], expected: str
) -> None:
    assert settings_from(monkeypatch, **environment).resolved_database_url == expected


@pytest.mark.parametrize("value", ["", None])
def test_default_database_lives_in_the_instance_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, value: str | None
) -> None:
    environment = {"SHOPIFY_BM_INSTANCE_PATH": str(tmp_path / "state")}
    if value is not None:
        environment["DATABASE_URL"] = value

    settings = settings_from(monkeypatch, **environment)

    assert settings.instance_path == tmp_path / "state"
    expected = (tmp_path / "state" / "shopify-bm.sqlite3").resolve()
    assert settings.resolved_database_url == f"sqlite:///{expected}"


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        pytest.param({"SHOPIFY_BM_SHIP_WITHOUT_IMEI": "true"}, (True, True), id="ship-true"),
        pytest.param({"SHOPIFY_BM_SHIP_WITHOUT_IMEI": "1"}, (True, True), id="ship-1"),
        pytest.param({"SHOPIFY_BM_ACCEPT_ORDERS": "false"}, (False, False), id="accept-false"),
        pytest.param({"shopify_bm_accept_orders": "0"}, (False, False), id="any-case-name"),
    ],
)
def test_export_switches(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], expected: tuple[bool, bool]
) -> None:
    settings = settings_from(monkeypatch, **environment)

    assert (settings.ship_without_imei, settings.accept_orders) == expected


def test_single_store_values(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_from(
        monkeypatch,
        SHOPIFY_SHOP="acme-refurb",
        SHOPIFY_ACCESS_TOKEN="shpat_hush1",
        BACKMARKET_API_TOKEN="bm_hush2",
        SHOPIFY_BM_ENCRYPTION_KEY="k1,k2",
        SHOPIFY_BM_NOTE_ATTRIBUTE="bm_order",
        SHOPIFY_BM_TAG_PREFIX="BackMarket:",
        SHOPIFY_BM_WEBHOOK_MAX_BYTES="1024",
        PORT="9000",
    )

    assert settings.shopify_access_token is not None
    assert settings.shopify_access_token.get_secret_value() == "shpat_hush1"
    assert settings.backmarket_api_token is not None
    assert settings.backmarket_api_token.get_secret_value() == "bm_hush2"
    assert settings.encryption_key is not None
    assert settings.encryption_key.get_secret_value() == "k1,k2"
    assert (settings.backmarket_note_attribute, settings.backmarket_tag_prefix) == (
        "bm_order",
        "BackMarket:",
    )
    assert (settings.webhook_max_bytes, settings.port) == (1024, 9000)
    assert "hush" not in repr(settings)


@pytest.mark.parametrize(
    "environment",
    [
        {"SHOPIFY_BM_WEBHOOK_MAX_BYTES": "0"},
        {"SHOPIFY_BM_WORKER_POLL_SECONDS": "-1"},
        {"PORT": "eighty"},
        {"SHOPIFY_BM_SHIP_WITHOUT_IMEI": "maybe"},
    ],
)
def test_invalid_values_are_refused(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str]
) -> None:
    with pytest.raises(ValidationError):
        settings_from(monkeypatch, **environment)
