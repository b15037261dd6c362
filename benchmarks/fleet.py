"""A fleet of shops with pending exports, for the drain, many-workers and memory benchmarks.

Shops, order snapshots and export jobs go straight into the database (as webhooks would have
left them); the matching Back Market orders go into the simulator through its control API. Each
order is one phone with its own valid IMEI, already accepted at Back Market, so an export is a
GET and a ship POST.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import insert, select, text

from benchmarks.harness import BIN, KEY, ROOT, Database
from benchmarks.loadgen import imei
from shopify_bm.crypto import keyring
from shopify_bm.models import ExportJob, Order, Shop

FIRST_ORDER = 6_000_000_000_000
FIRST_BM_ORDER = 70_000_000


def shop_token(index: int) -> str:
    return f"YmVuY2gtc2hvcDpCTVQtYmVuY2g-{index:03d}"


def shop_domain(index: int) -> str:
    return f"bench-{index:03d}.myshopify.com"


@dataclass(frozen=True)
class Fleet:
    """What was seeded: shops' tokens and, per shop, its Back Market order ids."""

    tokens: list[str]
    orders_by_token: dict[str, list[int]]

    @property
    def total(self) -> int:
        return sum(len(ids) for ids in self.orders_by_token.values())


def migrate(env: dict[str, str]) -> None:
    subprocess.run(
        [str(BIN / "shopify-bm"), "migrate"], env=env, cwd=ROOT, check=True, capture_output=True
    )


def snapshot(order_id: int, bm_id: int, phone: str) -> dict[str, Any]:
    """The order snapshot ingestion keeps: one fulfilled line with its IMEI tag and tracking."""
    line_id = order_id * 10
    return {
        "id": order_id,
        "name": f"#{order_id % 10_000_000}",
        "updated_at": "2026-03-10T15:00:00+00:00",
        "fulfillment_status": "fulfilled",
        "tags": f"BM, PHONE-A:IMEI{phone}",
        "note_attributes": [{"name": "backmarket_order_id", "value": str(bm_id)}],
        "line_items": [
            {
                "id": line_id,
                "sku": "PHONE-A",
                "quantity": 1,
                "current_quantity": 1,
                "fulfillment_status": "fulfilled",
                "title": "iPhone 13",
            }
        ],
        "fulfillments": [
            {
                "id": order_id + 1,
                "order_id": order_id,
                "status": "success",
                "created_at": "2026-03-10T15:00:00+00:00",
                "tracking_company": "Colissimo",
                "tracking_number": f"6A{order_id % 10**11:011d}",
                "line_items": [{"id": line_id, "quantity": 1}],
            }
        ],
    }


def seed_shops(db: Database, simulator_url: str, shops: int) -> tuple[list[str], list[int]]:
    """Install `shops` shops (tokens open seller accounts in the simulator); returns tokens, ids."""
    keyring.configure(KEY)  # Shop tokens are encrypted with the key the workers use
    now = datetime.now(UTC)
    tokens = [shop_token(i) for i in range(shops)]
    with httpx.Client(base_url=simulator_url, timeout=60) as http:
        for token in tokens:
            http.post("/_sim/sellers", json={"token": token}).raise_for_status()
    shop_ids = []
    with db.engine.begin() as connection:
        existing = dict(connection.execute(select(Shop.domain, Shop.id)).tuples().all())
        for index, token in enumerate(tokens):
            if shop_domain(index) not in existing:
                existing[shop_domain(index)] = connection.execute(
                    insert(Shop)
                    .values(
                        domain=shop_domain(index),
                        name=f"Bench {index}",
                        installed=True,
                        backmarket_token=token,
                        backmarket_url=simulator_url,
                        backmarket_locale="fr-fr",
                        backmarket_company=f"Bench{index}",
                        backmarket_contact_email="bench@example.com",
                        ship_without_imei=False,
                        exempt_skus=[],
                        accept_orders=True,
                        note_attribute="backmarket_order_id",
                        tag_prefix="BM:",
                        created_at=now,
                        updated_at=now,
                    )
                    .returning(Shop.id)
                ).scalar_one()
            shop_ids.append(existing[shop_domain(index)])
    return tokens, shop_ids


def seed_backmarket_orders(
    simulator_url: str, sellers: list[str], first: int = FIRST_BM_ORDER
) -> None:
    """One accepted single-phone order per entry: Back Market order `first + n` of sellers[n]."""
    seeds = [
        {
            "seller": seller,
            "order_id": first + n,
            "state": 3,
            "lines": [{"sku": "PHONE-A", "quantity": 1}],
        }
        for n, seller in enumerate(sellers)
        if seller
    ]
    with httpx.Client(base_url=simulator_url, timeout=120) as http:
        for start in range(0, len(seeds), 2000):
            batch = {"orders": seeds[start : start + 2000]}
            http.post("/_sim/orders", json=batch).raise_for_status()


def seed(db: Database, simulator_url: str, shops: int, per_shop: int) -> Fleet:
    """Seed `shops` shops with `per_shop` pending exports each, interleaved as real traffic is."""
    tokens, shop_ids = seed_shops(db, simulator_url, shops)
    now = datetime.now(UTC)
    orders_by_token: dict[str, list[int]] = {t: [] for t in tokens}
    orders, jobs, sellers = [], [], []
    for n in range(shops * per_shop):
        index = n % shops
        order_id, bm_id = FIRST_ORDER + n, FIRST_BM_ORDER + n
        name = f"#{order_id % 10_000_000}"
        orders.append(
            {
                "shop_id": shop_ids[index],
                "shopify_order_id": order_id,
                "name": name,
                "backmarket_order_id": bm_id,
                "payload": snapshot(order_id, bm_id, imei(n)),
                "order_updated_at": now,
                "fulfillments": {},
                "updated_at": now,
            }
        )
        jobs.append(
            {
                "shop_id": shop_ids[index],
                "shopify_order_id": order_id,
                "order_name": name,
                "status": "pending",
                "run_after": now,
                "attempts": 0,
                "rerun": False,
                "problems": [],
                "accepted_skus": [],
                "imei_line_ids": [],
                "ship_without_imei": False,
                "allow_reused_imeis": False,
                "created_at": now,
                "updated_at": now,
            }
        )
        sellers.append(tokens[index])
        orders_by_token[tokens[index]].append(bm_id)
    with db.engine.begin() as connection:
        connection.execute(insert(Order), orders)
        connection.execute(insert(ExportJob), jobs)
    seed_backmarket_orders(simulator_url, sellers)
    return Fleet(tokens, orders_by_token)


def exported(db: Database) -> int:
    with db.engine.connect() as connection:
        return int(
            connection.execute(
                text("SELECT count(*) FROM export_jobs WHERE status = 'exported'")
            ).scalar_one()
        )


def statuses(db: Database) -> dict[str, int]:
    with db.engine.connect() as connection:
        rows = connection.execute(
            text("SELECT status, count(*) FROM export_jobs GROUP BY status")
        ).all()
    return {str(status): int(count) for status, count in rows}
