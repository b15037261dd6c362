"""shopify-bm: tells Back Market that a Shopify order shipped, with one IMEI per phone."""

__version__ = "0.1.0"
