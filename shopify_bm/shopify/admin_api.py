"""Admin GraphQL: read one order, returned in the REST shape that webhooks deliver.

Calls go through Shopify's package (`shopify_app.admin_graphql_request`) with its in-process
retries off: a throttled or failing call raises a transient error and the export queue retries
it as a row, like every other retry. Only order data is queried (protected customer data level
1): no names, addresses, emails or phone numbers.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
from shopify_app import GQLResult
from shopify_app.graphql import admin_graphql_request

from shopify_bm.shopify.auth import open_client, shop_name
from shopify_bm.shopify.errors import (
    ShopifyAccessDeniedError,
    ShopifyApiError,
    ShopifyOrderNotFoundError,
    ShopifyQueryError,
    ShopifyThrottledError,
    ShopifyTokenError,
    ShopifyUnavailableError,
)

_LINE_FIELDS = """
fragment LineFields on LineItem {
  id sku name title quantity currentQuantity unfulfilledQuantity
  variant { legacyResourceId }
}
"""
# Requested cost stays near 560 points, under the 1000-point ceiling of a single query: 50
# lines per page, 10 fulfillments of up to 20 lines and 3 tracking entries each.
ORDER_QUERY = (
    """
query OrderForExport($id: ID!) {
  order(id: $id) {
    id legacyResourceId name tags updatedAt cancelledAt displayFulfillmentStatus
    customAttributes { key value }
    lineItems(first: 50) { pageInfo { hasNextPage endCursor } nodes { ...LineFields } }
    fulfillments(first: 10) {
      id legacyResourceId status createdAt updatedAt
      trackingInfo(first: 3) { company number url }
      fulfillmentLineItems(first: 20) { nodes { quantity lineItem { id sku } } }
    }
  }
}
"""
    + _LINE_FIELDS
)
LINE_ITEMS_QUERY = (
    """
