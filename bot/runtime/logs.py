"""Logs that machines read (`BOT_LOG_FORMAT=json`): one JSON object per line, for log shippers.

Every line has `time` (UTC, ISO 8601), `level`, `logger` and `message`; a line written while an HTTP
request is served adds its `request_id` (`bot.chat.request_context`), and uvicorn's access line adds
`method`, `path` (conversation ids and `?key=` already redacted by `bot.api.access_log`) and `status`.
A chat's access line also names the decision's `route`, its `decision_id` (the `/v1/logs` item) and a
`conversation` reference (a hash, never the id itself). Messages are the text logs' own, which hold no
customer text; exceptions add their traceback as `exception`.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from bot.chat.request_context import CURRENT

ACCESS_LOGGER = "uvicorn.access"


class JsonFormatter(logging.Formatter):
    """A record as one line of JSON (see the module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        """The record's fields, the request's id and fields, and the access line's parts."""
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        context = CURRENT.get()
        if context is not None:
            entry["request_id"] = context.request_id
            entry.update(context.fields)
        args = record.args
        # uvicorn's access line: '%s - "%s %s HTTP/%s" %d' % (client, method, path, version, status)
        if record.name == ACCESS_LOGGER and isinstance(args, tuple) and len(args) == 5:
            entry.update(method=args[1], path=args[2], status=args[4])
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def log_config(level: str, log_format: str) -> dict[str, Any] | None:
    """The `logging.config.dictConfig` for `bot serve` (uvicorn's loggers included) in `log_format`, or
    None for text: uvicorn's own configuration, as before. Access lines go to stdout, the rest to stderr,
    in both formats."""
    if log_format != "json":
        return None
    formatter = {"()": f"{__name__}.JsonFormatter"}

    def handler(stream: str) -> dict[str, str]:
        return {"class": "logging.StreamHandler", "formatter": "json", "stream": f"ext://sys.{stream}"}

    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": formatter},
        "handlers": {"default": handler("stderr"), "access": handler("stdout")},
        "root": {"handlers": ["default"], "level": level},
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": "INFO", "propagate": False},
            "uvicorn.error": {"level": "INFO"},
            ACCESS_LOGGER: {"handlers": ["access"], "level": "INFO", "propagate": False},
        },
    }
