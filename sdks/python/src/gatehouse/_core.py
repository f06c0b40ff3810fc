"""What the sync and async clients share: how each API call is described,
how an answer becomes a model or an error, and when a call may be retried.

The clients only move bytes; everything that decides what an answer means
is here, once, so both clients fail closed in exactly the same way.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from ._version import __version__
from .errors import GateError, GateInvalidRequest, GateProtocolError, GateRequestError, GateUnavailable
from .models import ActionBody, ApprovedAction, ErrorBody

T = TypeVar("T")

DEFAULT_URL = "http://127.0.0.1:8080"
DEFAULT_TIMEOUT = 10.0
DEFAULT_MAX_RETRIES = 2
# The server answers a long-poll after at most 60 seconds (less with
# --max-wait); a longer wait is several long-polls.
MAX_SERVER_WAIT = 60
# However long the server asks a client to back off, one retry waits at most
# this long: a caller that wants to wait longer retries itself.
MAX_RETRY_DELAY = 30.0

USER_AGENT = f"gatehouse-sdk-python/{__version__}"

ActionLike = ActionBody | ApprovedAction | Mapping[str, Any]
"""An action: ``tool_name`` (or ``action``), ``subject`` and ``payload``."""


@dataclass(frozen=True)
class Call(Generic[T]):
    """One API call: what to send, and what the answer must be."""

    method: str
    path: str
    parse: type[T]
    """The model of the answer; ``str`` for a text answer."""
    body: BaseModel | None = None
    params: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    retry_safe: bool = False
    """Whether sending the call twice is harmless (reads, and requests
    carrying an idempotency key)."""
    long_poll: float = 0.0
    """Seconds the server may hold the answer back, on top of the timeout."""

    def content(self) -> bytes | None:
        if self.body is None:
            return None
        return self.body.model_dump_json(exclude_none=True, by_alias=True).encode()


def path(template: str, **ids: str) -> str:
    """A path with each id percent-encoded, so an id can never change the route."""
    return template.format(**{k: quote(v, safe="") for k, v in ids.items()})


def settings_from_env(url: str | None, api_key: str | None) -> tuple[str, str]:
    """The URL and key from the arguments, else from ``GATEHOUSE_URL`` and
    ``GATEHOUSE_API_KEY`` (the variables the ``gatehouse`` CLI reads)."""
    url = url or os.environ.get("GATEHOUSE_URL") or DEFAULT_URL
    key = api_key or os.environ.get("GATEHOUSE_API_KEY")
    if not key:
        raise GateError(
            "no API key: pass api_key= or set GATEHOUSE_API_KEY (create one with "
            "`gatehouse keys create --role agent --name NAME`)"
        )
    return url, key


def base_headers(api_key: str | None, extra: Mapping[str, str] | None) -> dict[str, str]:
    headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    if extra:
        headers.update(extra)
    return headers


def normalize_url(url: str) -> str:
    url = url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise GateError(f"the Gatehouse URL must start with http:// or https://, not {url!r}")
    return url


def timeout_for(call: Call[Any], timeout: float) -> httpx.Timeout:
    return httpx.Timeout(timeout, read=timeout + call.long_poll)


def build_request(
    client: httpx.Client | httpx.AsyncClient,
    base_url: str,
    headers: Mapping[str, str],
    call: Call[Any],
    timeout: float,
) -> httpx.Request:
    """The HTTP request for ``call``. The URL is the client's URL joined with
    the path as text, so a gate served under a path prefix keeps it."""
    all_headers = dict(headers)
    all_headers.update(call.headers)
    content = call.content()
    if content is not None:
        all_headers["Content-Type"] = "application/json"
    return client.build_request(
        call.method,
        base_url + call.path,
        params=call.params or None,
        content=content,
        headers=all_headers,
        timeout=timeout_for(call, timeout),
    )


def parse_response(call: Call[T], response: httpx.Response) -> T:
    """The answer as the call's model, or the error it means."""
    if response.status_code not in (200, 201):
        raise error_from_response(response)
    if call.parse is str:
        return response.text  # type: ignore[return-value]
    try:
        return call.parse.model_validate_json(response.content)  # type: ignore[attr-defined,no-any-return]
    except ValidationError as e:
        raise GateProtocolError(
            f"{call.method} {call.path} answered {response.status_code} with a body that is not "
            f"a valid {call.parse.__name__}: {e}"
        ) from None


