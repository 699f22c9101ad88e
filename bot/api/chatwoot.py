"""POST /v1/connectors/chatwoot: the webhook of a Chatwoot agent bot (issue #30 item 3, docs/chatwoot.md).

Chatwoot calls it with no API key: the caller is verified by the agent bot's signature or the URL's
`?token=` (`bot.runtime.chatwoot.verify`), so the route takes no role.
"""

from __future__ import annotations

import json
import time
from typing import Annotated

from fastapi import APIRouter, FastAPI, HTTPException, Query, Request
from starlette.concurrency import run_in_threadpool

from bot.api.deps import ready_runtime
from bot.api.metrics import chat_answered
from bot.api.schemas.chatwoot import ChatwootOut
from bot.runtime.chatwoot import ChatwootConnector, incoming
from bot.runtime.chatwoot_client import ChatwootClient

router = APIRouter(prefix="/v1/connectors", tags=["connectors"])


def _connector(request: Request) -> ChatwootConnector:
    """The app's connector, made on first use; 404 while BOT_CHATWOOT_* are not all set."""
    runtime = ready_runtime(request)
    settings = runtime.settings
    missing = [
        name
        for name, value in (
            ("BOT_CHATWOOT_URL", settings.chatwoot_url),
            ("BOT_CHATWOOT_TOKEN", settings.chatwoot_token),
            ("BOT_CHATWOOT_SECRET", settings.chatwoot_secret),
        )
        if not value
    ]
    if missing:
        raise HTTPException(
            404, f"the Chatwoot connector is off: set {', '.join(missing)} (docs/chatwoot.md)"
        )
    connector: ChatwootConnector | None = getattr(request.app.state, "chatwoot", None)
    if connector is None:
        client = ChatwootClient(settings.chatwoot_url, settings.chatwoot_token)
        connector = ChatwootConnector(settings, runtime.pipeline, runtime.database, client)
        request.app.state.chatwoot = connector
    return connector


async def close(app: FastAPI) -> None:
    """At shutdown: send the calls the connector still holds (a few seconds at most), then stop its thread."""
    connector: ChatwootConnector | None = getattr(app.state, "chatwoot", None)
    if connector is not None:
        await run_in_threadpool(connector.client.close)


@router.post(
    "/chatwoot",
    response_model=ChatwootOut,
    responses={401: {"description": "Not signed by the agent bot's secret, nor carrying its ?token="}},
)
async def chatwoot_webhook(
    request: Request,
    token: Annotated[
        str | None, Query(max_length=256, description="The shared secret, if Chatwoot does not sign")
    ] = None,
) -> ChatwootOut:
    """Chatwoot's agent-bot webhook: a customer's message becomes a turn of its conversation; the answer,
    and on a handoff a private note and the conversation opened to agents, go back through Chatwoot's
    API in the background. Anything but a customer's message is acknowledged and ignored."""
    connector = _connector(request)
    body = await request.body()
    headers = {name.lower(): value for name, value in request.headers.items()}
    if not connector.verify(body, headers, token):
        raise HTTPException(
            401, "not from Chatwoot: the signature or ?token= does not match BOT_CHATWOOT_SECRET"
        )
    try:
        payload = json.loads(body)
    except ValueError:
        return ChatwootOut(status="ignored", reason="the body is not JSON")
    message = incoming(payload)
    if isinstance(message, str):
        return ChatwootOut(status="ignored", reason=message)
    started = time.perf_counter()
    reply = await connector.handle(message)
    chat_answered(ready_runtime(request), reply, time.perf_counter() - started)  # counted as any chat turn
    return ChatwootOut(status="accepted", route=reply.decision.route, decision_id=reply.decision_id)
