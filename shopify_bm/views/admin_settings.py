"""The settings form: what the merchant may change, checked before it touches the shop.

Validation messages never contain the submitted values (the token must not come back).
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shopify_bm.backmarket.client import user_agent
from shopify_bm.models import Shop
from shopify_bm.settings import BACKMARKET_URLS

_MAX_EXEMPT_SKUS = 200
_TOKEN_CHARS = re.compile(r"[\x21-\x7e]*")  # printable ASCII, no blanks
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class SettingsInput(BaseModel):
    """The JSON the settings form sends."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)

    backmarket_token: str = Field(default="", max_length=500)  # empty: keep the stored one
    clear_backmarket_token: bool = False
    contact_email: str = Field(default="", max_length=255)
    company: str = Field(default="", max_length=100)
    ship_without_imei: bool = False
    exempt_skus: list[str] = Field(default_factory=list)
    backmarket_url: str | None = None

    @field_validator("backmarket_token")
    @classmethod
    def _token(cls, value: str) -> str:
        if not _TOKEN_CHARS.fullmatch(value):
            raise ValueError("a Back Market token has no spaces or special characters")
        return value

    @field_validator("contact_email")
    @classmethod
    def _email(cls, value: str) -> str:
        if value:
            try:
                user_agent("shop", value)
            except ValueError:
                raise ValueError("not a usable email address") from None
        return value

    @field_validator("company")
    @classmethod
    def _company(cls, value: str) -> str:
        if _CONTROL.search(value):
            raise ValueError("the company name has control characters")
        return value

    @field_validator("exempt_skus", mode="before")
    @classmethod
    def _skus(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = re.split(r"[,\n]", value)
        if not isinstance(value, list):
            return value
        skus: dict[str, str] = {}
        for raw in value:
            sku = str(raw).strip()
            if not sku:
                continue
            if len(sku) > 100 or _CONTROL.search(sku):
                raise ValueError("a SKU has at most 100 characters and no control characters")
            skus.setdefault(sku.casefold(), sku)
        if len(skus) > _MAX_EXEMPT_SKUS:
            raise ValueError(f"at most {_MAX_EXEMPT_SKUS} exempt SKUs")
        return list(skus.values())


def allowed_urls(shop: Shop) -> set[str]:
    """Back Market's platforms, and the shop's current URL (possibly set in the environment)."""
    return {*BACKMARKET_URLS.values(), shop.backmarket_url}


def apply_settings(shop: Shop, form: SettingsInput) -> None:
    """Write the form onto the shop row (the caller holds the row lock and commits)."""
    if form.clear_backmarket_token:
        shop.backmarket_token = None
    elif form.backmarket_token:
        shop.backmarket_token = form.backmarket_token
    shop.backmarket_contact_email = form.contact_email or None
    shop.backmarket_company = form.company or None
    shop.ship_without_imei = form.ship_without_imei
    shop.exempt_skus = list(form.exempt_skus)
    if form.backmarket_url:
        shop.backmarket_url = form.backmarket_url
