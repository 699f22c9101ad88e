"""The one place where errors become HTTP responses: `{"error": {"type", "message", "field"?}}`."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from bot.chat.batcher import ClosedError
from bot.errors import BotError, BusyError, ConflictError, IntentFileError, InvalidInputError, NotFoundError

log = logging.getLogger(__name__)

_STATUS: list[tuple[type[BotError], int, str]] = [
    (NotFoundError, 404, "not_found"),
    (ConflictError, 409, "conflict"),
    (BusyError, 429, "busy"),
    (InvalidInputError, 422, "invalid_input"),
    (IntentFileError, 422, "invalid_intents"),
]


def error_body(kind: str, message: str, **extra: object) -> dict[str, object]:
    """The JSON error envelope."""
    return {"error": {"type": kind, "message": message, **{k: v for k, v in extra.items() if v is not None}}}


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers on `app`."""

    @app.exception_handler(BotError)
    async def bot_error(_: Request, exc: BotError) -> JSONResponse:
        for cls, status, kind in _STATUS:
            if isinstance(exc, cls):
                field = exc.field if isinstance(exc, InvalidInputError) else None
                message = exc.message if isinstance(exc, InvalidInputError) else str(exc)
                headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, BusyError) else None
                return JSONResponse(
                    error_body(kind, message, field=field), status_code=status, headers=headers
                )
        log.error("unhandled bot error: %s", exc)
        return JSONResponse(error_body("server_error", str(exc)), status_code=500)

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    async def database_down(_: Request, exc: Exception) -> JSONResponse:
        log.error("database unavailable: %s", str(exc).splitlines()[0])
        message = "the database is unavailable; chat keeps working, try this again shortly"
        return JSONResponse(
            error_body("database_unavailable", message), status_code=503, headers={"Retry-After": "5"}
        )

    @app.exception_handler(ClosedError)
    async def shutting_down(_: Request, exc: ClosedError) -> JSONResponse:
        message = "the server is shutting down; send this again (another replica, or after the restart)"
        return JSONResponse(
            error_body("shutting_down", message), status_code=503, headers={"Retry-After": "1"}
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for error in exc.errors():
            loc = [str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path")]
            problems.append({"field": ".".join(loc) or "body", "message": str(error.get("msg", "invalid"))})
        first = problems[0] if problems else {"field": "body", "message": "invalid request"}
        message = f"{first['field']}: {first['message']}"
        return JSONResponse(
            error_body("invalid_request", message, field=first["field"], problems=problems), status_code=422
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        kinds = {
            401: "unauthorized",
            403: "forbidden",
            404: "not_found",
            405: "method_not_allowed",
            429: "rate_limited",
        }
        return JSONResponse(
            error_body(kinds.get(exc.status_code, "http_error"), str(exc.detail)),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )
