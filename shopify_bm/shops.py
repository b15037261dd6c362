"""Shops: seeding the single store from the environment, and each shop's export settings."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from shopify_bm.exports import ExportPolicy
from shopify_bm.models import Shop
from shopify_bm.settings import Settings


def seed_single_store(session: Session, settings: Settings) -> Shop:
    """Create or update the one shop of single-store mode from the environment."""
    assert settings.shopify_shop is not None, "single-store mode needs SHOPIFY_SHOP"
    shop = session.execute(
        select(Shop).where(Shop.domain == settings.shopify_shop)
    ).scalar_one_or_none()
    if shop is None:
        shop = Shop(domain=settings.shopify_shop)
        session.add(shop)
    shop.installed = True
    if settings.shopify_access_token is not None:
        shop.access_token = settings.shopify_access_token.get_secret_value()
    if settings.backmarket_api_token is not None:
        shop.backmarket_token = settings.backmarket_api_token.get_secret_value()
    shop.backmarket_url = settings.backmarket_base_url
    shop.backmarket_locale = settings.backmarket_locale
    shop.backmarket_company = settings.backmarket_company
    shop.backmarket_contact_email = settings.backmarket_contact_email
    shop.ship_without_imei = settings.ship_without_imei
    shop.exempt_skus = list(settings.exempt_skus)
    shop.accept_orders = settings.accept_orders
    shop.note_attribute = settings.backmarket_note_attribute
    shop.tag_prefix = settings.backmarket_tag_prefix
    session.flush()
    return shop


def policy_of(shop: Shop) -> ExportPolicy:
    """The shop's export settings as the pure decision code takes them."""
    return ExportPolicy(
        ship_without_imei=shop.ship_without_imei,
        exempt_skus=frozenset(str(s) for s in shop.exempt_skus or ()),
        accept_orders=shop.accept_orders,
        note_attribute=shop.note_attribute,
        tag_prefix=shop.tag_prefix,
    )
