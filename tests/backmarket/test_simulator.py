"""The Back Market simulator, driven over real sockets the way the client and benchmarks use it."""

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from stdnum import luhn

from shopify_bm.backmarket.simulator import (
    DEMO_TOKEN,
    BackMarketSimulator,
    Faults,
    LineSeed,
    RateLimit,
    SeedError,
    SimulatorServer,
    is_valid_imei,
)

SELLER = "token-seller-a"
OTHER_SELLER = "token-seller-b"
USER_AGENT = "BM-Acme-shopify-bm;ops@acme.example"
IMEI = "356938035643809"
OTHER_IMEI = "011415009346880"
DISCONNECTED = (httpx.RemoteProtocolError, httpx.ReadError)


def headers(token: str = SELLER) -> dict[str, str]:
    return {
        "Authorization": f"Basic {token}",
        "User-Agent": USER_AGENT,
        "Accept-Language": "fr-fr",
        "Accept": "application/json",
    }


@pytest.fixture
def simulator() -> BackMarketSimulator:
    return BackMarketSimulator([SELLER, OTHER_SELLER], seed=1)


@pytest.fixture
def server(simulator: BackMarketSimulator) -> Iterator[SimulatorServer]:
    with SimulatorServer(simulator) as running:
        yield running


@pytest.fixture
def bm(server: SimulatorServer) -> Iterator[httpx.Client]:
    """A client of the simulator as seller A."""
    with httpx.Client(base_url=server.url, headers=headers(), timeout=5) as client:
        yield client


def imei(n: int) -> str:
    body = f"{35693803564000 + n:014d}"
    return body + luhn.calc_check_digit(body)


def message(response: httpx.Response) -> str:
    return response.json()["error"]["message"]


def post_state(bm: httpx.Client, order_id: int, new_state: int, **fields: Any) -> httpx.Response:
    return bm.post(
        f"/ws/orders/{order_id}", json={"order_id": order_id, "new_state": new_state, **fields}
    )


def ship(bm: httpx.Client, order_id: int, **fields: Any) -> httpx.Response:
    return post_state(bm, order_id, 3, **{"tracking_number": "6A12345678901", **fields})


def patch(bm: httpx.Client, line_id: int, **fields: Any) -> httpx.Response:
    return bm.patch(f"/ws/orderlines/{line_id}", json=fields)


def line_ids(order: dict[str, Any]) -> list[int]:
    return [line["id"] for line in order["orderlines"]]


# Authentication and headers.


def test_a_known_token_and_a_bm_user_agent_read_the_order(simulator, bm):
    simulator.add_order(SELLER, 81234567, [("IP13", 1)])
    response = bm.get("/ws/orders/81234567")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json()["order_id"] == 81234567


@pytest.mark.parametrize(
    "authorization",
    [None, "Basic token-unknown", f"Bearer {SELLER}", "Basic", SELLER],
)
def test_a_missing_or_unknown_token_is_401_in_bm_envelope(simulator, server, authorization):
    simulator.add_order(SELLER, 81234567, [("IP13", 1)])
    sent = {"User-Agent": USER_AGENT}
    if authorization is not None:
        sent["Authorization"] = authorization
    response = httpx.get(f"{server.url}/ws/orders/81234567", headers=sent)
    assert response.status_code == 401
    body = response.json()
    assert body["error"]["code"] == "unauthorized"
    assert set(body["error"]) == {"code", "message", "data", "docLink", "target"}
    assert body["requestId"]


@pytest.mark.parametrize(
    "user_agent",
    [
        None,
        "python-httpx/0.28.1",
        "BM-Acme;ops@acme.example",
        "BM-Acme-shopify-bm",
        "BM-Acme-shopify-bm;not-an-email",
        "Acme-shopify-bm;ops@acme.example",
    ],
)
def test_a_missing_or_malformed_user_agent_is_403_json(server, user_agent):
    sent = headers()
    del sent["User-Agent"]
    if user_agent is not None:
        sent["User-Agent"] = user_agent
    with httpx.Client(headers=sent) as client:
        # httpx adds its own User-Agent unless told otherwise.
        if user_agent is None:
            client.headers.pop("User-Agent")
        response = client.get(f"{server.url}/ws/orders")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"


