"""Shared HTTP plumbing for the API clients: one retrying session, one error type, secret-free messages."""

from __future__ import annotations

import json
import re
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

RETRY_STATUSES = (429, 500, 502, 503, 504)
# A Retry-After of hours would stall a whole pipeline run; past this we give up sooner instead.
MAX_RETRY_AFTER_SECONDS = 300
_SECRET_PARAM = re.compile(r"(?i)([?&](?:key|api_key|\$\$app_token|%24%24app_token)=)[^&#\s'\"]*")


class SourceError(RuntimeError):
    """A remote source answered with something the pipeline cannot use."""


def redact(text: str) -> str:
    """Blank the values of `key`, `api_key` and `$$app_token` query params anywhere in `text`."""
    return _SECRET_PARAM.sub(r"\1***", text)


def make_session(retries: int = 5, backoff: float = 0.5, user_agent: str = "civicflow") -> requests.Session:
    retry = Retry(
        total=retries,
        connect=retries,
        read=retries,
        status=retries,
        backoff_factor=backoff,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=frozenset({"GET"}),
        respect_retry_after_header=True,
        retry_after_max=MAX_RETRY_AFTER_SECONDS,
        # Hand back the last response so the error can quote its status and body.
        raise_on_status=False,
    )
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = user_agent
    return session


def get(
    session: requests.Session, url: str, params: dict[str, Any] | str | None, timeout: float
) -> requests.Response:
    """GET with the session's retries; any failure left after them becomes a SourceError.

    `params` may be a pre-encoded query string, which requests appends verbatim.
    """
    try:
        response = session.get(url, params=params, timeout=timeout)
    except requests.exceptions.RetryError as exc:
        # Only sessions built with raise_on_status=True (not make_session's) end up here.
        raise SourceError(
            f"gave up on {redact(exc.request.url)} after {_configured_attempts(session, url)} attempts: "
            f"{_reason(exc)}"
        ) from None
    except requests.exceptions.RequestException as exc:
        target = redact(exc.request.url) if exc.request is not None else redact(url)
        raise SourceError(f"request to {target} failed after retries: {redact(str(exc))}") from None
    if not response.ok:
        attempts = len(response.raw.retries.history) + 1 if response.raw.retries else 1
        raise SourceError(
            f"HTTP {response.status_code} from {redact(response.url)} after {attempts} attempt(s): "
            f"{_excerpt(response.text)}"
        )
    return response


def get_json(session: requests.Session, url: str, params: dict[str, Any] | str | None, timeout: float) -> Any:
    """GET and decode JSON; None for 204 No Content (the Census API's answer to an empty query)."""
    response = get(session, url, params, timeout)
    if response.status_code == 204:
        return None
    try:
        return json.loads(response.content)
    except ValueError as exc:
        raise SourceError(
            f"malformed JSON from {redact(response.url)}: {exc}; body starts {_excerpt(response.text)}"
        ) from None


def _excerpt(text: str, limit: int = 200) -> str:
    flat = " ".join(text.split())
    return repr(redact(flat[:limit] + ("..." if len(flat) > limit else "")))


def _reason(exc: requests.exceptions.RetryError) -> str:
    # requests wraps urllib3's MaxRetryError, whose reason reads "too many 500 error responses".
    max_retry = exc.args[0] if exc.args else None
    return str(getattr(max_retry, "reason", None) or "retries exhausted")


def _configured_attempts(session: requests.Session, url: str) -> int | str:
    retry = session.get_adapter(url).max_retries
    return retry.total + 1 if isinstance(retry.total, int) else "the allowed"