def error_from_response(response: httpx.Response) -> GateError:
    """The error an unsuccessful answer stands for: 408, 429 and 5xx are
    :class:`GateUnavailable`, other statuses :class:`GateRequestError`."""
    status = response.status_code
    code: str | None = None
    message = response.reason_phrase or "error"
    request_id = response.headers.get("x-request-id")
    reasons = None
    try:
        body = ErrorBody.model_validate_json(response.content)
        code, message = body.error.code, body.error.message
        request_id = body.error.request_id or request_id
        reasons = body.error.reasons
    except (ValidationError, ValueError):
        # Not the documented error body (a proxy in between, say): the
        # status still decides, and the text is kept for people.
        text = response.text.strip()
        if text:
            message = text[:500]
    retry_after = _retry_after(response.headers.get("retry-after"))
    request = response.request
    text = f"{request.method} {request.url.path} answered {status}"
    text += f" {code}: {message}" if code else f": {message}"
    kwargs: dict[str, Any] = dict(
        status_code=status, code=code, request_id=request_id, reasons=reasons, retry_after=retry_after
    )
    if status in (408, 429) or status >= 500:
        return GateUnavailable(text, **kwargs)
    if 200 <= status < 300:
        return GateProtocolError(f"{text}, which this call never answers")
    if 300 <= status < 400:
        # Redirects are not followed: a gate that moved is a configuration
        # error, and following one could send the key elsewhere.
        return GateProtocolError(f"{text} (redirect to {response.headers.get('location')})")
    return GateRequestError(text, **kwargs)


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def transport_error(call: Call[Any], exc: httpx.HTTPError) -> GateUnavailable:
    kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "failed"
    return GateUnavailable(f"{call.method} {call.path} {kind}: {exc!r}")


def never_sent(exc: httpx.HTTPError) -> bool:
    """Whether the request certainly never reached the server (so any call may be retried)."""
    return isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout))


def retry_delay(call: Call[Any], error: GateError, attempt: int, max_retries: int, sent: bool) -> float | None:
    """Seconds to wait before trying ``call`` again after ``error``, or None
    to give up. Only unavailability is retried, and a call that may have
    reached the server only when sending it twice is harmless."""
    if attempt >= max_retries or not isinstance(error, GateUnavailable):
        return None
    if sent and not call.retry_safe:
        return None
    if error.retry_after is not None:
        return min(error.retry_after, MAX_RETRY_DELAY)
    # Exponential backoff with jitter, so clients that failed together do
    # not come back together.
    return min(0.25 * (1 << attempt) * (1 + random.random()), MAX_RETRY_DELAY)


def action_body(action: ActionLike) -> ActionBody:
    """An action in the redeem shape, from a model or a mapping that names
    the tool as ``tool_name`` or ``action``."""
    if isinstance(action, ActionBody):
        return action
    if isinstance(action, ApprovedAction):
        return ActionBody(tool_name=action.tool_name, subject=action.subject, payload=action.payload)
    data = dict(action)
    if "tool_name" not in data and "action" in data:
        data["tool_name"] = data.pop("action")
    # An approved action as a mapping (``approved_action.model_dump()``) also
    # carries its hash and whether it was amended; the action is the rest.
    data.pop("action_hash", None)
    data.pop("amended", None)
    try:
        return ActionBody.model_validate(data)
    except ValidationError as e:
        raise GateInvalidRequest(f"not an action (tool_name or action, subject, payload): {e}") from None


def json_object(value: Any, what: str) -> dict[str, Any]:
    """``value`` as a JSON object that survives the trip to the server unchanged."""
    if not isinstance(value, Mapping):
        raise GateInvalidRequest(f"{what} must be a JSON object (a mapping), not {type(value).__name__}")
    try:
        return dict(json.loads(json.dumps(dict(value), allow_nan=False)))
    except (TypeError, ValueError) as e:
        raise GateInvalidRequest(f"{what} is not JSON: {e}") from None


M = TypeVar("M", bound=BaseModel)


def body(model: type[M], **fields: Any) -> M:
    """A request body, checked against the API's schema before it is sent."""
    try:
        return model.model_validate(fields)
    except ValidationError as e:
        raise GateInvalidRequest(str(e)) from None