def test_another_sellers_order_and_orderline_are_404(simulator, bm):
    theirs = simulator.add_order(OTHER_SELLER, 81000001, [("IP13", 1)], state=9)
    assert bm.get("/ws/orders/81000001").status_code == 404
    assert message(ship(bm, 81000001)) == "The order doesn't exist"
    response = patch(bm, line_ids(theirs)[0], imei=IMEI)
    assert response.status_code == 404
    assert message(response) == "The orderline doesn't exist"
    assert bm.get("/ws/orders/99999999").status_code == 404


# The order's JSON shape.


def test_an_order_has_the_real_shape(simulator, bm):
    seeded = LineSeed(sku="IP13-128-BLK-A", quantity=2, unit_price="389.00")
    simulator.add_order(SELLER, 81234567, [seeded, ("GS21", 1)], state=3)
    order = bm.get("/ws/orders/81234567").json()
    assert order["state"] == 3
    assert order["price"] == "1167.00"
    assert order["tracking_number"] == ""
    assert order["date_shipping"] is None
    assert datetime.fromisoformat(order["date_creation"]).tzinfo is not None
    address = order["shipping_address"]
    assert {"first_name", "last_name", "postal_code", "country", "phone", "email"} <= set(address)
    assert "firstName" not in address
    line = order["orderlines"][0]
    assert line["listing"] == "IP13-128-BLK-A"
    assert (line["quantity"], line["state"], line["price"]) == (2, 2, "778.00")
    assert isinstance(line["id"], int)
    assert isinstance(line["listing_id"], int)
    assert isinstance(line["product_id"], int)
    assert (line["imei"], line["serial_number"]) == ("", "")
    assert {"orderline_fee", "shipping_delay", "condition", "brand", "product", "currency"} <= set(
        line
    )


# Listing and pagination.


@pytest.fixture
def listed(simulator) -> None:
    """23 paid orders, one pending (10), and two the list hides (0 and 8)."""
    for n in range(23):
        simulator.add_order(SELLER, 81000100 + n, [("IP13", 1)], state=1)
    for order_id, state in ((81000200, 10), (81000201, 0), (81000202, 8)):
        simulator.add_order(SELLER, order_id, [("IP13", 1)], state=state)
    simulator.add_order(OTHER_SELLER, 81000300, [("IP13", 1)])


@pytest.mark.usefixtures("listed")
def test_the_list_pages_by_ten_with_absolute_next_urls_and_hides_states_0_and_8(server, bm):
    seen: list[int] = []
    url: str | None = "/ws/orders"
    pages = []
    while url:
        page = bm.get(url).json()
        assert page["count"] == 24
        pages.append(page)
        seen += [order["order_id"] for order in page["results"]]
        url = page["next"]
        assert url is None or url.startswith(f"{server.url}/ws/orders?")
    assert [len(page["results"]) for page in pages] == [10, 10, 4]
    assert pages[0]["previous"] is None
    assert pages[1]["previous"] == f"{server.url}/ws/orders?page=1"
    assert sorted(seen) == [*range(81000100, 81000123), 81000200]


@pytest.mark.usefixtures("listed")
@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("page_size=50", 10),  # the underscore spelling is ignored
        ("page-size=50", 24),
        ("page-size=100", 24),  # capped at 50
        ("page-size=0", 10),
        ("page-size=3&page=8", 3),
        ("state=10", 1),
        ("state=0", 0),
        ("state=1&page-size=5&page=5", 3),
    ],
)
def test_list_parameters(bm, query, expected):
    response = bm.get(f"/ws/orders?{query}")
    assert response.status_code == 200
    assert len(response.json()["results"]) == expected


@pytest.mark.usefixtures("listed")
@pytest.mark.parametrize("query", ["page=4", "page=0", "page=x", "page-size=50&page=2"])
def test_a_page_past_the_last_is_404(bm, query):
    assert bm.get(f"/ws/orders?{query}").status_code == 404


def test_next_keeps_the_other_parameters(simulator, bm):
    for n in range(3):
        simulator.add_order(SELLER, 81000100 + n, [("IP13", 1)], state=3)
    page = bm.get("/ws/orders", params={"state": 3, "page-size": 2}).json()
    assert page["next"].endswith("/ws/orders?state=3&page-size=2&page=2")
    assert len(bm.get(page["next"]).json()["results"]) == 1


