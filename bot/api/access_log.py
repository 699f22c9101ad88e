"""Keep secrets out of the access log: conversation ids and keys in URLs.

A conversation id is all a widget needs (with the public widget key) to read and continue a conversation,
and `/demo?key=...` carries an API key, so neither may be written to a log that operators, log shippers
and support tools read. `AccessLogRedactor` rewrites uvicorn's access-log records before any handler
formats them; `redact_path` is the same rewrite for our own log lines.
"""

from __future__ import annotations

import logging
import re

ACCESS_LOGGER = "uvicorn.access"
# /v1/conversations/<id>/... (and any other path segment after "conversations")
_CONVERSATION = re.compile(r"(/conversations/)[^/?#\s]+")
# key=..., api_key=..., token=... in a query string
_SECRET_QUERY = re.compile(r"(?i)([?&](?:key|api_key|apikey|token|access_token)=)[^&#\s]*")


def redact_path(path: str) -> str:
    """`path` (with its query string, if any) with conversation ids and key parameters replaced."""
    if "/conversations/" in path:
        path = _CONVERSATION.sub(r"\1[conversation]", path)
    if "=" in path:
        path = _SECRET_QUERY.sub(r"\1[redacted]", path)
    return path


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
