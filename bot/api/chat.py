"""Endpoints for chat widgets and integrations: chat, poll messages, classify without storing."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from bot.api.deps import (
    DatabaseDep,
    EngineDep,
    SettingsDep,
    admit,
    caller_of,
    ready_runtime,
    require,
)
from bot.api.guard import LIMITS, PARSED_JSON, RateLimits
from bot.api.metrics import chat_answered
from bot.api.schemas import (
    ChatIn,
    ChatOut,
    DecisionOut,
    MessageOut,
    MessagesOut,
    RouteIn,
    RouteOut,
)
from bot.config import ROLES
from bot.errors import InvalidInputError
from bot.routing.policy import Decision
from bot.store.handoffs import messages_after

router = APIRouter(prefix="/v1", tags=["chat"])
CHAT_ROLES = frozenset(ROLES) - {"metrics"}  # every role may chat but a scraper's (GET /metrics only)
ChatRole = Depends(require(*CHAT_ROLES))


def _decision_fields(d: Decision) -> dict[str, Any]:
    """What `ChatOut` and `DecisionOut` show of a decision; validate with `from_attributes=True`, which
    reads each candidate's fields off the `Candidate` itself."""
    return {
        "route": d.route,
        "intent": d.intent,
        "confidence": d.confidence,
        "answer": d.answer,
        "reason": d.reason,
        "candidates": d.candidates,
        "source": d.source,
    }


async def _charge_route_work(request: Request, cost: int) -> None:
    """Count `cost` characters against the caller's routing budget; 422 if one request exceeds it, 429 if spent."""
    limits: RateLimits | None = request.scope.get(LIMITS)
    limit = limits.route_chars if limits is not None else None
    if limits is None or limit is None:
        return
    if cost > limit.item.amount:
        raise InvalidInputError(
            "messages",
            f"would route {cost} characters (each message counts at least {ROUTE_MIN_CHARS}); "
            f"the limit is {limit.item} (BOT_RATE_LIMIT_ROUTE_CHARS): send fewer or shorter messages",
        )
    over = await limits.charge_route(caller_of(request), cost)
    if over is not None:
        wait, which = over
        raise HTTPException(429, f"too many {which}; retry in {wait} s", headers={"Retry-After": str(wait)})


def _check_length(text: str | None, limit: int, field: str) -> None:
    if text is not None and len(text) > limit:
        raise InvalidInputError(field, f"is {len(text)} characters long; the limit is {limit}")


_MISSING = object()  # an empty body: FastAPI's "Field required"


def _declares_json(content_type: str | None) -> bool:
    """Whether a Content-Type header is `application/json` or `application/*+json` (any case, with or
    without parameters): the bodies FastAPI parses as JSON; any other body it validates as raw bytes."""
    if not content_type:
        return False
    kind, _, subtype = content_type.split(";", 1)[0].strip().lower().partition("/")
    return kind == "application" and (subtype == "json" or subtype.endswith("+json"))


async def _chat_payload(request: Request) -> Any:
    """The request body as FastAPI hands a body parameter to validation; `_MISSING` for an empty body.

    A JSON body was already parsed and cleaned by the request guard (`PARSED_JSON`): taken from there
    rather than parsed a second time. Without the guard (an app built by hand) it is parsed here.
    """
    if not _declares_json(request.headers.get("content-type")):
        return await request.body() or _MISSING
    if PARSED_JSON in request.scope:
        return request.scope[PARSED_JSON]
    if not await request.body():
        return _MISSING
    try:
        return await request.json()
    except json.JSONDecodeError as exc:  # FastAPI's own error for it, so the answer is the usual 422
        error = {"type": "json_invalid", "loc": ("body", exc.pos), "msg": "JSON decode error", "input": {}}
        raise RequestValidationError([{**error, "ctx": {"error": exc.msg}}], body=exc.doc) from None


def _chat_body(payload: Any) -> ChatIn:
    """`payload` validated as `ChatIn` the way FastAPI validates a body parameter, errors included."""
    if payload is _MISSING:
        raise RequestValidationError(
            [{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}]
        )
    try:
        return ChatIn.model_validate(payload, from_attributes=True)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in errors], body=payload
        ) from None