def test_the_list_is_sorted_by_creation_and_filters_by_modification(simulator, bm):
    for n, day in enumerate((3, 1, 2)):
        created = datetime(2020, 1, day, tzinfo=UTC)
        simulator.add_order(SELLER, 81000100 + n, [("IP13", 1)], state=1, date_creation=created)
    ids = [order["order_id"] for order in bm.get("/ws/orders").json()["results"]]
    assert ids == [81000101, 81000102, 81000100]
    post_state(bm, 81000102, 2, sku="IP13")
    recent = bm.get("/ws/orders", params={"date_modification": "2021-01-01 00:00:00"}).json()
    assert [order["order_id"] for order in recent["results"]] == [81000102]
    assert bm.get("/ws/orders", params={"date_creation": "soon"}).status_code == 400


# Updating orderline states: POST /ws/orders/{order_id}.


@pytest.mark.parametrize("new_state", [0, 1, 7, 8, 9, 10])
def test_only_states_2_to_6_can_be_set(simulator, bm, new_state):
    simulator.add_order(SELLER, 81234567, [("IP13", 1)], state=3)
    response = post_state(bm, 81234567, new_state, tracking_number="X")
    assert response.status_code == 400
    assert message(response) == f"new_state {new_state} must be in 2,3,4,5,6"


def test_the_body_order_id_must_match_the_url(simulator, bm):
    simulator.add_order(SELLER, 81234567, [("IP13", 1)], state=3)
    response = bm.post("/ws/orders/81234567", json={"order_id": 81234568, "new_state": 3})
    assert response.status_code == 400
    assert "81234568" in message(response)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"{not json", "malformed JSON body"),
        (b"", "malformed JSON body"),
        (b"[1, 2]", "the body must be a JSON object"),
        (b'{"order_id": 81234567, "new_state": "three"}', "new_state"),
    ],
)
def test_unreadable_bodies_are_400(simulator, bm, content, expected):
    simulator.add_order(SELLER, 81234567, [("IP13", 1)], state=3)
    response = bm.post("/ws/orders/81234567", content=content)
    assert response.status_code == 400
    assert expected in message(response)


@pytest.mark.parametrize("sku", [None, "", "NOT-ON-ORDER"])
def test_accepting_needs_a_sku_of_the_order(simulator, bm, sku):
    simulator.add_order(SELLER, 81234567, [("IP13", 1)], state=1)
    response = post_state(bm, 81234567, 2, sku=sku)
    assert response.status_code == 400
    assert message(response) == "sku not found"


def test_accepting_is_per_sku_and_the_order_moves_to_3_when_all_are_accepted(simulator, bm):
    simulator.add_order(SELLER, 81234567, [("IP13", 1), ("GS21", 1), ("IP13", 1)], state=1)
    first = post_state(bm, 81234567, 2, sku="IP13").json()
    assert [line["state"] for line in first["orderlines"]] == [2, 1, 2]
    assert first["state"] == 1
    second = post_state(bm, 81234567, 2, sku="GS21").json()
    assert second["state"] == 3
    again = post_state(bm, 81234567, 2, sku="GS21")
    assert again.status_code == 400
    assert message(again) == "orderline already in state 2"


def test_shipping_needs_a_tracking_number(simulator, bm):
    simulator.add_order(SELLER, 81234567, [("IP13", 1)], state=3)
    response = post_state(bm, 81234567, 3, shipper="Colissimo")
    assert response.status_code == 400
    assert message(response) == "tracking_number is required when new_state is 3"
    assert simulator.order(81234567)["state"] == 3


def test_shipping_a_line_not_accepted_is_400_and_changes_nothing(simulator, bm):
    simulator.add_order(SELLER, 81234567, [("IP13", 1), ("GS21", 1)], state=1)
    post_state(bm, 81234567, 2, sku="IP13")
    response = ship(bm, 81234567)
    assert response.status_code == 400
    assert message(response) == "orderline not accepted"
    assert [line["state"] for line in simulator.order(81234567)["orderlines"]] == [2, 1]
    assert simulator.stats().ships == {}


def test_shipping_without_sku_ships_every_line_and_stores_the_tracking(simulator, bm):
    simulator.add_order(SELLER, 81234567, [("IP13", 1), ("GS21", 2)], state=3)
    response = ship(
        bm,
        81234567,
        shipper="Colissimo",
        tracking_url="https://track.example/6A12345678901",
        date_shipping="2026-03-10T15:00:00Z",
    )
    assert response.status_code == 200
    order = response.json()
    assert order["state"] == 9
    assert [line["state"] for line in order["orderlines"]] == [3, 3]
    assert [line["shipper"] for line in order["orderlines"]] == ["Colissimo", "Colissimo"]
    assert order["tracking_number"] == "6A12345678901"
    assert order["tracking_url"] == "https://track.example/6A12345678901"
    assert order["shipper"] == "Colissimo"
    assert order["date_shipping"] == "2026-03-10T15:00:00+00:00"
    assert simulator.stats().ships == {81234567: 1}


