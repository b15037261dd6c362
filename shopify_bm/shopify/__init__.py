"""Everything that speaks Shopify: webhook payloads and verification, auth, the Admin API."""
