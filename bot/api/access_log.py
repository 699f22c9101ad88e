"""Keep secrets out of the access log: conversation ids and keys in URLs.

A conversation id is all a widget needs (with the public widget key) to read and continue a conversation,
and `/demo?key=...` carries an API key, so neither may be written to a log that operators, log shippers
and support tools read. `AccessLogRedactor` rewrites uvicorn's access-log records before any handler
formats them; `redact_path` is the same rewrite for our own log lines.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote, unquote_plus

ACCESS_LOGGER = "uvicorn.access"
# the query parameters that carry keys, compared by their percent-decoded, lower-cased name: `?k%65y=` is
# `?key=` to the app (Starlette decodes names), so it is to the log too
_SECRET_NAMES = frozenset({"key", "api_key", "apikey", "token", "access_token"})
_QUERY_PART = re.compile(r"([?&])([^=&#]*)=([^&#]*)")


def redact_path(path: str) -> str:
    """`path` (with its query string, if any) with conversation ids and key parameters replaced; both
    are recognised after percent-decoding (`/v1/conversation%73/ID`, `?k%65y=...`)."""
    base, mark, query = path.partition("?")
    if "conversation" in unquote(base).lower():
        segments = base.split("/")
        for index in range(len(segments) - 1):
            if unquote(segments[index]).lower() == "conversations" and segments[index + 1]:
                segments[index + 1] = "[conversation]"
        base = "/".join(segments)
    if "=" in query:
        query = _QUERY_PART.sub(_redact_parameter, f"?{query}")[1:]
    return f"{base}{mark}{query}"


def _redact_parameter(match: re.Match[str]) -> str:
    name = match.group(2)
    if unquote_plus(name).strip().lower() in _SECRET_NAMES:
        return f"{match.group(1)}{name}=[redacted]"
    return match.group()


class AccessLogRedactor(logging.Filter):
    """Rewrites the path argument of uvicorn's access-log records ('%s - "%s %s HTTP/%s" %d')."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact in place; never drops a record."""
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], redact_path(args[2]), *args[3:])
        return True


def install_access_log_redactor() -> None:
    """Add the redactor to uvicorn's access logger once (idempotent; filters survive uvicorn's dictConfig)."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, AccessLogRedactor) for f in logger.filters):
        logger.addFilter(AccessLogRedactor())
