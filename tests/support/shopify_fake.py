"""A fake Shopify over a real socket: the OAuth token endpoint and Admin GraphQL, plus signed
session tokens. The app's HTTP client reaches it through `LocalShopify`, a transport that sends
`https://{shop}.myshopify.com/...` to the fake (keeping the shop in the Host header)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
from flask import Flask, jsonify, request
from werkzeug.serving import make_server

from conftest import TEST_SECRET, TEST_SHOP

API_KEY = "test-client-id"  # make_settings' shopify_api_key
EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"


def session_token(
    shop: str = TEST_SHOP,
    *,
    secret: str = TEST_SECRET,
    audience: str = API_KEY,
    user: str = "42",
    issued: float | None = None,
    lifetime: int = 60,
    **claims: Any,
) -> str:
    """An App Bridge session token (ID token), HS256-signed as Shopify signs it."""
    now = int(issued if issued is not None else time.time())
    payload = {
        "iss": f"https://{shop}/admin",
        "dest": f"https://{shop}",
        "aud": audience,
        "sub": user,
        "exp": now + lifetime,
        "nbf": now,
        "iat": now,
        "jti": str(uuid.uuid4()),
        "sid": str(uuid.uuid4()),
    }
    payload.update(claims)
    return jwt.encode(payload, secret, algorithm="HS256")


@dataclass
class Reply:
    """A canned answer for the next request to an endpoint."""

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class FakeShopify:
    """State of the fake: issued tokens, orders, recorded requests, queued faults."""

    secret: str = TEST_SECRET
    access_token_ttl: int = 3600
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)  # gid -> GraphQL order
    token_requests: list[dict[str, Any]] = field(default_factory=list)
    graphql_requests: list[dict[str, Any]] = field(default_factory=list)
    token_faults: list[Reply] = field(default_factory=list)
    graphql_faults: list[Reply] = field(default_factory=list)
    valid_access_tokens: set[str] = field(default_factory=set)
    valid_refresh_tokens: set[str] = field(default_factory=set)
    refresh_delay: float = 0.0  # seconds the refresh endpoint takes (to expose races)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _serial: int = 0

    def issue(self) -> dict[str, Any]:
        """A new expiring offline token pair."""
        with self._lock:
            self._serial += 1
            access, refresh = f"shpat_fake_{self._serial:04d}", f"shprt_fake_{self._serial:04d}"
            self.valid_access_tokens.add(access)
            self.valid_refresh_tokens.add(refresh)
        return {
            "access_token": access,
            "scope": "read_orders",
            "expires_in": self.access_token_ttl,
            "refresh_token": refresh,
            "refresh_token_expires_in": 90 * 24 * 3600,
        }

    def app(self) -> Flask:
        """The fake's WSGI app."""
        app = Flask("fake_shopify")

        @app.post("/admin/oauth/access_token")
        def access_token() -> Any:
            body = request.get_json(force=True)
            self.token_requests.append({"host": request.host, **body})
            if self.token_faults:
                return _reply(self.token_faults.pop(0))
            if body.get("client_id") != API_KEY or body.get("client_secret") != self.secret:
                return jsonify(error="invalid_client"), 401
            if body.get("grant_type") == EXCHANGE_GRANT:
                try:
                    jwt.decode(
                        body.get("subject_token", ""),
                        self.secret,
                        algorithms=["HS256"],
                        audience=API_KEY,
                        leeway=10,
                    )
                except jwt.PyJWTError:
                    return jsonify(error="invalid_subject_token"), 400
                return jsonify(self.issue())
            if body.get("grant_type") == "refresh_token":
                time.sleep(self.refresh_delay)
                with self._lock:
                    known = body.get("refresh_token") in self.valid_refresh_tokens
                    # Each refresh rotates: the old refresh token is spent.
                    self.valid_refresh_tokens.discard(body.get("refresh_token"))
                if not known:
                    return jsonify(error="invalid_grant"), 400
                return jsonify(self.issue())
            return jsonify(error="unsupported_grant_type"), 400

        @app.post("/admin/api/<version>/graphql.json")
        def graphql(version: str) -> Any:
            body = request.get_json(force=True)
            token = request.headers.get("X-Shopify-Access-Token", "")
            self.graphql_requests.append(
                {"host": request.host, "version": version, "token": token, **body}
            )
            if self.graphql_faults:
                return _reply(self.graphql_faults.pop(0))
            if token not in self.valid_access_tokens:
                return jsonify(errors="[API] Invalid API key or access token"), 401
            return jsonify(self._answer(body["query"], body.get("variables") or {}))

        return app

    def _answer(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        order = self.orders.get(variables.get("id", ""))
        if order is None:
            return {"data": {"order": None}}
        nodes = order["lineItems"]["nodes"]
        start = int(variables.get("after") or 0)
        page = {
            "nodes": nodes[start : start + 50],
            "pageInfo": {
                "hasNextPage": start + 50 < len(nodes),
                "endCursor": str(start + 50),
            },
        }
        if "query OrderLineItems" in query:
            return {"data": {"order": {"lineItems": page}}}
        return {"data": {"order": {**order, "lineItems": page}}}


def _reply(reply: Reply) -> Any:
    return jsonify(reply.body), reply.status, reply.headers


class LocalShopify(httpx.BaseTransport):
    """Sends `https://*.myshopify.com` requests to the fake over a real socket."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Rewrite the URL to the fake; the Host header still names the shop."""
        assert request.url.scheme == "https"
        assert request.url.host.endswith(".myshopify.com")
        url = request.url.copy_with(scheme="http", host="127.0.0.1", port=self.port)
        local = httpx.Request(request.method, url, headers=request.headers, stream=request.stream)
        return self._inner.handle_request(local)

    def close(self) -> None:
        """Close pooled connections."""
        self._inner.close()


@dataclass
class RunningFake:
    """A started fake and an HTTP client that reaches it."""

    fake: FakeShopify
    port: int
    client: httpx.Client


@contextmanager
def running_fake(fake: FakeShopify | None = None) -> Iterator[RunningFake]:
    """Serve the fake on a free port in a thread, for the duration of the block."""
    fake = fake or FakeShopify()
    server = make_server("127.0.0.1", 0, fake.app(), threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    client = httpx.Client(transport=LocalShopify(server.port), timeout=10)
    try:
        yield RunningFake(fake, server.port, client)
    finally:
        client.close()
        server.shutdown()
        thread.join(timeout=5)


def graphql_order(
    order_id: int = 5_812_345_678_901,
    *,
    lines: list[tuple[str | None, int]] | None = None,
    tags: list[str] | None = None,
    backmarket_order_id: str | None = "48613270",
    fulfilled: bool = True,
    tracking: tuple[str, str, str] | None = ("Colissimo", "6A12345678901", "https://t.example/6A"),
) -> dict[str, Any]:
    """An order as the Admin GraphQL query returns it (all line nodes; the fake pages them)."""
    lines = lines if lines is not None else [("IP13-128-MID", 1)]
    nodes = [
        {
            "id": f"gid://shopify/LineItem/{order_id * 10 + i}",
            "sku": sku,
            "name": f"Phone {sku}",
            "title": f"Phone {sku}",
            "quantity": quantity,
            "currentQuantity": quantity,
            "unfulfilledQuantity": 0 if fulfilled else quantity,
            "variant": {"legacyResourceId": str(40_000_000_000 + i)},
        }
        for i, (sku, quantity) in enumerate(lines)
    ]
    fulfillments = []
    if fulfilled:
        fulfillments.append(
            {
                "id": f"gid://shopify/Fulfillment/{order_id + 7}",
                "legacyResourceId": str(order_id + 7),
                "status": "SUCCESS",
                "createdAt": "2026-03-10T15:00:00Z",
                "updatedAt": "2026-03-10T15:00:00Z",
                "trackingInfo": (
                    [{"company": tracking[0], "number": tracking[1], "url": tracking[2]}]
                    if tracking
                    else []
                ),
                "fulfillmentLineItems": {
                    "nodes": [
                        {"quantity": n["quantity"], "lineItem": {"id": n["id"], "sku": n["sku"]}}
                        for n in nodes[:20]
                    ]
                },
            }
        )
    return {
        "id": f"gid://shopify/Order/{order_id}",
        "legacyResourceId": str(order_id),
        "name": "#1042",
        "tags": tags if tags is not None else ["BackMarket", "IP13-128-MID:IMEI356938035643809"],
        "updatedAt": "2026-03-10T15:00:01Z",
        "cancelledAt": None,
        "displayFulfillmentStatus": "FULFILLED" if fulfilled else "UNFULFILLED",
        "customAttributes": (
            [{"key": "backmarket_order_id", "value": backmarket_order_id}]
            if backmarket_order_id
            else []
        ),
        "lineItems": {"nodes": nodes},
        "fulfillments": fulfillments,
    }
