"""The HTTP request a piece of work is done for: its id, and what its log line may say about it.

The API sets one `RequestContext` per request (`bot.api.request_id`); whatever runs in that request's
context reads it: the chat service stores the id with the turn's decision, so a complaint can be followed
from a log line to the decision and back, and the JSON log formatter (`bot.runtime.logs`) writes it on
every line. The batcher threads run outside any request, so their own lines carry no id.
"""

from __future__ import annotations

import hashlib
from contextvars import ContextVar
from dataclasses import dataclass, field

# lines the JSON formatter may add for a request: only ids, routes and references, never customer text
LogFields = dict[str, str | int]


@dataclass
class RequestContext:
    """One request's id and the fields its log lines add (the chat endpoint fills in route and ids)."""

    request_id: str
    fields: LogFields = field(default_factory=dict)


CURRENT: ContextVar[RequestContext | None] = ContextVar("bot_request", default=None)


def current_request_id() -> str | None:
    """The id of the request this code runs for, or None outside one (a spool drain, a command)."""
    context = CURRENT.get()
    return context.request_id if context is not None else None


def conversation_ref(conversation_id: str) -> str:
    """What logs name a conversation by: the first 16 hex digits of the SHA-256 of its id.

    A conversation id is all a widget needs to read and continue a conversation, so logs never hold it
    (docs/security.md, "Logs"); from the id an operator finds its lines (docs/monitoring.md), but nobody
    gets the id back from a log line: it is 128 random bits.
    """
    return hashlib.sha256(conversation_id.encode()).hexdigest()[:16]