# The busiest endpoint shares the event loop with every other request, so it declares no parameters: the
# body is the one the guard already parsed (FastAPI would parse it again) and the role check is `admit`
# called directly, the rule `require` applies on every other route (solving them as FastAPI dependencies
# costs about 40 us a request: docs/evaluation.md, "One chat entrance"). The OpenAPI document gets both
# from `openapi_extra`.
CHAT_OPENAPI = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": ChatIn.model_json_schema()}},
    },
    "security": [{"HTTPBearer": []}],  # the scheme of `require`'s bearer dependency on the other routes
}


@router.post(
    "/chat",
    response_model=ChatOut,
    openapi_extra=CHAT_OPENAPI,
    responses={422: {"description": 'Invalid body: `{"error": {"type", "message", "field"}}`'}},
)
async def chat(request: Request) -> Response:
    """Route a customer's message (or clarify `choice`), store it with the decision, and answer."""
    admit(request, CHAT_ROLES)
    body = _chat_body(await _chat_payload(request))
    runtime = ready_runtime(request)
    settings, pipeline = runtime.settings, runtime.pipeline
    message = body.message.strip() if body.message is not None else None
    _check_length(message, settings.max_message_chars, "message")
    if not message and body.choice is None:
        raise InvalidInputError("message", "must not be empty")
    started = time.perf_counter()
    reply = await pipeline.chat(
        message=message or None,
        conversation_id=body.conversation_id,
        channel=body.channel,
        metadata=body.metadata,
        choice=body.choice,
    )
    chat_answered(runtime, reply, time.perf_counter() - started)  # metrics, the JSON access line's fields
    d = reply.decision
    options = [{"intent": i, "label": label} for i, label in reply.options] if d.route == "clarify" else None
    reply_fields = {
        "conversation_id": reply.conversation_id,
        "message_id": reply.message_id,
        "decision_id": reply.decision_id,
        "stored": reply.stored,
        "ticket_id": reply.ticket_id,
        "escalation": reply.escalation,
    }
    out = ChatOut.model_validate(
        {**_decision_fields(d), **reply_fields, "context_used": d.context_used, "options": options},
        from_attributes=True,
    )
    # serialised here, once: returned as a model, FastAPI would validate it a second time
    return Response(out.model_dump_json(), media_type="application/json")


@router.get("/conversations/{conversation_id}/messages", response_model=MessagesOut, dependencies=[ChatRole])
def conversation_messages(
    conversation_id: Annotated[str, Path(min_length=1, max_length=64)],
    database: DatabaseDep,
    after: Annotated[
        int | None, Query(ge=0, le=2**31 - 1, description="Only messages with a larger id.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> MessagesOut:
    """A conversation's messages after `after`: widgets poll this for agent replies."""
    rows = messages_after(database, conversation_id=conversation_id, after=after, limit=limit)
    messages = [MessageOut.model_validate(m) for m in rows]
    return MessagesOut(
        conversation_id=conversation_id, messages=messages, last_id=messages[-1].id if messages else after
    )


ROUTE_MIN_CHARS = 100  # what a message costs at least in the /v1/route budget: encoding has a fixed cost


# Analysts (and admins) only: batch classification is an analyst's tool. The widget key is public, and a
# request of 100 long messages costs seconds of CPU that chat needs.
@router.post("/route", response_model=RouteOut, dependencies=[Depends(require("analyst"))])
async def route(body: RouteIn, request: Request, engine: EngineDep, settings: SettingsDep) -> RouteOut:
    """Decisions for up to 100 messages; nothing is stored (batch classification).

    Charged by work: each message costs its length in characters (at least 100) against the key's
    BOT_RATE_LIMIT_ROUTE_CHARS budget; 429 with Retry-After when it is spent.
    """
    for position, text in enumerate(body.messages):
        _check_length(text, settings.max_message_chars, f"messages.{position}")
    await _charge_route_work(request, sum(max(len(text), ROUTE_MIN_CHARS) for text in body.messages))
    decisions = await run_in_threadpool(engine.route_many, body.messages)
    return RouteOut(
        decisions=[
            DecisionOut.model_validate(
                {**_decision_fields(d), "text": text, "options": d.options}, from_attributes=True
            )
            for text, d in zip(body.messages, decisions, strict=True)
        ],
        model_id=engine.model_id,
        intents_version=engine.intents.version,
    )