query OrderLineItems($id: ID!, $after: String!) {
  order(id: $id) {
    lineItems(first: 50, after: $after) {
      pageInfo { hasNextPage endCursor } nodes { ...LineFields }
    }
  }
}
"""
    + _LINE_FIELDS
)
_MAX_LINE_PAGES = 20  # 1000 lines: far beyond any real order
# REST's order-level fulfillment_status for GraphQL's displayFulfillmentStatus.
_ORDER_FULFILLMENT_STATUS = {
    "FULFILLED": "fulfilled",
    "PARTIALLY_FULFILLED": "partial",
    "RESTOCKED": "restocked",
}


def order_gid(order_gid_or_id: str | int) -> str:
    """`gid://shopify/Order/<id>` from a global id, a numeric id, or its string."""
    text = str(order_gid_or_id).strip()
    if text.startswith("gid://shopify/Order/") and text.rsplit("/", 1)[1].isdigit():
        return text
    if text.isascii() and text.isdigit():
        return f"gid://shopify/Order/{text}"
    raise ValueError(f"not a Shopify order id: {order_gid_or_id!r}")


def fetch_order(
    shop_domain: str,
    access_token: str,
    order_gid_or_id: str | int,
    api_version: str,
    *,
    http_client: httpx.Client | None = None,
) -> dict[str, Any]:
    """The order as `orders/*` webhooks send it (what `payloads.Order` validates).

    Raises `ShopifyTokenError` (401: the token is revoked or expired), `ShopifyThrottledError` and
    `ShopifyUnavailableError` (transient), `ShopifyAccessDeniedError`, `ShopifyQueryError` or
    `ShopifyOrderNotFoundError`.
    """
    gid = order_gid(order_gid_or_id)
    with open_client(http_client) as client:

        def query(text: str, variables: dict[str, Any]) -> dict[str, Any]:
            result = admin_graphql_request(
                text,
                shop=shop_name(shop_domain),
                access_token=access_token,
                api_version=api_version,
                variables=variables,
                max_retries=0,
                http_client=client,
            )
            return _order_data(result, gid)

        order = query(ORDER_QUERY, {"id": gid})
        lines = list(order["lineItems"]["nodes"])
        page = order["lineItems"]["pageInfo"]
        for _ in range(_MAX_LINE_PAGES):
            if not page.get("hasNextPage"):
                break
            more = query(LINE_ITEMS_QUERY, {"id": gid, "after": page["endCursor"]})
            lines += more["lineItems"]["nodes"]
            page = more["lineItems"]["pageInfo"]
    return rest_order(order, lines)


def rest_order(order: dict[str, Any], lines: list[dict[str, Any]]) -> dict[str, Any]:
    """Map a GraphQL order (and all its line nodes) to the REST webhook shape. Pure."""
    return {
        "id": int(order["legacyResourceId"]),
        "admin_graphql_api_id": order["id"],
        "name": order.get("name"),
        "updated_at": order.get("updatedAt"),
        "cancelled_at": order.get("cancelledAt"),
        "fulfillment_status": _ORDER_FULFILLMENT_STATUS.get(
            order.get("displayFulfillmentStatus") or ""
        ),
        "tags": ", ".join(order.get("tags") or []),
        "note_attributes": [
            {"name": a["key"], "value": a.get("value")} for a in order.get("customAttributes") or []
        ],
        "line_items": [_rest_line(line) for line in lines],
        "fulfillments": [
            _rest_fulfillment(f, int(order["legacyResourceId"]))
            for f in order.get("fulfillments") or []
        ],
    }


def _rest_line(line: dict[str, Any]) -> dict[str, Any]:
    current = line.get("currentQuantity")
    unfulfilled = line.get("unfulfilledQuantity")
    status = None
    if current and unfulfilled is not None:
        status = "fulfilled" if unfulfilled == 0 else "partial" if unfulfilled < current else None
    variant = line.get("variant") or {}
    return {
        "id": legacy_id(line["id"]),
        "admin_graphql_api_id": line["id"],
        "sku": line.get("sku"),
        "name": line.get("name"),
        "title": line.get("title"),
        "quantity": line.get("quantity") or 0,
        "current_quantity": current,
        "fulfillable_quantity": unfulfilled,
        "fulfillment_status": status,
        "variant_id": int(variant["legacyResourceId"]) if variant.get("legacyResourceId") else None,
    }


def _rest_fulfillment(fulfillment: dict[str, Any], order_id: int) -> dict[str, Any]:
    tracking = fulfillment.get("trackingInfo") or []
    numbers = [t["number"] for t in tracking if t.get("number")]
    urls = [t["url"] for t in tracking if t.get("url")]
    companies = [t["company"] for t in tracking if t.get("company")]
    return {
        "id": int(fulfillment["legacyResourceId"]),
        "admin_graphql_api_id": fulfillment["id"],
        "order_id": order_id,
        "status": (fulfillment.get("status") or "").lower() or None,
        "created_at": fulfillment.get("createdAt"),
        "updated_at": fulfillment.get("updatedAt"),
        "tracking_company": companies[0] if companies else None,
        "tracking_number": numbers[0] if numbers else None,
        "tracking_numbers": numbers,
        "tracking_url": urls[0] if urls else None,
        "tracking_urls": urls,
        "line_items": [
            {
                "id": legacy_id(node["lineItem"]["id"]),
                "quantity": node.get("quantity") or 0,
                "sku": node["lineItem"].get("sku"),
            }
            for node in (fulfillment.get("fulfillmentLineItems") or {}).get("nodes") or []
            if node.get("lineItem")
        ],
    }


def legacy_id(gid: str) -> int:
    """The numeric id in `gid://shopify/LineItem/123` (REST ids are these numbers)."""
    return int(gid.rsplit("/", 1)[-1].split("?", 1)[0])


def _order_data(result: GQLResult, gid: str) -> dict[str, Any]:
    """The `order` object of a successful answer, or the typed error the answer means."""
    if result.ok:
        order = (result.data or {}).get("order")
        if not isinstance(order, dict):
            raise ShopifyOrderNotFoundError(f"Shopify has no order {gid}", code="not_found")
        return order
    raise _error(result)


def _error(result: GQLResult) -> ShopifyApiError:  # noqa: PLR0911 (one answer per case)
    code = result.log.code
    response = result.http_logs[-1].res if result.http_logs else result.response
    if code == "unauthorized":
        return ShopifyTokenError(
            "Shopify rejected the access token (revoked, expired or the app was uninstalled)",
            code=code,
        )
    if code == "rate_limited" or response.status == 429:
        return ShopifyThrottledError(
            "Shopify's API rate limit was reached",
            code=code,
            retry_after=_retry_after(
                {k.lower(): v for k, v in response.headers.items()}.get("retry-after")
            ),
        )
    if code == "network_error":
        return ShopifyUnavailableError("Shopify could not be reached", code=code)
    if response.status >= 500 or response.status in (402, 423):
        # 402: the shop is frozen (unpaid); 423: locked. Both clear up without us.
        return ShopifyUnavailableError(f"Shopify answered HTTP {response.status}", code=code)
    if response.status == 403:
        return ShopifyAccessDeniedError(
            "the app lacks the read_orders scope or protected-data access", code=code
        )
    if code == "graphql_errors":
        return _graphql_error(response.body)
    return ShopifyQueryError(f"Shopify refused the query (HTTP {response.status})", code=code)


def _graphql_error(body: str) -> ShopifyApiError:
    try:
        answer = json.loads(body)
    except ValueError:
        answer = {}
    errors = answer.get("errors") if isinstance(answer, dict) else None
    errors = errors if isinstance(errors, list) else []
    errors = [e for e in errors if isinstance(e, dict)]
    codes = {str((e.get("extensions") or {}).get("code", "")) for e in errors}
    messages = [str(e.get("message", "")) for e in errors]
    if "THROTTLED" in codes or any(m.lower() == "throttled" for m in messages):
        return ShopifyThrottledError(
            "Shopify's GraphQL cost limit was reached",
            code="THROTTLED",
            retry_after=_throttle_wait(answer),
        )
    if "ACCESS_DENIED" in codes:
        return ShopifyAccessDeniedError(
            "access denied: " + "; ".join(messages)[:300], code="ACCESS_DENIED"
        )
    return ShopifyQueryError("GraphQL errors: " + "; ".join(messages)[:300], code="graphql_errors")


def _throttle_wait(answer: dict[str, Any]) -> float | None:
    """Seconds until the bucket holds the requested cost again (from `extensions.cost`)."""
    try:
        cost = answer["extensions"]["cost"]
        status = cost["throttleStatus"]
        missing = float(cost["requestedQueryCost"]) - float(status["currentlyAvailable"])
        return max(missing, 0.0) / float(status["restoreRate"])
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None


def _retry_after(value: str | None) -> float | None:
    try:
        return max(float(value), 0.0) if value else None
    except ValueError:
        return None
