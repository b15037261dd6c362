"""Shopify's carrier name (`tracking_company`) to Back Market's shipper name. Pure data and lookup.

Back Market's order update takes a free string but recognises the names of its `Shipper` enum
(reference §5), so we send an enum name, or "Other" when we cannot tell.
"""

from __future__ import annotations

import unicodedata

OTHER = "Other"

# Back Market's `Shipper` enum (S1, api.backmarket.dev, v0.1.1), minus its duplicate
# "DHL  EXPRESS". A carrier already named like one of these maps to it.
BACKMARKET_SHIPPERS: tuple[str, ...] = (
    "Allied Express",
    "Aramex Australia",
    "Australia Post",
    "Australia Post Express",
    "Austrian Post",
    "BPost",
    "BRT",
    "Chronopost",
    "Chronopost Express",
    "ColisPrivé",
    "Colissimo",
    "Correos",
    "Correos Express",
    "Couriers Please",
    "CTT",
    "Cubyn",
    "Cubyn Express",
    "DB Schenker",
    "Deutsche Post",
    "DHL",
    "DHL DE",
    "DHL Express",
    "DHL NL",
    "DHL Parcel Spain",
    "DHL SP",
    "DPD",
    "DPD Benelux",
    "DPD DE",
    "DPD FR",
    "DPD International",
    "DPD UK",
    "DPD UK Express",
    "DTDC Australia",
    "FedEx",
    "FedEx - 2Days",
    "FedEx Express",
    "FedEx International",
    "FedEx - Overnight",
    "Geodis",
    "Girard Agediss - Livraison dans la pièce de votre choix sur RDV",
    "GLS",
    "GLS - DE",
    "GLS - FR",
    "GLS International",
    "GLS - IT",
    "GLS-SPAIN",
    "GLS Spain Express",
    "Hermes - DE",
    "Hermes - UK",
    "Japan Post",
    "Livraison au pied du camion",
    "Livraison dans la pièce de votre choix",
    "Logoix",
    "MRW",
    "Murfy transporteur",
    "NACEX",
    "ParcelForce Express",
    "Parcelforce (Worldwide)",
    "Parcelpoint Pty Ltd",
    "Poste Italiane",
    "Post NL",
    "Private Transporter",
    "Royal Mail",
    "Royal Mail Express",
    "Sagawa",
    "Seino",
    "Sendle",
    "Seur",
    "Socolissimo",
    "Star Track Express",
    "TIPSA",
    "TIPSA Express",
    "TNT",
    "TNT Australia",
    "TNT Express",
    "Tourline",
    "UPS",
    "UPS 2 days",
    "UPS 2nd Day Air",
    "UPS Express",
    "UPS express save",
    "UPS Ground",
    "UPS next day",
    "UPS Overnight",
    "UPS standard",
    "USPS",
    "USPS Express",
    "USPS - First Class",
    "USPS - Priority Mail",
    "USPS - Priority Mail Express",
    "VIR",
    "Yamato",
    "Zeleris",
    OTHER,
)

# Shopify's names (its carrier list, with the "(EN)"/"(JA)" variants) and common spellings that
# differ from Back Market's. Keys are compared after `_key`, so case, accents and spacing do not
# matter here.
ALIASES: dict[str, str] = {
    # France
    "La Poste": "Colissimo",  # Shopify's name for Colissimo parcels
    "La Poste Colissimo": "Colissimo",
    "Colis Privé": "ColisPrivé",
    "Socolissimo": "Colissimo",  # the former name
    "DPD France": "DPD FR",
    "GLS France": "GLS - FR",
    # United Kingdom
    "DPD Local": "DPD UK",  # DPD's UK consumer brand
    "Evri": "Hermes - UK",  # Hermes UK renamed itself Evri in 2022
    "Hermes": "Hermes - UK",
    "Hermes UK": "Hermes - UK",
    "Parcelforce": "Parcelforce (Worldwide)",
    "Parcelforce Worldwide": "Parcelforce (Worldwide)",
    # Germany, Austria, Benelux
    "DHL Paket": "DHL DE",
    "DHL Germany": "DHL DE",
    "DHL Parcel NL": "DHL NL",
    "DHL Parcel": "DHL",
    "DHL eCommerce": "DHL",
    "DHL eCommerce Asia": "DHL",
    "DPD Germany": "DPD DE",
    "GLS Germany": "GLS - DE",
    "Hermes Germany": "Hermes - DE",
    "Hermes DE": "Hermes - DE",
    "Österreichische Post": "Austrian Post",
    "Post AT": "Austrian Post",
    "PostNL": "Post NL",
    "PostNL International": "Post NL",
    "PostNL International Mail": "Post NL",
    "bpost": "BPost",
    "BPost International": "BPost",
    # Italy, Spain, Portugal
    "Bartolini": "BRT",
    "GLS Italy": "GLS - IT",
    "GLS Spain": "GLS-SPAIN",
    "DHL Spain": "DHL Parcel Spain",
    "CTT Express": "CTT",
    "CTT Portugal": "CTT",
    # United States
    "FedEx Ground": "FedEx",
    "UPS Mail Innovations": "UPS",
    "UPS SurePost": "UPS",
    # Japan, Australia
    "Japan Post (EN)": "Japan Post",
    "Japan Post (JA)": "Japan Post",
    "Yamato (EN)": "Yamato",
    "Yamato (JA)": "Yamato",
    "Yamato Transport": "Yamato",
    "Sagawa (EN)": "Sagawa",
    "Sagawa (JA)": "Sagawa",
    "StarTrack": "Star Track Express",
    "StarTrack Express": "Star Track Express",
    "CouriersPlease": "Couriers Please",
    "Aramex AU": "Aramex Australia",
}


def _key(name: str) -> str:
    """Case-, accent- and punctuation-blind form: "DHL  eCommerce" and "dhl-ecommerce" match."""
    decomposed = unicodedata.normalize("NFKD", name)
    return "".join(char for char in decomposed.casefold() if char.isascii() and char.isalnum())


_LOOKUP: dict[str, str] = {_key(name): name for name in BACKMARKET_SHIPPERS} | {
    _key(alias): shipper for alias, shipper in ALIASES.items()
}


def shipper_for(tracking_company: str | None) -> str:
    """Back Market's shipper name for a Shopify carrier name; "Other" when unknown or empty."""
    if not tracking_company:
        return OTHER
    return _LOOKUP.get(_key(tracking_company), OTHER)
