"""Typed client of Back Market's seller API: one method per call, one error class per failure.

The caller owns the `httpx.Client` (base URL, transport, timeouts) and the retry policy, which
lives in durable job rows: this client sends each request once, and turns any failure into
exactly one `BackMarketError` whose message never contains the token.
"""

from __future__ import annotations

import logging
import re
import time
import unicodedata
from collections.abc import Iterator, Mapping
from datetime import datetime
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx
from pydantic import BaseModel, SecretStr, ValidationError

from shopify_bm.backmarket.errors import BackMarketConnectionError, BackMarketTimeoutError
from shopify_bm.backmarket.models import (
    IMEI_PATTERN,
    Order,
    OrderlineImei,
    OrderLineState,
    OrderPage,
    OrderState,
    Shipment,
    to_rfc3339,
)
from shopify_bm.backmarket.responses import (
    MAYBE_APPLIED,
    decode_json,
    redact,
    status_error,
    unexpected_response,
)

logger = logging.getLogger("shopify_bm.backmarket")

# Real integrations wait 20-60 s for an answer; connecting should never take long.
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0, pool=5.0)
MAX_PAGE_SIZE = 50  # the largest `page-size` Back Market serves (reference §3.1)
_TOKEN = re.compile(r"[!-~]+")  # printable ASCII, no spaces: what a header value can carry
_LOCALE = re.compile(r"[a-z]{2}-[a-z]{2}")
_EMAIL = re.compile(r"[^\s;@]+@[^\s;@]+")

# Failures where the request certainly never reached Back Market, so nothing was applied.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)
_TIMEOUT_PHASES: dict[type[httpx.TimeoutException], str] = {
    httpx.ConnectTimeout: "while connecting",
    httpx.PoolTimeout: "while waiting for a free connection",
    httpx.WriteTimeout: "while sending the request",
    httpx.ReadTimeout: "while waiting for the answer",
}

_ModelT = TypeVar("_ModelT", bound=BaseModel)


def user_agent(company: str, contact_email: str) -> str:
    """The mandatory `BM-<company>-shopify-bm;<email>`, with the company reduced to [A-Za-z0-9-]."""
    ascii_name = unicodedata.normalize("NFKD", company).encode("ascii", "ignore").decode()
    name = re.sub(r"[^A-Za-z0-9]+", "-", ascii_name).strip("-") or "Merchant"
    email = contact_email.strip()
    if not email.isascii() or not _EMAIL.fullmatch(email):
        raise ValueError(
            f"{contact_email!r} is not a usable contact email; Back Market requires one in the "
            "User-Agent of every call."
        )
    return f"BM-{name}-shopify-bm;{email}"


