"""The HTTP edge of the Alpaca adapter: timeouts, retries disabled, failures described safely.

alpaca-py talks through one ``requests.Session`` per client, sets **no** timeout and re-sends
any request (POSTs included) up to three times after a 429 or 504. :func:`configure_client`
replaces that session with a :class:`TimeoutSession` and turns the SDK's own retry off, so
the adapter's policy (:mod:`.alpaca`) is the only one. Both touch private attributes of
alpaca-py's ``RESTClient`` (``_session``, ``_retry``, ``_use_raw_data``); they are checked,
and a missing attribute stops start-up rather than silently running without timeouts.

:func:`describe_api_error` reads alpaca-py's ``APIError`` without its ``code``/``message``
properties, which ``json.loads`` the body and raise on an HTML 502 page.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests
from alpaca.common.exceptions import APIError

from alchemiser_broker.exceptions import (
    BrokerAuthError,
    BrokerError,
    DuplicateClientOrderIdError,
    OrderNotFoundError,
    OrderRejectedError,
)
from alchemiser_common.errors import ConfigurationError

if TYPE_CHECKING:
    from requests.sessions import _Settings

__all__ = [
    "DUPLICATE_CLIENT_ORDER_ID_MESSAGE",
    "ApiFailure",
    "TimeoutSession",
    "classify_failure",
    "configure_client",
    "describe_api_error",
    "is_duplicate_client_order_id",
    "rate_limit_wait_s",
]

DUPLICATE_CLIENT_ORDER_ID_MESSAGE = "client_order_id must be unique"
_MAX_MESSAGE_CHARS = 300
_TAGS = re.compile(r"<[^>]+>")
_SPACES = re.compile(r"\s+")
_AUTH_WORDS = ("forbidden", "authoriz", "authentic", "api key", "access key")


class TimeoutSession(requests.Session):
    """A ``requests.Session`` whose requests default to ``timeout`` seconds.

    It reads the environment's proxy and CA-bundle settings (``HTTPS_PROXY``, ``NO_PROXY``,
    ``REQUESTS_CA_BUNDLE``, ...) once per origin (scheme, host and port) instead of on every
    request: requests walks the whole environment for them each time, which costs more than
    a loopback request to the paper exchange itself. A change of those variables after the
    first request to an origin is not seen (the service reads its settings at start-up).
    """

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.default_timeout = timeout
        self._environment: dict[tuple[str, str], _Settings] = {}

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        """Send a request; a call without ``timeout`` gets :attr:`default_timeout`."""
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.default_timeout
        return super().request(method, url, *args, **kwargs)

    def merge_environment_settings(
        self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> _Settings:
        """requests' own merge, remembered per origin for calls that set none of the four."""
        if not self.trust_env or proxies or any(x is not None for x in (stream, verify, cert)):
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        parts = urlsplit(url if isinstance(url, str) else bytes(url).decode())
        origin = (parts.scheme, parts.netloc)
        settings = self._environment.get(origin)
        if settings is None:
            settings = super().merge_environment_settings(url, {}, None, None, None)
            self._environment[origin] = settings
        merged = settings.copy()
        merged["proxies"] = dict(settings["proxies"])  # requests may add to it
        return merged


def configure_client(client: Any, timeout: float) -> None:
    """Give an alpaca-py REST client a timeout session and no built-in retries."""
    for attribute in ("_session", "_retry", "_use_raw_data"):
        if not hasattr(client, attribute):
            raise ConfigurationError(
                f"alpaca-py {type(client).__name__} has no {attribute}; this alpaca-py version "
                "is not supported by the adapter (timeouts could not be enforced)"
            )
    if not client._use_raw_data:
        raise ConfigurationError("the Alpaca adapter needs clients built with raw_data=True")
    old_session = client._session
    client._session = TimeoutSession(timeout)
    old_session.close()
    # RESTClient retries while ``retry > 0``: zero means one attempt, errors surface at once.
    client._retry = 0


@dataclass(frozen=True, slots=True)
class ApiFailure:
    """An HTTP error answer, read without trusting its body to be JSON."""

    status: int | None
    message: str
    headers: dict[str, str]

    @property
    def is_server_error(self) -> bool:
        """5xx, or no status at all (a broken answer)."""
        return self.status is None or self.status >= 500

    def __str__(self) -> str:
        return f"HTTP {self.status}: {self.message}"


def describe_api_error(err: APIError) -> ApiFailure:
    """Status, a short message and the headers of ``err``; safe for HTML and empty bodies."""
    status: int | None = None
    headers: dict[str, str] = {}
    response = getattr(err, "_http_error", None)
    response = getattr(response, "response", None)
    if response is not None:
        status = int(response.status_code)
        headers = {str(k): str(v) for k, v in response.headers.items()}
    body = str(err.args[0]) if err.args else ""
    return ApiFailure(status=status, message=_message_of(body), headers=headers)


def _message_of(body: str) -> str:
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and isinstance(parsed.get("message"), str):
        text: str = parsed["message"]
    else:
        text = _SPACES.sub(" ", _TAGS.sub(" ", body)).strip() or "(empty body)"
    return text[:_MAX_MESSAGE_CHARS]


def is_duplicate_client_order_id(failure: ApiFailure) -> bool:
    """Alpaca's observed answer to a reused client_order_id: 422 with a known message."""
    return failure.status == 422 and DUPLICATE_CLIENT_ORDER_ID_MESSAGE in failure.message.lower()


def classify_failure(what: str, failure: ApiFailure, *, write: bool, submit: bool) -> BrokerError:
    """The broker error for a definite (non-transient) HTTP failure of ``what``.

    A 403 on a write is a business rejection (Alpaca: insufficient buying power or qty)
    unless its message is about credentials; on a read it is an authentication failure.
    """
    message = f"{what}: {failure}"
    status = failure.status
    lowered = failure.message.lower()
    if submit and is_duplicate_client_order_id(failure):
        return DuplicateClientOrderIdError(message)
    if status == 401 or (
        status == 403 and (not write or any(word in lowered for word in _AUTH_WORDS))
    ):
        return BrokerAuthError(message)
    if status == 404:
        return OrderNotFoundError(message)
    if status is not None and 400 <= status < 500:
        return OrderRejectedError(message)
    return BrokerError(message)


def rate_limit_wait_s(failure: ApiFailure, now: float, default_s: float, cap_s: float) -> float:
    """Seconds to wait after a 429: ``Retry-After``, else ``X-Ratelimit-Reset``, capped."""
    lowered = {k.lower(): v for k, v in failure.headers.items()}
    wait = default_s
    try:
        if "retry-after" in lowered:
            wait = float(lowered["retry-after"])
        elif "x-ratelimit-reset" in lowered:
            wait = float(lowered["x-ratelimit-reset"]) - now
    except ValueError:
        wait = default_s
    return min(max(wait, 0.0), cap_s)
