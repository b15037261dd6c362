"""Reading Back Market's answers: JSON or not, Back Market or Cloudflare, and which error.

Every text taken from an answer goes through `redact` first: a server may echo the token back.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from shopify_bm.backmarket.errors import (
    AuthenticationError,
    BackMarketStatusError,
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
from shopify_bm.backmarket.retry import parse_retry_after

EXCERPT_CHARS = 300
MAYBE_APPLIED = "A change sent may or may not have been applied; read the order again first."
_DETAIL_CHARS = 200
_REDACTED = "[redacted]"
_STATUS_ERRORS: dict[int, type[BackMarketStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: UnprocessableEntityError,
    429: RateLimitedError,
}


def redact(text: str, secret: str) -> str:
    """`text` without `secret`, also in its JSON-escaped form (some servers write "/" as "\\/")."""
    for form in (secret, secret.replace("/", "\\/")):
        text = text.replace(form, _REDACTED)
    return text


def decode_json(response: httpx.Response) -> tuple[bool, object]:
    """(True, data) when the body is declared JSON and parses; never parses an HTML page."""
    media_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        return False, None
    try:
        return True, response.json()
    except ValueError:
        return False, None


def status_error(
    response: httpx.Response, method: str, path: str, secret: str
) -> BackMarketStatusError:
    """The error for a non-2xx answer, its message in plain words with Back Market's own."""
    status = response.status_code
    is_json, payload = decode_json(response)
    if _is_cloudflare_block(response, is_json, payload):
        error_class: type[BackMarketStatusError] = CloudflareBlockedError
    elif status >= 500:
        error_class = ServerError
    else:
        error_class = _STATUS_ERRORS.get(status, BackMarketStatusError)
    text = " ".join(response.text.split())
    html = "text/html" in response.headers.get("content-type", "").lower() or text[:1] == "<"
    detail = None
    if error_class is not CloudflareBlockedError:
        detail = _detail(payload) if is_json else (None if html else text)
    cf_ray = response.headers.get("cf-ray")
    message = f"{error_class.summary} (HTTP {status} on {method} {path}"
    message += f", cf-ray {cf_ray})" if cf_ray else ")"
    if detail and detail.strip(". "):
        message += f": {_cut(redact(detail, secret), _DETAIL_CHARS).rstrip('. ')}"
    message = f"{message}. {error_class.advice}".strip()
    request_id = _request_id(payload)
    excerpt = _cut(redact(text, secret), EXCERPT_CHARS)
    request_id = redact(request_id, secret) if request_id else None
    if issubclass(error_class, RateLimitedError):
        return error_class(
            message,
            status_code=status,
            body_excerpt=excerpt,
            request_id=request_id,
            cf_ray=cf_ray,
            retry_after=parse_retry_after(
                response.headers.get("retry-after"), _server_time(response)
            ),
        )
    return error_class(
        message, status_code=status, body_excerpt=excerpt, request_id=request_id, cf_ray=cf_ray
    )


def unexpected_response(
    response: httpx.Response, method: str, path: str, secret: str, what: str
) -> UnexpectedResponseError:
    """The error for a success answer that is not what the call returns."""
    return UnexpectedResponseError(
        f"Back Market answered HTTP {response.status_code} to {method} {path} with {what}. "
        f"{MAYBE_APPLIED}",
        status_code=response.status_code,
        body_excerpt=_cut(redact(" ".join(response.text.split()), secret), EXCERPT_CHARS),
        cf_ray=response.headers.get("cf-ray"),
    )


def _is_cloudflare_block(response: httpx.Response, is_json: bool, payload: object) -> bool:
    """Cloudflare's WAF, bot check or throttling, rather than Back Market's application.

    Every Back Market answer passes through Cloudflare and carries `cf-ray`, so the headers alone
    prove nothing: what counts is a 403/429/503 that is not Back Market's JSON, or the JSON
    `bot-need-challenge` of its bot management.
    """
    status = response.status_code
    if status == 403 and is_json:
        return "bot-need-challenge" in _error_codes(payload)
    if status == 403:
        return True  # Back Market's own 403s are JSON; anything else is the edge's page
    if status in (429, 503) and not is_json:
        headers = response.headers
        return (
            "text/html" in headers.get("content-type", "").lower()
            or headers.get("server", "").lower() == "cloudflare"
            or "cf-ray" in headers
        )
    return False


def _envelope_entries(payload: object) -> list[object]:
    """The `error` (V1) and `errors` (V2) entries of Back Market's error envelopes."""
    if not isinstance(payload, dict):
        return []
    entries = [payload.get("error")]
    errors = payload.get("errors")
    if isinstance(errors, list):
        entries.extend(errors)
    return entries


def _error_codes(payload: object) -> list[str]:
    return [
        str(entry["code"])
        for entry in _envelope_entries(payload)
        if isinstance(entry, dict) and entry.get("code") is not None
    ]


def _detail(payload: object) -> str | None:
    """What Back Market said went wrong, from whichever envelope it used."""
    if isinstance(payload, str):
        return payload  # some endpoints answer a bare JSON string, e.g. "sku not found"
    if not isinstance(payload, dict):
        return None
    messages = []
    for entry in _envelope_entries(payload):
        if isinstance(entry, str):
            messages.append(entry)
        elif isinstance(entry, dict) and entry.get("message"):
            code = entry.get("code")
            text = str(entry["message"]).strip().rstrip(".")
            messages.append(f"{text} ({code})" if code else text)
    for key in ("message", "detail"):
        if not messages and isinstance(payload.get(key), str):
            messages.append(payload[key])
    return "; ".join(messages) or None


def _request_id(payload: object) -> str | None:
    if isinstance(payload, dict) and payload.get("requestId") is not None:
        return str(payload["requestId"])
    return None


def _server_time(response: httpx.Response) -> datetime:
    """The response's `Date`, to read an HTTP-date `Retry-After` against the server's own clock."""
    try:
        when = parsedate_to_datetime(response.headers.get("date", ""))
    except (TypeError, ValueError):
        return datetime.now(UTC)
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