def test_a_second_ship_is_refused_and_counted(simulator, bm):
    simulator.add_order(SELLER, 81234567, [("IP13", 1)], state=3)
    assert ship(bm, 81234567).status_code == 200
    again = ship(bm, 81234567, tracking_number="OTHER")
    assert again.status_code == 400
    assert message(again) == "order already shipped"
    assert simulator.order(81234567)["tracking_number"] == "6A12345678901"
    stats = simulator.stats()
    assert stats.ships == {81234567: 1}
    assert stats.reship_rejections == {81234567: 1}
    assert stats.orders_shipped_twice == []


def test_shipping_per_sku_counts_one_ship_per_request(simulator, bm):
    simulator.add_order(SELLER, 81234567, [("IP13", 1), ("GS21", 1)], state=3)
    assert ship(bm, 81234567, sku="IP13").json()["state"] == 3
    assert ship(bm, 81234567, sku="GS21").json()["state"] == 9
    assert simulator.stats().orders_shipped_twice == [81234567]


def test_the_imei_ships_inline_for_one_line_of_one_unit(simulator, bm):
    order = simulator.add_order(SELLER, 81234567, [("IP13", 1)], state=3)
    response = ship(bm, 81234567, imei=IMEI)
    assert response.json()["orderlines"][0]["imei"] == IMEI
    assert simulator.stats().imei_writes == {line_ids(order)[0]: 1}


def test_an_invalid_inline_imei_is_400_and_nothing_ships(simulator, bm):
    simulator.add_order(SELLER, 81234567, [("IP13", 1)], state=3)
    response = ship(bm, 81234567, imei="356938035643808")
    assert response.status_code == 400
    assert "not a valid IMEI" in message(response)
    assert simulator.order(81234567)["state"] == 3


@pytest.mark.parametrize("lines", [[("IP13", 1), ("GS21", 1)], [("IP13", 2)]])
def test_an_inline_imei_is_ignored_unless_one_line_of_one_unit(simulator, bm, lines):
    simulator.add_order(SELLER, 81234567, lines, state=3)
    response = ship(bm, 81234567, imei=IMEI)
    assert response.status_code == 200
    assert response.json()["state"] == 9
    assert all(line["imei"] == "" for line in response.json()["orderlines"])
    stats = simulator.stats()
    assert stats.ignored_identifiers == {81234567: 1}
    assert stats.imei_writes == {}


def test_cancel_and_refunds_follow_the_line_states(simulator, bm):
    simulator.add_order(SELLER, 81234567, [("IP13", 1), ("GS21", 1)], state=1)
    assert post_state(bm, 81234567, 4, sku="GS21").status_code == 200
    post_state(bm, 81234567, 2, sku="IP13")
    assert ship(bm, 81234567).json()["state"] == 9
    assert message(post_state(bm, 81234567, 6, sku="IP13")) == (
        "return_reason is required when new_state is 6"
    )
    refunded = post_state(bm, 81234567, 6, sku="IP13", return_reason=21).json()
    assert [line["state"] for line in refunded["orderlines"]] == [6, 4]
    assert refunded["orderlines"][0]["return_reason"] == 21


@pytest.mark.parametrize("state", [0, 8, 10])
def test_an_unpaid_order_cannot_be_accepted(simulator, bm, state):
    simulator.add_order(SELLER, 81234567, [("IP13", 1)], state=state)
    response = post_state(bm, 81234567, 2, sku="IP13")
    assert response.status_code == 400
    assert "cannot move from state" in message(response)


# IMEIs and serial numbers: PATCH /ws/orderlines/{id}.


@pytest.fixture
def shipped(simulator) -> list[int]:
    """A shipped order of three lines, one with two units; returns the line ids."""
    order = simulator.add_order(SELLER, 81234567, [("IP13", 1), ("GS21", 1), ("P7", 2)], state=9)
    return line_ids(order)


