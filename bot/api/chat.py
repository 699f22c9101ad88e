"""Endpoints for chat widgets and integrations: chat, poll messages, classify without storing."""

from __future__ import annotations

import inspect
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from bot.api.deps import DatabaseDep, EngineDep, PipelineDep, SettingsDep, admit, caller_of, require
from bot.api.guard import CALLER, PARSED_JSON, ASGIApp, RateLimits, Receive, Scope, Send
from bot.api.schemas import (
    CandidateOut,
    ChatIn,
    ChatOut,
    DecisionOut,
    MessageOut,
    MessagesOut,
    OptionOut,
    RouteIn,
    RouteOut,
)
from bot.chat.pipeline import ChatPipeline
from bot.config import Settings
from bot.errors import InvalidInputError
from bot.routing.policy import Decision
from bot.store.handoffs import messages_after

router = APIRouter(prefix="/v1", tags=["chat"])
CHAT_ROLES = frozenset({"widget", "agent", "analyst", "admin"})  # admin is always admitted
ChatRole = Depends(require(*CHAT_ROLES))


def _candidates(decision: Decision) -> list[CandidateOut]:
    return [
        CandidateOut(intent=c.intent, score=c.score, confidence=c.confidence) for c in decision.candidates
    ]


async def _charge_route_work(request: Request, cost: int) -> None:
    """Count `cost` characters against the caller's routing budget; 422 if one request exceeds it, 429 if spent."""
    limits: RateLimits | None = request.app.state.limits
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


@router.post("/chat", response_model=ChatOut, dependencies=[ChatRole])
async def chat(body: ChatIn, pipeline: PipelineDep, settings: SettingsDep) -> Response:
    """Route a customer's message (or clarify `choice`), store it with the decision, and answer."""
    return await _chat(body, pipeline, settings)


async def _chat(body: ChatIn, pipeline: ChatPipeline, settings: Settings) -> Response:
    """The chat endpoint's work, shared by the FastAPI route and `ChatFastPath`."""
    message = body.message.strip() if body.message is not None else None
    _check_length(message, settings.max_message_chars, "message")
    if not message and body.choice is None:
        raise InvalidInputError("message", "must not be empty")
    reply = await pipeline.chat(
        message=message or None,
        conversation_id=body.conversation_id,
        channel=body.channel,
        metadata=body.metadata,
        choice=body.choice,
    )
    d = reply.decision
    out = ChatOut(
        conversation_id=reply.conversation_id,
        message_id=reply.message_id,
        decision_id=reply.decision_id,
        stored=reply.stored,
        route=d.route,
        intent=d.intent,
        confidence=d.confidence,
        answer=d.answer,
        reason=d.reason,
        candidates=_candidates(d),
        options=[OptionOut(intent=i, label=label) for i, label in reply.options]
        if d.route == "clarify"
        else None,
        ticket_id=reply.ticket_id,
        source=d.source,
        context_used=d.context_used,
        escalation=reply.escalation,
    )
    # serialised here, once: returned as a model, FastAPI would validate it a second time (the busiest
    # endpoint; the event loop is shared with every other request)
    return Response(out.model_dump_json(), media_type="application/json")


CHAT_PATH = "/v1/chat"


def _json_content_type(scope: Scope) -> bool:
    """Whether the request says `application/json` (plain, or with parameters such as a charset)."""
    for name, value in scope.get("headers", ()):
        if name.lower() == b"content-type":  # the first one, as the app reads it
            kind = value.split(b";", 1)[0].strip().lower()
            return kind == b"application/json"
    return False


class ChatFastPath:
    """`POST /v1/chat` on its happy path without FastAPI's per-request machinery (ASGI middleware).

    The busiest endpoint shares the event loop with everything else, and routing, dependency solving and
    parsing the body a second time cost about a third of the loop's time per message. This layer answers
    a chat request itself only when the route would accept it as it stands: a JSON body the request guard
    parsed (`PARSED_JSON`), valid as `ChatIn`, from a caller the route's role check admits (`admit`, the
    same rule). It then runs the same code as the route (`_chat`), and an error raised there goes through
    the app's own exception handlers. Anything else (no guard, another content type, an invalid body, a
    refused caller) goes to FastAPI unchanged, which answers exactly as it always has; the route stays
    declared, so the OpenAPI schema is the same.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer a plain chat request here, hand everything else on."""
        if scope["type"] != "http" or scope["path"] != CHAT_PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        body = self._admitted_body(scope)
        if body is None:
            await self.app(scope, receive, send)
            return
        app = scope["app"]
        try:
            response = await _chat(body, app.state.pipeline, app.state.settings)
        except Exception as exc:
            handler = _handler_for(app.exception_handlers, exc)
            if handler is None:
                raise  # as from the route: the guard logs it and answers 500
            response = handler(Request(scope, receive, send), exc)
            if inspect.isawaitable(response):
                response = await response
            exc.__traceback__ = None  # as Starlette does: reused exception instances keep no tracebacks
        await response(scope, receive, send)

    @staticmethod
    def _admitted_body(scope: Scope) -> ChatIn | None:
        """The validated body, if the route would accept this request as it stands; else None."""
        parsed = scope.get(PARSED_JSON)
        caller = scope.get(CALLER)
        app = scope.get("app")
        if not isinstance(parsed, dict) or caller is None or app is None or scope.get("root_path"):
            return None
        if not _json_content_type(scope):
            return None
        client = scope.get("client")
        role = admit(app.state.keys, lambda: caller, client[0] if client else None, CHAT_ROLES, str)
        if isinstance(role, StarletteHTTPException):
            return None
        try:
            return ChatIn.model_validate(parsed, from_attributes=True)  # as FastAPI validates a body
        except ValidationError:
            return None


def _handler_for(handlers: dict[Any, Any], exc: Exception) -> Any:
    """The app's exception handler for `exc`, looked up as Starlette's ExceptionMiddleware does (500 and
    `Exception` handlers belong to the outermost error middleware, so they are not used here)."""
    if isinstance(exc, StarletteHTTPException) and exc.status_code != 500 and exc.status_code in handlers:
        return handlers[exc.status_code]
    for cls in type(exc).__mro__:
        if cls is Exception:
            break
        if cls in handlers:
            return handlers[cls]
    return None


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
            DecisionOut(
                text=text,
                route=d.route,
                intent=d.intent,
                confidence=d.confidence,
                answer=d.answer,
                reason=d.reason,
                candidates=_candidates(d),
                options=list(d.options),
                source=d.source,
            )
            for text, d in zip(body.messages, decisions, strict=True)
        ],
        model_id=engine.model_id,
        intents_version=engine.intents.version,
    )
