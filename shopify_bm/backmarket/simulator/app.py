"""The simulator over HTTP: Cloudflare in front, injected faults, then Back Market's API.

A request goes through, in order: Cloudflare's 429s (limit and forced bursts), the WAF's 403s,
latency, a hang, a 5xx, then the origin (User-Agent, token, route, rules). Writes that succeed
may still lose their answer (the "ambiguous" fault). Every request outside `/_sim/` is logged.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import re
import socket
import threading
import time
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import urlencode

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from shopify_bm.backmarket.simulator.control import ControlApi
from shopify_bm.backmarket.simulator.faults import FaultDraw, Faults
from shopify_bm.backmarket.simulator.observations import RequestRecord
from shopify_bm.backmarket.simulator.pages import parse_query
from shopify_bm.backmarket.simulator.rules import ERROR_CODES, ApiError
from shopify_bm.backmarket.simulator.state import Admission, BackMarketSimulator

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from _typeshed.wsgi import StartResponse, WSGIEnvironment

# `BM-<company>-<integration>;<email>`, as Back Market asks of every integration.
USER_AGENT = re.compile(r"BM-[^;]+-[^;]+;[^;@\s]+@[^;@\s]+\.[^;@\s]+")
CHALLENGE_PATH = "/cdn-cgi/challenge-platform/h/b/orchestrate/chl_page/v1"
_WRITES = frozenset({"POST", "PATCH"})
_ROUTES = Map(
    [
        Rule("/ws/orders", endpoint="list_orders", methods=["GET"]),
        Rule("/ws/orders/<int:order_id>", endpoint="get_order", methods=["GET"]),
        Rule("/ws/orders/<int:order_id>", endpoint="update_order", methods=["POST"]),
        Rule("/ws/orderlines/<int:line_id>", endpoint="patch_orderline", methods=["PATCH"]),
    ]
)
_CLOUDFLARE_PAGES = {
    403: ("Attention Required! | Cloudflare", "Sorry, you have been blocked"),
    429: ("Access denied | Cloudflare", "Error 1015: You are being rate limited"),
    502: ("Bad gateway | Cloudflare", "Error code 502: Bad gateway"),
    503: ("Service unavailable | Cloudflare", "Error code 503: Service temporarily unavailable"),
}


class SimulatorApp:
    """The WSGI application of one simulator; `/_sim/` is its control API."""

    def __init__(self, simulator: BackMarketSimulator) -> None:
        self.simulator = simulator
        self._control = ControlApi(simulator)
        self._released = threading.Event()
        self._numbers = itertools.count(1)

    def release_hangs(self) -> None:
        """End every hang now and skip those to come, so a stopping server stops at once."""
        self._released.set()

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Answer one request; a dropped connection raises past the WSGI server's handler."""
        request = Request(environ)
        if request.path.startswith("/_sim/"):
            response = self._control(request)
        else:
            answer = self._answer(request)
            if answer is None:
                _drop(environ)
            response = answer
        response.headers.setdefault("CF-RAY", self._ray())
        return response(environ, start_response)

    def _answer(self, request: Request) -> Response | None:
        token = _token(request)
        body, readable = _json_body(request)
        admission = self.simulator.admit(token, write=request.method in _WRITES)
        response, fault = self._respond(request, token, body, readable, admission)
        path = request.path + (f"?{request.query_string.decode()}" if request.query_string else "")
        status = response.status_code if response else None
        self.simulator.record(
            RequestRecord(
                seq=0,
                method=request.method,
                path=path,
                seller=token,
                status=status,
                fault=fault,
                received_monotonic=admission.received_monotonic,
                received_wall=admission.received_wall,
                body=body,
            )
        )
        return response

    def _respond(
        self,
        request: Request,
        token: str | None,
        body: Any,
        readable: bool,
        admission: Admission,
    ) -> tuple[Response | None, str | None]:
        """The answer (None: drop the connection) and the name of the fault that shaped it."""
        blocked = self._cloudflare(admission)
        if blocked:
            return blocked
        draw, faults = admission.draw, admission.faults
        if draw.delay:
            time.sleep(draw.delay)
        if draw.hang and self._hang_then_drop(faults):
            return None, "timeout"
        if draw.error_status:
            return self._server_error(draw), "error"
        response = self._api(request, token, body, readable)
        if not (draw.ambiguous and response.status_code < 300):
            return response, "timeout" if draw.hang else None
        if faults.ambiguous_mode == "error":
            return self._error(ApiError(500, "Internal server error")), "ambiguous"
        return (None if self._hang_then_drop(faults) else response), "ambiguous"

    def _cloudflare(self, admission: Admission) -> tuple[Response, str] | None:
        """Cloudflare's 429 or WAF 403, answered at once, before the origin sees the request."""
        if admission.rejection:
            return self._too_many(admission), admission.rejection
        waf = admission.draw.waf
        if waf == "waf_html":
            return self._cloudflare_page(403), waf
        if waf == "waf_challenge":
            challenge = {"code": "bot-need-challenge", "message": "Forbidden"}
            return _json({"errors": [challenge | {"challengePath": CHALLENGE_PATH}]}, 403), waf
        return None

    def _api(self, request: Request, token: str | None, body: Any, readable: bool) -> Response:
        """The origin: Back Market's own checks and routes."""
        try:
            if not USER_AGENT.fullmatch(request.headers.get("User-Agent", "").strip()):
                raise ApiError(403, "User-Agent must be BM-<company>-<integration>;<contact email>")
            if token is None or not self.simulator.has_seller(token):
                raise ApiError(401, "Invalid or missing token: use Authorization: Basic <token>")
            endpoint, args = _ROUTES.bind_to_environ(request.environ).match()
            if request.method in _WRITES and not readable:
                raise ApiError(400, "malformed JSON body")
            return _json(self._route(endpoint, args, request, token, body))
        except ApiError as error:
            return self._error(error)
        except HTTPException as error:
            code = error.code or 400
            return self._error(ApiError(code, error.name))

    def _route(
        self, endpoint: str, args: Mapping[str, Any], request: Request, token: str, body: Any
    ) -> Any:
        simulator = self.simulator
        if endpoint == "list_orders":
            query = parse_query(request.args)
            count, orders, has_next = simulator.list_orders(token, query)
            return {
                "count": count,
                "next": _page_url(request, query.page + 1) if has_next else None,
                "previous": _page_url(request, query.page - 1) if query.page > 1 else None,
                "results": orders,
            }
        if endpoint == "get_order":
            return simulator.get_order(token, args["order_id"])
        if endpoint == "update_order":
            return simulator.update_order(token, args["order_id"], body)
        return simulator.patch_orderline(token, args["line_id"], body)

    def _hang_then_drop(self, faults: Faults) -> bool:
        """Hang like an unresponsive origin; True when the connection should then be dropped."""
        self._released.wait(faults.hang_seconds)
        return faults.after_hang == "drop"

    def _too_many(self, admission: Admission) -> Response:
        limit = self.simulator.rate_limit
        if limit.html:
            response = self._cloudflare_page(429)
        else:
            response = self._error(ApiError(429, "Too many requests"))
        if limit.retry_after:
            response.headers["Retry-After"] = str(max(math.ceil(admission.retry_after), 1))
        return response

    def _server_error(self, draw: FaultDraw) -> Response:
        status = draw.error_status or 500
        if draw.cloudflare_page:
            return self._cloudflare_page(status)
        return self._error(ApiError(status, ERROR_CODES.get(status, "error").replace("_", " ")))

    def _cloudflare_page(self, status: int) -> Response:
        title, headline = _CLOUDFLARE_PAGES[status]
        ray = self._ray()
        html = (
            f"<!DOCTYPE html><html lang='en-US'><head><title>{title}</title></head>"
            f"<body><h1>{headline}</h1><p>Cloudflare Ray ID: {ray}</p></body></html>"
        )
        response = Response(html, status, content_type="text/html; charset=UTF-8")
        response.headers["CF-RAY"] = ray
        return response

    def _error(self, error: ApiError) -> Response:
        """Back Market's `ErrorResponseV1` envelope."""
        envelope = {
            "error": {
                "code": error.code,
                "message": error.message,
                "data": {},
                "docLink": "https://api.backmarket.dev/",
                "target": None,
            },
            "requestId": f"sim-{next(self._numbers):010d}",
        }
        return _json(envelope, error.status)

    def _ray(self) -> str:
        # Looks random, stays reproducible, and takes nothing from the fault generator.
        return f"{next(self._numbers) * 0x9E3779B97F4A7C15 % 2**64:016x}-CDG"


def _token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return (token.strip() or None) if scheme.lower() == "basic" else None


def _json_body(request: Request) -> tuple[Any, bool]:
    """The parsed body (None without one) and whether it could be read."""
    if request.method not in _WRITES:
        return None, True
    try:
        return json.loads(request.get_data()), True
    except (ValueError, RecursionError):
        return None, False


def _json(payload: Any, status: int = 200) -> Response:
    return Response(json.dumps(payload), status, content_type="application/json")


def _page_url(request: Request, page: int) -> str:
    """The absolute URL of another page, keeping the other parameters."""
    args = request.args.copy()
    args["page"] = str(page)
    return f"{request.base_url}?{urlencode(list(args.items(multi=True)))}"


def _drop(environ: WSGIEnvironment) -> NoReturn:
    """Close the connection without an answer; the WSGI server ignores this error."""
    connection = environ.get("werkzeug.socket")
    if isinstance(connection, socket.socket):
        with contextlib.suppress(OSError):  # the client may have given up already
            connection.shutdown(socket.SHUT_RDWR)
    raise ConnectionAbortedError("connection dropped by the simulator")