def test_patching_an_imei_returns_both_values_and_shows_on_the_order(simulator, bm, shipped):
    response = patch(bm, shipped[0], imei=IMEI)
    assert response.status_code == 200
    assert response.json() == {"imei": IMEI, "serial_number": ""}
    assert simulator.order(81234567)["orderlines"][0]["imei"] == IMEI
    both = patch(bm, shipped[1], imei=OTHER_IMEI, serial_number="R58N12ABC")
    assert both.json() == {"imei": OTHER_IMEI, "serial_number": "R58N12ABC"}
    stats = simulator.stats()
    assert stats.imei_writes == {shipped[0]: 1, shipped[1]: 1}
    assert stats.serial_writes == {shipped[1]: 1}
    assert stats.lines_patched_twice == []


def test_the_same_imei_again_is_a_200_no_op_but_counts_as_a_second_patch(simulator, bm, shipped):
    patch(bm, shipped[0], imei=IMEI)
    again = patch(bm, shipped[0], imei=IMEI)
    assert again.status_code == 200
    stats = simulator.stats()
    assert stats.imei_writes == {shipped[0]: 1}
    assert stats.lines_patched_twice == [shipped[0]]


def test_an_imei_cannot_be_corrected(simulator, bm, shipped):
    patch(bm, shipped[0], imei=IMEI)
    response = patch(bm, shipped[0], imei=OTHER_IMEI)
    assert response.status_code == 422
    assert "cannot be corrected" in message(response)
    assert simulator.order(81234567)["orderlines"][0]["imei"] == IMEI


@pytest.mark.parametrize(
    "value",
    [
        "356938035643808",  # wrong check digit
        "35693803564380",  # 14 digits
        "3569380356438090",  # 16 digits
        "35693803564380a",
        "٣٥٦٩٣٨٠٣٥٦٤٣٨٠٩",  # Arabic-Indic digits
        "",
    ],
)
def test_an_invalid_imei_is_422(bm, shipped, value):
    response = patch(bm, shipped[0], imei=value)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "unprocessable_entity"


def test_a_line_of_two_units_cannot_carry_an_imei(bm, shipped):
    response = patch(bm, shipped[2], imei=IMEI)
    assert response.status_code == 422
    assert "quantity 2" in message(response)


def test_an_unshipped_line_cannot_carry_an_imei(simulator, bm):
    order = simulator.add_order(SELLER, 81234567, [("IP13", 1)], state=3)
    response = patch(bm, line_ids(order)[0], imei=IMEI)
    assert response.status_code == 422
    assert "not shipped" in message(response)


def test_patch_needs_an_imei_or_a_serial(bm, shipped):
    response = patch(bm, shipped[0])
    assert response.status_code == 400
    assert message(response) == "imei or serial_number is required"
    assert patch(bm, shipped[0], serial_number="S" * 51).status_code == 422
    assert patch(bm, shipped[0], serial_number="C02XK1ZZJG5H").status_code == 200


def test_patching_an_unknown_orderline_is_404(bm):
    response = patch(bm, 12345, imei=IMEI)
    assert response.status_code == 404
    assert message(response) == "The orderline doesn't exist"


# Cloudflare's rate limit.


def test_over_the_limit_the_token_is_blocked_then_released(simulator, bm, server):
    simulator.set_rate_limit(RateLimit(limit=5, window_seconds=1, block_seconds=0.3))
    statuses = [bm.get("/ws/orders").status_code for _ in range(7)]
    assert statuses == [200] * 5 + [429, 429]
    blocked = bm.get("/ws/orders")
    assert blocked.json()["error"]["code"] == "too_many_requests"
    assert "Retry-After" not in blocked.headers
    with httpx.Client(base_url=server.url, headers=headers(OTHER_SELLER)) as other:
        assert other.get("/ws/orders").status_code == 200
    time.sleep(0.35)
    assert bm.get("/ws/orders").status_code == 200
    stats = simulator.stats()
    assert stats.rate_limited == {SELLER: 3}
    assert stats.peak_requests_per_window[SELLER] == 9


def test_requests_spread_over_windows_are_not_limited(simulator, bm):
    simulator.set_rate_limit(RateLimit(limit=5, window_seconds=0.2, block_seconds=5))
    first = [bm.get("/ws/orders").status_code for _ in range(5)]
    time.sleep(0.25)
    second = [bm.get("/ws/orders").status_code for _ in range(5)]
    assert first + second == [200] * 10


