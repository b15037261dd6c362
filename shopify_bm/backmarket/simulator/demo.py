"""A small seller account with one order of each shape the exporter meets, for `make demo`."""

from __future__ import annotations

from decimal import Decimal

from shopify_bm.backmarket.simulator.orders import LineSeed, OrderState
from shopify_bm.backmarket.simulator.state import BackMarketSimulator

DEMO_TOKEN = "demo-token"  # noqa: S105  a public demo value, not a secret
IPHONE_13 = LineSeed(sku="IP13-128-BLK-A", product="iPhone 13 128 Go - Noir - Débloqué")
GALAXY_S21 = LineSeed(
    sku="GS21-128-GRY-B",
    product="Galaxy S21 5G 128 Go - Gris - Débloqué",
    brand="Samsung",
    unit_price=Decimal("299.00"),
    condition=11,
)


def seed_demo(simulator: BackMarketSimulator) -> None:
    """Add the `DEMO_TOKEN` seller and its orders 81000001-81000006."""
    simulator.add_seller(DEMO_TOKEN)
    pair = IPHONE_13.model_copy(update={"quantity": 2})
    orders: list[tuple[int, list[LineSeed], OrderState]] = [
        (81000001, [IPHONE_13], 1),  # paid: accept, then ship with the IMEI inline
        (81000002, [IPHONE_13], 3),  # accepted in the Back Office: ship with the IMEI inline
        (81000003, [IPHONE_13, GALAXY_S21], 3),  # two lines: ship, then PATCH each line
        (81000004, [pair], 3),  # quantity 2: Back Market cannot take its IMEIs
        (81000005, [GALAXY_S21], 9),  # already shipped: the export has nothing to do
        (81000006, [IPHONE_13], 0),  # fraud check pending: must not ship, not listed
    ]
    for order_id, lines, state in orders:
        simulator.add_order(DEMO_TOKEN, order_id, lines, state=state)
