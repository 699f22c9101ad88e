"""The HTTP API's chat path: messages are routed in batches on one thread and stored in batches on another.

A request reads its conversation (only if it names one), awaits its decision from the routing batcher
(one encoder call per batch), then awaits the writer, which stores a whole batch of turns in one
transaction. The reply goes out once its turn is committed, so ids in the reply are real and nothing is
lost, yet no request thread ever holds a database transaction of its own. Both queues are bounded:
when full, requests wait (back-pressure); `close` (at shutdown) flushes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool

from bot.chat.batcher import AsyncBatcher, BatcherStats
from bot.chat.service import ChatReply, ChatService
from bot.chat.shadow import ShadowRun
from bot.config import Settings
from bot.routing.context import RouteContext
from bot.routing.policy import Decision
from bot.store.turns import PendingWrite


@dataclass(frozen=True)
class _RouteJob:
    text: str
    context: RouteContext


class ChatPipeline:
    """Routing and storage batchers around a `ChatService`; start on the event loop, close at shutdown."""

    def __init__(self, service: ChatService, settings: Settings) -> None:
        self.service = service
        self.routing: AsyncBatcher[_RouteJob, Decision] = AsyncBatcher(
            "router",
            self._route,
            max_batch=settings.batch_max_size,
            max_pending=settings.queue_max,
            max_wait_ms=settings.batch_wait_ms,
            threads=settings.route_threads,
        )
        # one writer: turns of one conversation are stored in the order they were answered
        self.writing: AsyncBatcher[PendingWrite, ChatReply] = AsyncBatcher(
            "decision-writer",
            service.store_batch,
            max_batch=settings.write_batch_max,
            max_pending=settings.queue_max,
        )
        self.shadow: ShadowRun | None = None  # a candidate version deciding every routed message too

    def start(self) -> None:
        """Start both worker threads."""
        self.routing.start()
        self.writing.start()

    async def close(self) -> None:
        """Finish every accepted turn (routed ones are then written) and stop."""
        await self.routing.close()
        await self.writing.close()

    def stats(self) -> dict[str, BatcherStats]:
        """Queue depth and batch totals for /healthz."""
        return {"routing": self.routing.stats(), "writing": self.writing.stats()}

    async def chat(
        self,
        *,
        message: str | None,
        conversation_id: str | None = None,
        channel: str | None = None,
        metadata: dict[str, Any] | None = None,
        choice: str | None = None,
    ) -> ChatReply:
        """A customer's turn, the one chat flow: opened (a thread only when a conversation must be read),
        routed by the routing batcher (a clarify pick is decided without routing), stored by the writer
        batcher (spooled while the database is down), and answered once stored; no request holds a
        thread while it waits."""
        service = self.service
        arguments: dict[str, Any] = {
            "message": message,
            "conversation_id": conversation_id,
            "channel": channel,
            "metadata": metadata,
            "choice": choice,
        }
        if conversation_id is None:  # nothing to read: no thread hop needed
            turn = service.open_turn(**arguments)
        else:
            turn = await run_in_threadpool(lambda: service.open_turn(**arguments))
        context: RouteContext | None = None
        if turn.choice is not None:
            text, decision = service.decide_choice(turn)
        else:
            assert turn.message is not None
            text = turn.message
            context = service.route_context(turn)
            decision = await self.routing.submit(_RouteJob(text, context))
        pending = service.pending_write(turn, text, decision)
        if turn.database_down:
            return await run_in_threadpool(service.spool_turn, pending)
        reply = await self.writing.submit(pending)
        shadow = self.shadow
        if shadow is not None and context is not None and reply.decision_id is not None:
            shadow.submit(reply.decision_id, text, context)  # never waits (bot.chat.shadow)
        return reply

    def _route(self, jobs: list[_RouteJob]) -> list[Decision]:
        return self.service.engine.route_batch([j.text for j in jobs], [j.context for j in jobs])