def test_a_429_can_be_cloudflare_html_with_retry_after(simulator, bm):
    limit = RateLimit(limit=1, window_seconds=5, block_seconds=2.5, retry_after=True, html=True)
    simulator.set_rate_limit(limit)
    bm.get("/ws/orders")
    response = bm.get("/ws/orders")
    assert response.status_code == 429
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["server"] == "cloudflare"
    assert response.headers["cf-ray"]
    assert response.headers["retry-after"] == "3"
    assert "1015" in response.text


def test_a_forced_burst_answers_the_next_requests_429(simulator, bm, server):
    simulator.force_429(2, seller=SELLER)
    with httpx.Client(base_url=server.url, headers=headers(OTHER_SELLER)) as other:
        assert other.get("/ws/orders").status_code == 200
    assert [bm.get("/ws/orders").status_code for _ in range(3)] == [429, 429, 200]
    simulator.force_429(1)
    assert bm.get("/ws/orders").status_code == 429
    assert [r.fault for r in simulator.requests()][-1] == "burst_429"


# Injected faults.


def test_latency_is_added_without_serialising_requests(simulator, bm):
    simulator.set_faults(Faults(latency_ms=200))
    started = time.monotonic()
    with ThreadPoolExecutor(40) as pool:
        statuses = list(pool.map(lambda _: bm.get("/ws/orders").status_code, range(40)))
    elapsed = time.monotonic() - started
    assert statuses == [200] * 40
    assert 0.2 <= elapsed < 2.0  # one after the other would take 8 s


def test_server_errors_apply_nothing_and_are_sometimes_cloudflare_pages(simulator, bm):
    simulator.add_order(SELLER, 81234567, [("IP13", 1)], state=3)
    simulator.set_faults(Faults(error_rate=1))
    responses = [ship(bm, 81234567) for _ in range(30)]
    assert {r.status_code for r in responses} == {500, 502, 503}
    kinds = {(r.status_code, r.headers["content-type"].split(";")[0]) for r in responses}
    assert (502, "application/json") not in kinds
    assert {(503, "text/html"), (503, "application/json"), (500, "application/json")} <= kinds
    assert simulator.order(81234567)["state"] == 3
    assert simulator.stats().ships == {}


def test_a_timeout_hangs_then_drops_without_applying(simulator, bm):
    simulator.add_order(SELLER, 81234567, [("IP13", 1)], state=3)
    simulator.set_faults(Faults(timeout_rate=1, hang_seconds=0.2))
    started = time.monotonic()
    with pytest.raises(DISCONNECTED):
        ship(bm, 81234567)
    assert time.monotonic() - started >= 0.2
    with pytest.raises(httpx.ReadTimeout):
        bm.get("/ws/orders/81234567", timeout=0.05)
    assert simulator.order(81234567)["state"] == 3
    assert simulator.requests()[0].status is None
    assert simulator.requests()[0].fault == "timeout"


def test_a_timeout_can_answer_late_and_apply_late(simulator, bm):
    simulator.add_order(SELLER, 81234567, [("IP13", 1)], state=3)
    simulator.set_faults(Faults(timeout_rate=1, hang_seconds=0.2, after_hang="respond"))
    started = time.monotonic()
    assert ship(bm, 81234567).status_code == 200
    assert time.monotonic() - started >= 0.2
    assert simulator.order(81234567)["state"] == 9


def test_an_ambiguous_error_applies_the_write_then_answers_500(simulator, bm):
    simulator.add_order(SELLER, 81234567, [("IP13", 1)], state=3)
    simulator.set_faults(Faults(ambiguous_rate=1))
    assert bm.get("/ws/orders/81234567").status_code == 200  # reads are never ambiguous
    response = ship(bm, 81234567, imei=IMEI)
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    order = bm.get("/ws/orders/81234567").json()
    assert (order["state"], order["orderlines"][0]["imei"]) == (9, IMEI)
    refused = ship(bm, 81234567)  # a refused write is not ambiguous: its 400 comes through
    assert message(refused) == "order already shipped"
    assert simulator.stats().ships == {81234567: 1}


def test_an_ambiguous_hang_applies_the_write_then_drops(simulator, bm, shipped):
    simulator.set_faults(Faults(ambiguous_rate=1, ambiguous_mode="hang", hang_seconds=0.1))
    with pytest.raises(DISCONNECTED):
        patch(bm, shipped[0], imei=IMEI)
    assert simulator.order(81234567)["orderlines"][0]["imei"] == IMEI
    assert simulator.requests()[-1].fault == "ambiguous"