class BackMarketClient:
    """Reads Back Market orders and marks them accepted or shipped, with IMEIs.

    Each call is sent once: Back Market has no idempotency key, so only the caller, who records
    which steps are done, can decide whether repeating a write is safe.
    """

    def __init__(
        self,
        http: httpx.Client,
        *,
        token: SecretStr,
        company: str,
        contact_email: str,
        locale: str = "fr-fr",
    ) -> None:
        secret = token.get_secret_value().strip()
        if not _TOKEN.fullmatch(secret):
            raise ValueError(
                "The Back Market API token is empty or has characters a token cannot have; copy "
                "it again from the Back Market Back Office (Options > Integrations)."
            )
        locale = locale.strip().lower()
        if not _LOCALE.fullmatch(locale):
            raise ValueError(f"{locale!r} is not a Back Market locale such as 'fr-fr' or 'en-gb'.")
        self._http = http
        self._owns_http = False
        self._secret = secret
        self._headers = {
            "Authorization": f"Basic {secret}",  # verbatim: the Back Office token is pre-encoded
            "User-Agent": user_agent(company, contact_email),
            "Accept-Language": locale,
            "Accept": "application/json",
            "Content-Type": "application/json",
        }

    @classmethod
    def build(
        cls,
        base_url: str,
        token: SecretStr,
        company: str,
        contact_email: str,
        locale: str = "fr-fr",
        *,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> BackMarketClient:
        """A client with its own `httpx.Client`; a bare number is the read/write timeout."""
        if not isinstance(timeout, httpx.Timeout):
            timeout = httpx.Timeout(timeout, connect=5.0, pool=5.0)
        http = httpx.Client(base_url=base_url, timeout=timeout, transport=transport)
        try:
            client = cls(
                http, token=token, company=company, contact_email=contact_email, locale=locale
            )
        except ValueError:
            http.close()
            raise
        client._owns_http = True
        return client

    def close(self) -> None:
        """Close the HTTP client if `build` made it; an injected one stays its owner's to close."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def get_order(self, order_id: int) -> Order:
        """The order as Back Market sees it now: read it before every write, and after doubt."""
        return self._call("GET", f"/ws/orders/{order_id}", Order)

    def accept_lines(self, order_id: int, sku: str) -> Order:
        """Accept the order's lines of one SKU (state 1 to 2); Back Market requires the SKU."""
        if not sku.strip():
            raise ValueError("Accepting Back Market lines needs their SKU (the line's listing).")
        body = {"order_id": order_id, "new_state": OrderLineState.ACCEPTED.value, "sku": sku}
        return self._call("POST", f"/ws/orders/{order_id}", Order, body=body)

    def ship_order(self, order_id: int, shipment: Shipment) -> Order:
        """Mark every line of the order shipped (state 3): no `sku`, one order is one parcel."""
        body = {
            "order_id": order_id,
            "new_state": OrderLineState.SHIPPED.value,
            **shipment.model_dump(mode="json", exclude_none=True),
        }
        return self._call("POST", f"/ws/orders/{order_id}", Order, body=body)

    def set_orderline_imei(self, orderline_id: int, imei: str) -> OrderlineImei:
        """Register a line's IMEI. Back Market never lets it change, so check the shape first."""
        if not re.fullmatch(IMEI_PATTERN, imei):
            raise ValueError(f"{imei!r} is not an IMEI of 15 digits.")
        path = f"/ws/orderlines/{orderline_id}"
        return self._call("PATCH", path, OrderlineImei, body={"imei": imei})

    def list_orders(
        self,
        state: OrderState | None = None,
        *,
        page_size: int = MAX_PAGE_SIZE,
        date_creation: datetime | None = None,
        date_modification: datetime | None = None,
        country_code: str | None = None,
    ) -> Iterator[Order]:
        """Every order matching the filters, page by page, fetched as the caller iterates.

        Back Market never lists orders in states 0 and 8. The dates are lower bounds. Pages are
        counted rather than following `next`, so the token only ever goes to our base URL.
        """
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}.")
        params: dict[str, str | int] = {"page-size": page_size}
        if state is not None:
            params["state"] = state.value
        if date_creation is not None:
            params["date_creation"] = to_rfc3339(date_creation)
        if date_modification is not None:
            params["date_modification"] = to_rfc3339(date_modification)
        if country_code is not None:
            params["country_code"] = country_code
        return self._pages(params)

    def _pages(self, params: Mapping[str, str | int]) -> Iterator[Order]:
        page = 1
        while True:
            result = self._call("GET", "/ws/orders", OrderPage, params={"page": page, **params})
            yield from result.results
            if result.next is None or not result.results:
                return
            page += 1

    def _call(
        self,
        method: str,
        path: str,
        model: type[_ModelT],
        *,
        params: Mapping[str, str | int] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> _ModelT:
        response = self._send(method, path, params, body)
        if not response.is_success:
            raise status_error(response, method, path, self._secret)
        is_json, payload = decode_json(response)
        if not is_json:
            what = "an answer that is not JSON"
            raise unexpected_response(response, method, path, self._secret, what)
        try:
            return model.model_validate(payload)
        except ValidationError as exc:
            # Summarised without the input values: the order holds customers' addresses.
            problems = "; ".join(
                f"{'.'.join(str(part) for part in error['loc']) or 'body'}: {error['msg']}"
                for error in exc.errors(include_url=False, include_input=False)[:3]
            )
            reason = f"JSON that is not a valid {model.__name__} ({problems})"
            raise unexpected_response(response, method, path, self._secret, reason) from None

    def _send(
        self,
        method: str,
        path: str,
        params: Mapping[str, str | int] | None,
        body: Mapping[str, Any] | None,
    ) -> httpx.Response:
        started = time.perf_counter()
        try:
            response = self._http.request(
                method, path, params=params, json=body, headers=self._headers
            )
        except httpx.TimeoutException as exc:
            _log_failure(method, path, started, exc)
            sent = not isinstance(exc, _NOT_SENT)
            phase = _TIMEOUT_PHASES.get(type(exc), "while waiting for the answer")
            message = f"Back Market did not answer in time {phase} ({method} {path})."
            raise BackMarketTimeoutError(
                f"{message} {MAYBE_APPLIED}" if sent else f"{message} Nothing was sent.",
                request_sent=sent,
            ) from exc
        except httpx.RequestError as exc:
            _log_failure(method, path, started, exc)
            sent = not isinstance(exc, _NOT_SENT)
            what = "The connection to Back Market broke" if sent else "Could not reach Back Market"
            reason = redact(str(exc), self._secret) or type(exc).__name__
            message = f"{what} ({method} {path}): {reason}."
            raise BackMarketConnectionError(
                f"{message} {MAYBE_APPLIED}" if sent else message, request_sent=sent
            ) from exc
        elapsed_ms = (time.perf_counter() - started) * 1000
        level = logging.DEBUG if method == "GET" and response.is_success else logging.INFO
        logger.log(
            level,
            "Back Market %s %s -> %s in %.0f ms (cf-ray %s)",
            method,
            path,
            response.status_code,
            elapsed_ms,
            response.headers.get("cf-ray", "-"),
        )
        return response


def _log_failure(method: str, path: str, started: float, exc: httpx.RequestError) -> None:
    elapsed_ms = (time.perf_counter() - started) * 1000
    logger.info(
        "Back Market %s %s failed after %.0f ms: %s", method, path, elapsed_ms, type(exc).__name__
    )
