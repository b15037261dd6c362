"""`/_sim/...`: the control API, so another process can seed, break and observe the simulator.

No authentication: the simulator only ever listens on a test machine. Bodies are validated with
the same models as the Python API; a bad body is a 400 naming the field.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from shopify_bm.backmarket.simulator.faults import Faults, RateLimit
from shopify_bm.backmarket.simulator.orders import OrderSeed
from shopify_bm.backmarket.simulator.state import BackMarketSimulator, SeedError

_ROUTES = Map(
    [
        Rule("/_sim/stats", endpoint="stats", methods=["GET"]),
        Rule("/_sim/requests", endpoint="requests", methods=["GET"]),
        Rule("/_sim/orders", endpoint="add_orders", methods=["POST"]),
        Rule("/_sim/orders/<int:order_id>", endpoint="order", methods=["GET"]),
        Rule("/_sim/sellers", endpoint="add_seller", methods=["POST"]),
        Rule("/_sim/faults", endpoint="set_faults", methods=["POST"]),
        Rule("/_sim/burst", endpoint="force_429", methods=["POST"]),
        Rule("/_sim/rate-limit", endpoint="rate_limit", methods=["GET", "POST"]),
        Rule("/_sim/reset", endpoint="reset", methods=["POST"]),
    ]
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SellerBody(_Strict):
    """`POST /_sim/sellers`."""

    token: str = Field(min_length=1)


class OrdersBody(_Strict):
    """`POST /_sim/orders`."""

    orders: list[OrderSeed]


class FaultsBody(_Strict):
    """`POST /_sim/faults`: `faults` null clears them (globally, or the seller's override)."""

    seller: str | None = None
    faults: Faults | None = None


class BurstBody(_Strict):
    """`POST /_sim/burst`: answer the next `count` requests with 429."""

    count: int = Field(ge=0)
    seller: str | None = None


class ControlApi:
    """Routes `/_sim/...` requests to the simulator's Python API."""

    def __init__(self, simulator: BackMarketSimulator) -> None:
        self.simulator = simulator

    def __call__(self, request: Request) -> Response:
        """Answer one control request."""
        try:
            endpoint, args = _ROUTES.bind_to_environ(request.environ).match()
            status, payload = getattr(self, f"_{endpoint}")(request, **args)
        except ValidationError as error:
            status, payload = 400, {"error": str(error)}
        except SeedError as error:
            status, payload = 409, {"error": str(error)}
        except HTTPException as error:
            status, payload = error.code or 400, {"error": error.name}
        return Response(json.dumps(payload), status, content_type="application/json")

    def _stats(self, request: Request) -> tuple[int, Any]:
        return 200, self.simulator.stats().as_json()

    def _requests(self, request: Request) -> tuple[int, Any]:
        since = request.args.get("since", 0, type=int)
        limit = request.args.get("limit", None, type=int)
        records = self.simulator.requests(since, limit)
        last = records[-1].seq if records else since
        return 200, {"requests": [record.as_json() for record in records], "last_seq": last}

    def _add_orders(self, request: Request) -> tuple[int, Any]:
        body = OrdersBody.model_validate_json(request.get_data())
        orders = self.simulator.add_orders(body.orders)
        created = [
            {
                "order_id": order["order_id"],
                "orderline_ids": [line["id"] for line in order["orderlines"]],
            }
            for order in orders
        ]
        return 201, {"orders": created}

    def _order(self, request: Request, order_id: int) -> tuple[int, Any]:
        order = self.simulator.order(order_id)
        return (200, order) if order else (404, {"error": f"no order {order_id}"})

    def _add_seller(self, request: Request) -> tuple[int, Any]:
        body = SellerBody.model_validate_json(request.get_data())
        self.simulator.add_seller(body.token)
        return 201, {"token": body.token}

    def _set_faults(self, request: Request) -> tuple[int, Any]:
        body = FaultsBody.model_validate_json(request.get_data())
        self.simulator.set_faults(body.faults, body.seller)
        return 200, body.model_dump(mode="json")

    def _force_429(self, request: Request) -> tuple[int, Any]:
        body = BurstBody.model_validate_json(request.get_data())
        self.simulator.force_429(body.count, body.seller)
        return 200, body.model_dump(mode="json")

    def _rate_limit(self, request: Request) -> tuple[int, Any]:
        if request.method == "POST":
            self.simulator.set_rate_limit(RateLimit.model_validate_json(request.get_data()))
        return 200, self.simulator.rate_limit.model_dump(mode="json")

    def _reset(self, request: Request) -> tuple[int, Any]:
        self.simulator.reset()
        return 200, {"reset": True}
