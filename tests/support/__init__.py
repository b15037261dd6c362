"""Builders shared by the tests: real-shaped Shopify payloads and signed deliveries."""
