"""The Back Market client against `httpx.MockTransport`: what goes on the wire, what comes back."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from shopify_bm.backmarket.client import BackMarketClient, user_agent
from shopify_bm.backmarket.errors import (
    AuthenticationError,
    BackMarketConnectionError,
    BackMarketError,
    BackMarketStatusError,
    BackMarketTimeoutError,
    BadRequestError,
    CloudflareBlockedError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ServerError,
    UnexpectedResponseError,
    UnprocessableEntityError,
)
from shopify_bm.backmarket.models import OrderLineState, OrderState, Shipment
from support.backmarket import fixture, page

# Shaped like a Back Office token (base64 of `<hex>:BMT-<hex>`), with a "/" to test JSON escaping.
TOKEN = "NWYzYzE4ZTRhOWIyN2QwYzE2ZThm/k1ULTdmM2E5YzBlMWQyYjQ1ZjY3ODlhYmNkZWYwMTIzNDU2Nzg5YWI="
BASE_URL = "https://www.backmarket.fr"
Handler = Callable[[httpx.Request], httpx.Response]


class FakeBackMarket:
    """Answers with the queued handlers in turn, and keeps every request it was sent."""

    def __init__(self) -> None:
        self.handlers: list[Handler] = []
        self.requests: list[httpx.Request] = []

    def reply(self, status: int = 200, **kwargs: Any) -> None:
        self.handlers.append(lambda request: httpx.Response(status, **kwargs))

    def fail(self, error: type[httpx.RequestError]) -> None:
        def handler(request: httpx.Request) -> httpx.Response:
            raise error("simulated", request=request)

        self.handlers.append(handler)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.handlers.pop(0)(request)


@pytest.fixture
def fake() -> FakeBackMarket:
    return FakeBackMarket()


@pytest.fixture
def client(fake: FakeBackMarket) -> Iterator[BackMarketClient]:
    with httpx.Client(base_url=BASE_URL, transport=httpx.MockTransport(fake)) as http:
        yield BackMarketClient(
            http,
            token=SecretStr(TOKEN),
            company="Acme Refurb SAS",
            contact_email="ops@acme.example",
            locale="fr-fr",
        )


def sent_json(request: httpx.Request) -> Any:
    return json.loads(request.content)


# --- what every request carries -------------------------------------------------------------


def test_every_call_sends_the_documented_headers(
    client: BackMarketClient, fake: FakeBackMarket
) -> None:
    fake.reply(json=fixture("order__single_line"))
    client.get_order(81234567)

    (request,) = fake.requests
    assert request.method == "GET"
    assert str(request.url) == "https://www.backmarket.fr/ws/orders/81234567"
    assert request.headers["Authorization"] == f"Basic {TOKEN}"  # verbatim, not re-encoded
    assert request.headers["User-Agent"] == "BM-Acme-Refurb-SAS-shopify-bm;ops@acme.example"
    assert request.headers["Accept-Language"] == "fr-fr"
    assert request.headers["Accept"] == "application/json"
    assert request.headers["Content-Type"] == "application/json"


@pytest.mark.parametrize(
    ("company", "expected"),
    [
        ("Acme", "BM-Acme-shopify-bm;ops@acme.example"),
        ("Acme Refurb SAS", "BM-Acme-Refurb-SAS-shopify-bm;ops@acme.example"),
        ("Électro Café & Co.", "BM-Electro-Cafe-Co-shopify-bm;ops@acme.example"),
        ("re-phone_24/7", "BM-re-phone-24-7-shopify-bm;ops@acme.example"),
        ("日本ショップ", "BM-Merchant-shopify-bm;ops@acme.example"),
        ("", "BM-Merchant-shopify-bm;ops@acme.example"),
    ],
)
def test_user_agent_keeps_letters_digits_and_hyphens(company: str, expected: str) -> None:
    assert user_agent(company, " ops@acme.example ") == expected


@pytest.mark.parametrize("email", ["", "ops", "ops@acme.example;x", "ops @acme.example", "é@a.fr"])
def test_user_agent_needs_a_usable_email(email: str) -> None:
    with pytest.raises(ValueError, match="contact email"):
        user_agent("Acme", email)


@pytest.mark.parametrize(
    "token", ["", "   ", "abc def", "abc\ndef", "tökén", f"{TOKEN}\r\nX-Injected: 1"]
)
def test_a_token_that_cannot_be_a_header_is_refused_without_echoing_it(token: str) -> None:
    with httpx.Client() as http, pytest.raises(ValueError, match="token") as raised:
        BackMarketClient(http, token=SecretStr(token), company="Acme", contact_email="a@b.fr")
    assert token.strip() == "" or token not in str(raised.value)


def test_surrounding_whitespace_of_a_pasted_token_is_not_sent(fake: FakeBackMarket) -> None:
    fake.reply(json=fixture("order__single_line"))
    with httpx.Client(base_url=BASE_URL, transport=httpx.MockTransport(fake)) as http:
        client = BackMarketClient(
            http, token=SecretStr(f" {TOKEN}\n"), company="Acme", contact_email="a@b.fr"
        )
        client.get_order(81234567)
    assert fake.requests[0].headers["Authorization"] == f"Basic {TOKEN}"


@pytest.mark.parametrize("locale", ["", "fr", "fr_fr", "fr-fr-x", "fr-fr\r\nX: 1"])
def test_locale_must_look_like_back_markets(locale: str) -> None:
    with httpx.Client() as http, pytest.raises(ValueError, match="locale"):
        BackMarketClient(
            http, token=SecretStr(TOKEN), company="Acme", contact_email="a@b.fr", locale=locale
        )


def test_build_sets_base_url_and_explicit_timeouts(fake: FakeBackMarket) -> None:
    fake.reply(json=fixture("order__single_line"))
    with BackMarketClient.build(
        "https://www.backmarket.co.uk",
        SecretStr(TOKEN),
        "Acme",
        "ops@acme.example",
        " en-GB ",
        transport=httpx.MockTransport(fake),
    ) as client:
        client.get_order(81234567)

    (request,) = fake.requests
    assert str(request.url) == "https://www.backmarket.co.uk/ws/orders/81234567"
    assert request.headers["Accept-Language"] == "en-gb"
    assert request.extensions["timeout"] == {
        "connect": 5.0,
        "read": 30.0,
        "write": 30.0,
        "pool": 5.0,
    }


def test_build_takes_a_bare_number_as_the_read_timeout(fake: FakeBackMarket) -> None:
    fake.reply(json=fixture("order__single_line"))
    with BackMarketClient.build(
        BASE_URL,
        SecretStr(TOKEN),
        "Acme",
        "a@b.fr",
        timeout=12,
        transport=httpx.MockTransport(fake),
    ) as client:
        client.get_order(81234567)
    assert fake.requests[0].extensions["timeout"]["read"] == 12
    assert fake.requests[0].extensions["timeout"]["connect"] == 5.0


def test_closing_closes_only_a_client_it_built(fake: FakeBackMarket) -> None:
    fake.reply(json=fixture("order__single_line"))
    with httpx.Client(base_url=BASE_URL, transport=httpx.MockTransport(fake)) as http:
        with BackMarketClient(http, token=SecretStr(TOKEN), company="A", contact_email="a@b.fr"):
            pass
        assert not http.is_closed

    built = BackMarketClient.build(BASE_URL, SecretStr(TOKEN), "A", "a@b.fr")
    built.close()
    with pytest.raises(RuntimeError, match="closed"):
        built.get_order(1)


# --- the calls, their bodies and their answers ---------------------------------------------


def test_get_order_reads_the_order(client: BackMarketClient, fake: FakeBackMarket) -> None:
    fake.reply(json=fixture("order__single_line"))
    order = client.get_order(81234567)

    assert order.order_id == 81234567
    assert order.state is OrderState.ACCEPTED
    (line,) = order.orderlines
    assert (line.id, line.listing, line.quantity, line.state) == (
        98765432,
        "IP13-128-BLK-A",
        1,
        OrderLineState.ACCEPTED,
    )


def test_accept_lines_posts_state_2_with_the_sku(
    client: BackMarketClient, fake: FakeBackMarket
) -> None:
    fake.reply(json=fixture("order__two_lines"))
    client.accept_lines(81234612, "IP13-128-BLK-A")

    (request,) = fake.requests
    assert (request.method, request.url.path) == ("POST", "/ws/orders/81234612")
    assert sent_json(request) == {"order_id": 81234612, "new_state": 2, "sku": "IP13-128-BLK-A"}


def test_accept_lines_refuses_an_empty_sku_before_sending(
    client: BackMarketClient, fake: FakeBackMarket
) -> None:
    with pytest.raises(ValueError, match="SKU"):
        client.accept_lines(81234612, " ")
    assert fake.requests == []


def test_ship_order_posts_the_reference_body(
    client: BackMarketClient, fake: FakeBackMarket
) -> None:
    fake.reply(json=fixture("order__shipped"))
    shipment = Shipment(
        tracking_number="6A12345678901",
        tracking_url="https://www.laposte.fr/outils/suivre-vos-envois?code=6A12345678901",
        shipper="Colissimo",
        date_shipping=datetime(2026, 3, 10, 16, 0, 0, 250_000, tzinfo=timezone(timedelta(hours=1))),
        imei="356938035643809",
    )
    order = client.ship_order(81234567, shipment)

    (request,) = fake.requests
    assert (request.method, request.url.path) == ("POST", "/ws/orders/81234567")
    assert sent_json(request) == {
        "order_id": 81234567,
        "new_state": 3,
        "tracking_number": "6A12345678901",
        "tracking_url": "https://www.laposte.fr/outils/suivre-vos-envois?code=6A12345678901",
        "shipper": "Colissimo",
        "date_shipping": "2026-03-10T15:00:00Z",
        "imei": "356938035643809",
    }
    assert order.is_shipped


def test_ship_order_leaves_out_what_is_absent_and_never_sends_a_sku(
    client: BackMarketClient, fake: FakeBackMarket
) -> None:
    fake.reply(json=fixture("order__shipped"))
    client.ship_order(81234612, Shipment(tracking_number="JD014600006281230012", tracking_url=""))

    assert sent_json(fake.requests[0]) == {
        "order_id": 81234612,
        "new_state": 3,
        "tracking_number": "JD014600006281230012",
    }


def test_set_orderline_imei_patches_the_line(
    client: BackMarketClient, fake: FakeBackMarket
) -> None:
    fake.reply(json={"imei": "011415009346880", "serial_number": ""})
    result = client.set_orderline_imei(98765502, "011415009346880")

    (request,) = fake.requests
    assert (request.method, request.url.path) == ("PATCH", "/ws/orderlines/98765502")
    assert sent_json(request) == {"imei": "011415009346880"}
    assert result.imei == "011415009346880"


@pytest.mark.parametrize("imei", ["", "01141500934688", "0114150093468801", "01141500934688x"])
def test_set_orderline_imei_refuses_a_malformed_imei_before_sending(
    client: BackMarketClient, fake: FakeBackMarket, imei: str
) -> None:
    with pytest.raises(ValueError, match="IMEI"):
        client.set_orderline_imei(98765502, imei)
    assert fake.requests == []


# --- pagination -------------------------------------------------------------------------------


def test_list_orders_walks_the_pages_until_next_is_null(
    client: BackMarketClient, fake: FakeBackMarket
) -> None:
    orders = [
        fixture(name) for name in ("order__single_line", "order__two_lines", "order__shipped")
    ]
    for number, results in enumerate([orders[:2], orders[2:]], start=1):
        following = f"{BASE_URL}/ws/orders?page={number + 1}&page-size=2" if number == 1 else None
        fake.reply(json={"count": 3, "next": following, "previous": None, "results": results})

    since = datetime(2026, 3, 1, 1, 0, tzinfo=timezone(timedelta(hours=1)))
    listed = client.list_orders(OrderState.PAID, page_size=2, date_modification=since)
    assert fake.requests == []  # nothing is fetched before the caller iterates
    assert [order.order_id for order in listed] == [81234567, 81234612, 81234567]

    assert [dict(request.url.params) for request in fake.requests] == [
        {
            "page": str(n),
            "page-size": "2",
            "state": "1",
            "date_modification": "2026-03-01T00:00:00Z",
        }
        for n in (1, 2)
    ]
    assert {request.url.path for request in fake.requests} == {"/ws/orders"}


def test_list_orders_stops_at_an_empty_page_whatever_next_says(
    client: BackMarketClient, fake: FakeBackMarket
) -> None:
    fake.reply(json={"count": 0, "next": f"{BASE_URL}/ws/orders?page=2", "results": []})
    assert list(client.list_orders()) == []
    assert len(fake.requests) == 1
    assert fake.requests[0].url.params["page-size"] == "50"


@pytest.mark.parametrize("page_size", [0, 51])
def test_list_orders_refuses_a_page_size_back_market_would_not_honour(
    client: BackMarketClient, page_size: int
) -> None:
    with pytest.raises(ValueError, match="page_size"):
        client.list_orders(page_size=page_size)


def test_list_orders_refuses_a_naive_date(client: BackMarketClient) -> None:
    with pytest.raises(ValueError, match="timezone"):
        client.list_orders(date_creation=datetime(2026, 3, 1))


# --- failures: one class per meaning ------------------------------------------------------

ENVELOPE = fixture("error__envelope_v1")
JSON = {"content-type": "application/json"}
HTML = {"content-type": "text/html; charset=UTF-8"}
CLOUDFLARE_HTML = {**HTML, "server": "cloudflare", "cf-ray": "931354450813d142-CDG"}


@pytest.mark.parametrize(
    ("status", "headers", "body", "expected"),
    [
        (400, JSON, json.dumps(ENVELOPE), BadRequestError),
        (400, JSON, json.dumps("sku not found"), BadRequestError),
        (400, {"content-type": "text/plain"}, "sku not found", BadRequestError),
        (400, JSON, "<html><body>Bad Request</body></html>", BadRequestError),
        (401, JSON, json.dumps(ENVELOPE), AuthenticationError),
        (401, HTML, "<html><body>Unauthorized</body></html>", AuthenticationError),
        (403, JSON, json.dumps({"error": {"code": "forbidden", "message": "Not a merchant"}}),
         PermissionDeniedError),
        (403, JSON, json.dumps(fixture("error__bot_need_challenge")), CloudflareBlockedError),
        (403, page("cloudflare__403")[1], page("cloudflare__403")[0], CloudflareBlockedError),
        (403, JSON, page("cloudflare__403")[0], CloudflareBlockedError),  # mislabelled page
        (403, {"content-type": "text/plain", "server": "cloudflare"}, "error code: 1020",
         CloudflareBlockedError),
        (404, JSON, json.dumps({"error": {"code": "not_found", "message": "Not found"}}),
         NotFoundError),
        (409, JSON, json.dumps({"errors": [{"code": "conflict", "message": "Already shipped"}]}),
         ConflictError),
        (422, JSON, json.dumps({"errors": [{"code": "invalid", "message": "IMEI invalid"}]}),
         UnprocessableEntityError),
        (429, JSON, json.dumps({"error": {"code": "too_many_requests", "message": "Slow down"}}),
         RateLimitedError),
        (429, page("cloudflare__429")[1], page("cloudflare__429")[0], CloudflareBlockedError),
        (503, CLOUDFLARE_HTML, "<html><title>503 Service Unavailable</title></html>",
         CloudflareBlockedError),
        (503, {"server": "cloudflare", "cf-ray": "9313a1c2be6f0b7e-CDG"}, "",
         CloudflareBlockedError),
        (503, JSON, json.dumps({"error": {"code": "unavailable", "message": "Maintenance"}}),
         ServerError),
        (500, {"content-type": "text/plain"}, "Internal Server Error", ServerError),
        (502, CLOUDFLARE_HTML, "<html><title>502 Bad gateway</title></html>", ServerError),
        (504, CLOUDFLARE_HTML, "<html><title>504 Gateway time-out</title></html>", ServerError),
        (418, JSON, json.dumps({"error": {"code": "teapot", "message": "I'm a teapot"}}),
         BackMarketStatusError),
        (302, {"location": "https://www.backmarket.co.uk/ws/orders/1"}, "", BackMarketStatusError),
    ],
)  # fmt: skip
def test_each_status_becomes_its_error_class(
    client: BackMarketClient,
    fake: FakeBackMarket,
    status: int,
    headers: dict[str, str],
    body: str,
    expected: type[BackMarketStatusError],
) -> None:
    fake.reply(status, headers=headers, content=body.encode())
    with pytest.raises(BackMarketStatusError) as raised:
        client.get_order(81234567)

    error = raised.value
    assert type(error) is expected
    assert error.status_code == status
    assert f"(HTTP {status} on GET /ws/orders/81234567" in str(error)
    assert len(error.body_excerpt) <= 300
    assert error.cf_ray == headers.get("cf-ray")
    assert "<" not in str(error)  # an HTML page is kept in the excerpt, never in the message


def test_the_error_envelope_gives_its_message_and_request_id(
    client: BackMarketClient, fake: FakeBackMarket
) -> None:
    fake.reply(400, json=ENVELOPE)
    with pytest.raises(BadRequestError) as raised:
        client.ship_order(81234567, Shipment(tracking_number="6A12345678901"))

    assert str(raised.value) == (
        "Back Market refused the request as invalid (HTTP 400 on POST /ws/orders/81234567): "
        "new_state 9 must be in 2,3,4,5,6 (E009)."
    )
    assert raised.value.request_id == "8f0c6c2e-4c1b-4d7e-9a51-2f0d7b1e9c33"


def test_a_rejected_token_is_said_in_plain_words(
    client: BackMarketClient, fake: FakeBackMarket
) -> None:
    fake.reply(401, json={"error": {"code": "unauthenticated", "message": "Unauthenticated."}})
    with pytest.raises(AuthenticationError) as raised:
        client.get_order(81234567)
    assert str(raised.value).startswith(
        "Back Market rejected the API token (HTTP 401 on GET /ws/orders/81234567): "
        "Unauthenticated (unauthenticated). Create a new token in the Back Market Back Office"
    )


def test_a_cloudflare_page_is_recognised_without_being_parsed(
    client: BackMarketClient, fake: FakeBackMarket
) -> None:
    html, headers = page("cloudflare__403")
    fake.reply(403, headers=headers, content=html.encode())
    with pytest.raises(CloudflareBlockedError) as raised:
        client.get_order(81234567)

    error = raised.value
    assert isinstance(error, RateLimitedError)  # throttling/WAF: retried later, not a token issue
    assert error.cf_ray == "931354450813d142-CDG"
    assert error.body_excerpt.startswith("<!DOCTYPE html> <!--[if lt IE 7]>")
    assert str(error).startswith(
        "Back Market's firewall (Cloudflare) blocked the request "
        "(HTTP 403 on GET /ws/orders/81234567, cf-ray 931354450813d142-CDG). "
    )


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [
        ({"retry-after": "10"}, 10.0),
        ({"retry-after": "Wed, 16 Apr 2025 12:14:33 GMT"}, 30.0),  # 30 s after the `date`
        ({"retry-after": "Wed, 16 Apr 2025 12:13:00 GMT"}, 0.0),  # already past
        ({"retry-after": "soon"}, None),
        ({}, None),
    ],
)
@pytest.mark.parametrize("fixture_page", [False, True])
def test_retry_after_is_read_in_seconds_or_as_an_http_date(
    client: BackMarketClient,
    fake: FakeBackMarket,
    retry_after: dict[str, str],
    expected: float | None,
    fixture_page: bool,
) -> None:
    html, headers = page("cloudflare__429")  # dated Wed, 16 Apr 2025 12:14:03 GMT
    if fixture_page:
        fake.reply(429, headers={**headers, **retry_after}, content=html.encode())
    else:
        fake.reply(429, headers={"date": headers["date"], **retry_after}, json=ENVELOPE)
    with pytest.raises(RateLimitedError) as raised:
        client.get_order(81234567)
    assert raised.value.retry_after == expected
    assert isinstance(raised.value, CloudflareBlockedError) is fixture_page


@pytest.mark.parametrize(
    ("failure", "expected", "sent"),
    [
        (httpx.ConnectTimeout, BackMarketTimeoutError, False),
        (httpx.PoolTimeout, BackMarketTimeoutError, False),
        (httpx.WriteTimeout, BackMarketTimeoutError, True),
        (httpx.ReadTimeout, BackMarketTimeoutError, True),
        (httpx.ConnectError, BackMarketConnectionError, False),
        (httpx.ReadError, BackMarketConnectionError, True),
        (httpx.RemoteProtocolError, BackMarketConnectionError, True),
        (httpx.DecodingError, BackMarketConnectionError, True),
    ],
)
def test_network_failures_become_connection_errors(
    client: BackMarketClient,
    fake: FakeBackMarket,
    failure: type[httpx.RequestError],
    expected: type[BackMarketConnectionError],
    sent: bool,
) -> None:
    fake.fail(failure)
    with pytest.raises(BackMarketConnectionError) as raised:
        client.ship_order(81234567, Shipment(tracking_number="6A12345678901"))

    assert type(raised.value) is expected
    assert raised.value.request_sent is sent
    assert "(POST /ws/orders/81234567)" in str(raised.value)
    assert ("may or may not have been applied" in str(raised.value)) is sent
    assert isinstance(raised.value.__cause__, failure)


def test_a_timeout_says_so_in_plain_words(client: BackMarketClient, fake: FakeBackMarket) -> None:
    fake.fail(httpx.ReadTimeout)
    with pytest.raises(BackMarketTimeoutError) as raised:
        client.get_order(81234567)
    assert str(raised.value).startswith(
        "Back Market did not answer in time while waiting for the answer (GET /ws/orders/81234567)."
    )


@pytest.mark.parametrize(
    ("headers", "body", "reason"),
    [
        (HTML, "<html><body>Maintenance</body></html>", "an answer that is not JSON"),
        ({}, "", "an answer that is not JSON"),
        (JSON, "{not json", "an answer that is not JSON"),
        (JSON, json.dumps({"order_id": 81234567}), "JSON that is not a valid Order (state: "),
        (JSON, json.dumps([]), "JSON that is not a valid Order (body: "),
    ],
)
def test_a_success_that_is_not_an_order_is_an_error_too(
    client: BackMarketClient, fake: FakeBackMarket, headers: dict[str, str], body: str, reason: str
) -> None:
    fake.reply(200, headers=headers, content=body.encode())
    with pytest.raises(UnexpectedResponseError) as raised:
        client.get_order(81234567)
    assert f"Back Market answered HTTP 200 to GET /ws/orders/81234567 with {reason}" in str(
        raised.value
    )
    assert raised.value.__cause__ is None  # no validation dump with customers' data


def test_an_unreadable_order_does_not_leak_customer_data(
    client: BackMarketClient, fake: FakeBackMarket
) -> None:
    order = fixture("order__single_line")
    order["orderlines"][0]["state"] = 42
    fake.reply(json=order)
    with pytest.raises(UnexpectedResponseError) as raised:
        client.get_order(81234567)
    assert "orderlines.0.state" in str(raised.value)
    assert "Jeanne" not in str(raised.value)


# --- the token never leaks --------------------------------------------------------------------


def _echoing_failures() -> list[tuple[int | type[httpx.RequestError], dict[str, str], str]]:
    """Answers that echo the token back in every way a server could."""
    escaped = TOKEN.replace("/", "\\/")
    echo = {
        "error": {"code": "auth", "message": f"Invalid token Basic {TOKEN}"},
        "requestId": TOKEN,
    }
    statuses = [400, 401, 403, 404, 409, 422, 429, 500, 503]
    failures: list[tuple[int | type[httpx.RequestError], dict[str, str], str]] = [
        (status, JSON, json.dumps(echo)) for status in statuses
    ]
    failures += [(status, HTML, f"<html><p>{TOKEN}</p></html>") for status in statuses]
    failures += [
        (401, JSON, '{"error": {"code": "auth", "message": "bad token ' + escaped + '"}}'),
        (400, {"content-type": "text/plain"}, "x" * 290 + TOKEN),  # cut in the middle of it
        (200, HTML, f"<html>{TOKEN}</html>"),
        (httpx.ConnectError, {}, ""),
        (httpx.ReadTimeout, {}, ""),
    ]
    return failures


def test_the_token_is_never_in_errors_or_logs(
    client: BackMarketClient, fake: FakeBackMarket, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    errors: list[BackMarketError] = []
    fake.reply(json=fixture("order__single_line"))
    client.get_order(81234567)
    for answer, headers, body in _echoing_failures():
        if isinstance(answer, int):
            fake.reply(answer, headers=headers, content=body.encode())
        else:
            fake.fail(answer)
        with pytest.raises(BackMarketError) as raised:
            client.get_order(81234567)
        errors.append(raised.value)

    assert len(errors) == len(_echoing_failures())
    for error in errors:
        for text in (str(error), repr(error), error.message, *map(str, vars(error).values())):
            assert TOKEN not in text
            assert TOKEN[:40] not in text
            assert TOKEN.replace("/", "\\/") not in text
    assert "Authorization" not in caplog.text
    assert TOKEN[:20] not in caplog.text


def test_calls_are_logged_with_status_duration_and_cf_ray(
    client: BackMarketClient, fake: FakeBackMarket, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="shopify_bm.backmarket")
    fake.reply(json=fixture("order__single_line"), headers={"cf-ray": "8f1e2d3c4b5a6978-CDG"})
    fake.reply(json=fixture("order__shipped"))
    client.get_order(81234567)
    client.ship_order(81234567, Shipment(tracking_number="6A12345678901"))

    read, write = (r for r in caplog.records if r.name == "shopify_bm.backmarket")
    assert read.levelno == logging.DEBUG
    assert read.getMessage().startswith("Back Market GET /ws/orders/81234567 -> 200 in ")
    assert read.getMessage().endswith(" ms (cf-ray 8f1e2d3c4b5a6978-CDG)")
    assert write.levelno == logging.INFO  # writes change Back Market: worth seeing by default
    assert write.getMessage().startswith("Back Market POST /ws/orders/81234567 -> 200 in ")


def test_a_network_failure_is_logged_without_details_that_could_hold_secrets(
    client: BackMarketClient, fake: FakeBackMarket, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="shopify_bm.backmarket")
    fake.fail(httpx.ConnectError)
    with pytest.raises(BackMarketConnectionError):
        client.get_order(81234567)
    (record,) = caplog.records
    assert record.getMessage().startswith("Back Market GET /ws/orders/81234567 failed after ")
    assert record.getMessage().endswith(" ms: ConnectError")


def test_each_call_is_sent_once_however_it_fails(
    client: BackMarketClient, fake: FakeBackMarket
) -> None:
    for answer, headers, body in _echoing_failures():
        if isinstance(answer, int):
            fake.reply(answer, headers=headers, content=body.encode())
        else:
            fake.fail(answer)
        with pytest.raises(BackMarketError):
            client.get_order(81234567)
    assert len(fake.requests) == len(_echoing_failures())  # no retries inside the client
