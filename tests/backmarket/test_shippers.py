"""Shopify's carrier names to Back Market's shipper names."""

from __future__ import annotations

import pytest

from shopify_bm.backmarket.shippers import ALIASES, BACKMARKET_SHIPPERS, shipper_for


@pytest.mark.parametrize(
    ("tracking_company", "expected"),
    [
        # Shopify's names, as in `tracking_company`
        ("UPS", "UPS"),
        ("USPS", "USPS"),
        ("FedEx", "FedEx"),
        ("DHL Express", "DHL Express"),
        ("DHL eCommerce", "DHL"),
        ("DHL eCommerce Asia", "DHL"),
        ("DPD", "DPD"),
        ("DPD UK", "DPD UK"),
        ("DPD Local", "DPD UK"),
        ("GLS", "GLS"),
        ("Royal Mail", "Royal Mail"),
        ("Colissimo", "Colissimo"),
        ("La Poste", "Colissimo"),
        ("Chronopost", "Chronopost"),
        ("Poste Italiane", "Poste Italiane"),
        ("Correos", "Correos"),
        ("Correos Express", "Correos Express"),
        ("PostNL", "Post NL"),
        ("Bpost", "BPost"),
        ("BPost International", "BPost"),
        ("Hermes", "Hermes - UK"),
        ("Evri", "Hermes - UK"),
        ("Australia Post", "Australia Post"),
        ("StarTrack", "Star Track Express"),
        ("Sendle", "Sendle"),
        ("Japan Post (EN)", "Japan Post"),
        ("Japan Post (JA)", "Japan Post"),
        ("Yamato (EN)", "Yamato"),
        ("Sagawa (JA)", "Sagawa"),
        ("Deutsche Post", "Deutsche Post"),
        ("CTT Express", "CTT"),
        ("TNT", "TNT"),
        ("Parcelforce", "Parcelforce (Worldwide)"),
        ("Colis Privé", "ColisPrivé"),
        ("Other", "Other"),
        # case, accents and spacing do not matter
        ("ups", "UPS"),
        ("  dhl   express ", "DHL Express"),
        ("DHL-Express", "DHL Express"),
        ("fedex", "FedEx"),
        ("Post NL", "Post NL"),
        ("colis prive", "ColisPrivé"),
        ("ROYAL MAIL", "Royal Mail"),
        ("gls-spain", "GLS-SPAIN"),
        # already one of Back Market's names
        ("Royal Mail Express", "Royal Mail Express"),
        ("UPS Ground", "UPS Ground"),
        ("USPS - Priority Mail", "USPS - Priority Mail"),
        # unknown or empty
        ("Canada Post", "Other"),
        ("Mondial Relay", "Other"),
        ("My Own Van", "Other"),
        ("", "Other"),
        ("   ", "Other"),
        ("-", "Other"),
        (None, "Other"),
    ],
)
def test_shipper_for(tracking_company: str | None, expected: str) -> None:
    assert shipper_for(tracking_company) == expected


def test_every_alias_leads_to_one_of_back_markets_names() -> None:
    assert set(ALIASES.values()) <= set(BACKMARKET_SHIPPERS)


def test_back_markets_names_map_to_themselves_unless_renamed() -> None:
    renamed = {"Socolissimo": "Colissimo"}
    for name in BACKMARKET_SHIPPERS:
        assert shipper_for(name) == renamed.get(name, name)