def test_the_waf_answers_an_html_block_page(simulator, bm):
    simulator.set_faults(Faults(waf_html_rate=1))
    response = bm.get("/ws/orders")
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["server"] == "cloudflare"
    assert response.headers["cf-ray"].endswith("-CDG")
    assert response.headers["cf-ray"] in response.text


def test_the_waf_answers_a_bot_challenge_in_json(simulator, bm):
    simulator.set_faults(Faults(waf_challenge_rate=1))
    response = bm.get("/ws/orders")
    assert response.status_code == 403
    (error,) = response.json()["errors"]
    assert (error["code"], error["message"]) == ("bot-need-challenge", "Forbidden")
    assert error["challengePath"].startswith("/")


def test_seller_faults_replace_the_global_ones_for_that_seller(simulator, bm, server):
    simulator.set_faults(Faults(error_rate=1), seller=OTHER_SELLER)
    with httpx.Client(base_url=server.url, headers=headers(OTHER_SELLER)) as other:
        assert other.get("/ws/orders").status_code >= 500
        assert bm.get("/ws/orders").status_code == 200
        simulator.set_faults(Faults(waf_html_rate=1))
        simulator.set_faults(None, seller=OTHER_SELLER)
        assert other.get("/ws/orders").status_code == 403


def test_reset_restores_the_faults_given_at_construction():
    simulator = BackMarketSimulator(
        [SELLER, OTHER_SELLER], seller_faults={OTHER_SELLER: Faults(waf_html_rate=1)}
    )
    simulator.set_faults(None, seller=OTHER_SELLER)
    simulator.set_faults(Faults(error_rate=1))
    simulator.reset()
    with SimulatorServer(simulator) as server:
        assert httpx.get(f"{server.url}/ws/orders", headers=headers()).status_code == 200
        other = httpx.get(f"{server.url}/ws/orders", headers=headers(OTHER_SELLER))
        assert other.status_code == 403


def test_the_same_seed_gives_the_same_faults():
    def statuses(seed: int) -> list[int]:
        simulator = BackMarketSimulator([SELLER], faults=Faults(error_rate=0.5), seed=seed)
        with (
            SimulatorServer(simulator) as server,
            httpx.Client(base_url=server.url, headers=headers()) as client,
        ):
            return [client.get("/ws/orders").status_code for _ in range(20)]

    first = statuses(7)
    assert first == statuses(7)
    assert first != statuses(8)
    assert 200 in first
    assert set(first) - {200}


def test_stopping_the_server_ends_hangs_at_once():
    simulator = BackMarketSimulator([SELLER], faults=Faults(timeout_rate=1, hang_seconds=30))
    server = SimulatorServer(simulator).start()
    outcome: list[BaseException] = []

    def call() -> None:
        try:
            httpx.get(f"{server.url}/ws/orders", headers=headers(), timeout=10)
        except httpx.HTTPError as error:
            outcome.append(error)

    caller = threading.Thread(target=call)
    caller.start()
    while not simulator.stats().requests_per_seller:
        time.sleep(0.01)
    started = time.monotonic()
    server.stop()
    caller.join(5)
    assert time.monotonic() - started < 2
    assert isinstance(outcome[0], DISCONNECTED)


# The control API, for a simulator in another process.


def test_the_control_api_seeds_sellers_and_orders(server):
    with httpx.Client(base_url=server.url, timeout=5) as control:
        assert control.post("/_sim/sellers", json={"token": "token-new"}).status_code == 201
        orders = [
            {"seller": "token-new", "order_id": 81000001, "lines": [{"sku": "IP13"}]},
            {
                "seller": "token-new",
                "order_id": 81000002,
                "state": 3,
                "lines": [{"sku": "IP13"}, {"sku": "GS21", "quantity": 2, "id": 555}],
            },
        ]
        created = control.post("/_sim/orders", json={"orders": orders})
        assert created.status_code == 201
        (first, second) = created.json()["orders"]
        assert first["order_id"] == 81000001
        assert second["orderline_ids"][1] == 555
        assert control.post("/_sim/orders", json={"orders": orders[:1]}).status_code == 409
        unknown = {"orders": [{"seller": "nobody", "order_id": 9, "lines": [{"sku": "A"}]}]}
        assert control.post("/_sim/orders", json=unknown).status_code == 409
        assert control.post("/_sim/orders", json={"orders": [{"order_id": 1}]}).status_code == 400
        assert control.get("/_sim/orders/81000002").json()["orderlines"][1]["quantity"] == 2
        assert control.get("/_sim/orders/1").status_code == 404
    listed = httpx.get(f"{server.url}/ws/orders", headers=headers("token-new")).json()
    assert listed["count"] == 2


def test_the_control_api_sets_faults_bursts_and_limits(simulator, bm):
    faults = {"seller": SELLER, "faults": {"waf_challenge_rate": 1}}
    assert bm.post("/_sim/faults", json=faults).status_code == 200
    assert bm.get("/ws/orders").status_code == 403
    assert bm.post("/_sim/faults", json={"seller": SELLER, "faults": None}).status_code == 200
    assert bm.post("/_sim/faults", json={"faults": {"error_rate": 2}}).status_code == 400
    assert bm.post("/_sim/burst", json={"count": 1}).status_code == 200
    assert [bm.get("/ws/orders").status_code for _ in range(2)] == [429, 200]
    limit = {"limit": 1, "window_seconds": 5, "block_seconds": 1, "html": True}
    assert bm.post("/_sim/rate-limit", json=limit).json()["html"] is True
    assert bm.get("/_sim/rate-limit").json()["limit"] == 1
    assert simulator.rate_limit.limit == 1


def test_the_control_api_reports_stats_and_requests_and_resets(simulator, bm):
    simulator.add_order(SELLER, 81234567, [("IP13", 1)], state=3)
    ship(bm, 81234567)
    ship(bm, 81234567)
    bm.get("/ws/orders")
    stats = bm.get("/_sim/stats").json()
    assert stats["ships"] == {"81234567": 1}
    assert stats["reship_rejections"] == {"81234567": 1}
    assert stats["statuses"] == {"200": 2, "400": 1}
    assert stats["orders_shipped_twice"] == []
    page = bm.get("/_sim/requests", params={"since": 1, "limit": 1}).json()
    (record,) = page["requests"]
    assert (record["seq"], record["method"], record["status"]) == (2, "POST", 400)
    assert record["seller"] == SELLER
    assert record["body"]["tracking_number"] == "6A12345678901"
    assert record["received_wall"] == pytest.approx(time.time(), abs=10)
    assert page["last_seq"] == 2
    assert bm.get("/_sim/requests", params={"since": 3}).json() == {"requests": [], "last_seq": 3}
    assert bm.post("/_sim/reset").status_code == 200
    assert bm.get("/ws/orders/81234567").status_code == 404  # the seller stays, its orders go
    assert bm.get("/_sim/stats").json()["ships"] == {}


def test_the_request_log_keeps_the_latest():
    simulator = BackMarketSimulator([SELLER], log_size=3)
    with (
        SimulatorServer(simulator) as small,
        httpx.Client(base_url=small.url, headers=headers()) as client,
    ):
        for _ in range(5):
            client.get("/ws/orders")
    assert [record.seq for record in simulator.requests()] == [3, 4, 5]
    assert [record.seq for record in simulator.requests(since=4)] == [5]
    assert simulator.stats().requests == 5


# The Python seeding API.


def test_seeding_refuses_unknown_sellers_and_reused_ids(simulator):
    simulator.add_order(SELLER, 81234567, [("IP13", 1)])
    with pytest.raises(SeedError, match="already used"):
        simulator.add_order(SELLER, 81234567, [("IP13", 1)])
    with pytest.raises(SeedError, match="no seller"):
        simulator.add_order("token-unknown", 81234568, [("IP13", 1)])
    assert simulator.order(81234568) is None


@pytest.mark.parametrize(
    ("value", "valid"),
    [(IMEI, True), (OTHER_IMEI, True), ("153124587625348", False), ("35693803564380", False)],
)
def test_is_valid_imei(value, valid):
    assert is_valid_imei(value) is valid


def test_generated_imeis_are_valid():
    assert all(is_valid_imei(imei(n)) for n in range(20))


# The command line.


@pytest.mark.slow
def test_the_command_line_prints_its_url_serves_the_demo_and_stops_on_sigterm():
    process = subprocess.Popen(
        [sys.executable, "-m", "shopify_bm.backmarket.simulator", "--port", "0", "--seed-demo"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        listed = httpx.get(f"{url}/ws/orders", headers=headers(DEMO_TOKEN)).json()
        assert listed["count"] == 5
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=5) == 0
    finally:
        process.kill()
        process.wait()
        process.stdout.close()
