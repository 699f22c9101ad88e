"""A request id per HTTP request (pure ASGI middleware), echoed in `X-Request-Id` and kept for the logs.

A caller's own `X-Request-Id` is kept when it is a plain token (letters, digits and `._:-`, up to 128
characters, like a UUID or a proxy's trace id), so one id follows a request through a load balancer and
this server; anything else is replaced by a new random id rather than echoed or logged. The id is set as
the request's `RequestContext` (`bot.chat.request_context`): the JSON log lines written while it is
served carry it, and the chat service stores it with the turn's decision (`request_id` in `/v1/logs`).
"""

from __future__ import annotations

import re
import secrets

from bot.api.guard import ASGIApp, Message, Receive, Scope, Send
from bot.chat.request_context import CURRENT, RequestContext

HEADER = b"x-request-id"
VALID = re.compile(rb"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


def new_request_id() -> str:
    """32 random hex digits."""
    return secrets.token_hex(16)


class RequestIds:
    """Sets each HTTP request's id (see the module docstring) and adds it to the response's headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = None
        for name, value in scope.get("headers", ()):
            if name.lower() == HEADER:
                request_id = value.decode("ascii") if VALID.fullmatch(value) else None
                break
        request_id = request_id or new_request_id()
        echoed = (HEADER, request_id.encode("ascii"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), echoed]
            await send(message)

        token = CURRENT.set(RequestContext(request_id))
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            CURRENT.reset(token)
