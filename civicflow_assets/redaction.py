"""Secrets never reach a log: passwords in URLs and DSNs, API keys and tokens are masked in every log record.

`install()` wraps the process's log record factory, so the masking applies to every logger (ours, Dagster's
`context.log`, urllib3's retry warnings, which quote the request URL with its `key=` parameter, ckanapi's)
before any handler sees the record. It masks by shape (a URL's password, `password=` in a DSN, `key=`,
`api_key=` and `token=` query parameters, JWTs such as CKAN API tokens) and by value (whatever the process's
secret-named environment variables hold: *_PASSWORD, *_TOKEN, *_KEY, *_SECRET).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

MASK = "***"
_URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^/\s:@]+:)[^@\s/]+@", re.IGNORECASE)
_DSN_PASSWORD = re.compile(r"(\bpassword\s*=\s*)('[^']*'|[^\s'\"]+)", re.IGNORECASE)
_QUERY_SECRET = re.compile(
    r"(?i)([?&](?:key|api_?key|token|access_token|\$\$app_token|%24%24app_token)=)[^&#\s'\"]+")
_JWT = re.compile(r"\beyJ[\w-]{8,}\.[\w-]{8,}\.[\w-]{8,}")
_SECRET_NAME = re.compile(r"(?:^|_)(?:PASSWORD|PASSWD|TOKEN|SECRET|KEY)(?:$|_)")
MIN_SECRET_LENGTH = 6  # shorter values ("", "x") would mask ordinary words


def environment_secrets(environ: Mapping[str, str] | None = None) -> list[str]:
    """The values of the secret-named environment variables, longest first (so a longer one masks whole)."""
    env = os.environ if environ is None else environ
    values = {v for k, v in env.items() if _SECRET_NAME.search(k.upper()) and len(v) >= MIN_SECRET_LENGTH}
    return sorted(values, key=len, reverse=True)


def redact(text: str, secrets: Iterable[str] | None = None) -> str:
    """`text` with every secret masked; `secrets` defaults to the environment's secret values."""
    for secret in environment_secrets() if secrets is None else secrets:
        text = text.replace(secret, MASK)
    text = _URL_PASSWORD.sub(rf"\1{MASK}@", text)
    text = _DSN_PASSWORD.sub(rf"\1{MASK}", text)
    text = _QUERY_SECRET.sub(rf"\1{MASK}", text)
    return _JWT.sub(MASK, text)


class RedactingRecordFactory:
    """A log record factory that masks secrets in the message, its arguments and the exception text."""

    def __init__(self, wrapped: Any):
        self.wrapped = wrapped

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record = self.wrapped(*args, **kwargs)
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a malformed %-format: leave it for the handler to report
            return record
        secrets = environment_secrets()
        redacted = redact(message, secrets)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = redact(text, secrets)
        return record


def install() -> None:
    """Mask secrets in every log record this process creates from now on (idempotent)."""
    current = logging.getLogRecordFactory()
    if not isinstance(current, RedactingRecordFactory):
        logging.setLogRecordFactory(RedactingRecordFactory(current))
