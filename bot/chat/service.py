"""A customer's turn, end to end: redact, read the conversation, decide a clarify pick, store or spool.

The HTTP chat pipeline (`bot.chat.pipeline`) is the one flow that runs these steps: `open_turn` (read the
conversation), routing (`route_context` + `Engine.route_batch`, or `decide_choice` for a clarify pick),
then `store_batch` (many turns in one transaction, through `bot.store.turns`) or `spool_turn` while the
database is down.
"""

from __future__ import annotations

import dataclasses
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine as Database
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlmodel import Session

from bot.chat.redact import redact, redact_values
from bot.chat.request_context import current_request_id
from bot.chat.rules import NONE_OF_THESE, NONE_OF_THESE_LABEL, ConversationRules, check_choice, none_of_these
from bot.chat.spool import Spool
from bot.errors import InvalidInputError, NotFoundError
from bot.routing.context import RouteContext
from bot.routing.engine import Engine
from bot.routing.policy import Decision
from bot.store.db import session_scope
from bot.store.models import Conversation, SpoolApplied, utcnow
from bot.store.turns import PendingWrite, StoredTurn, metadata_problem, write_turns

CONVERSATION_ID = re.compile(r"[0-9a-f]{32}")  # new_id(), as new conversations get


def new_id() -> str:
    """A random id of 32 lowercase hex characters (128 bits), like uuid4().hex at a third of its cost."""
    return secrets.token_hex(16)


# Errors that mean "the database cannot be reached", as opposed to a bad statement or constraint
DATABASE_DOWN = (OperationalError, InterfaceError)


@dataclass(frozen=True)
class ChatReply:
    """What the widget gets back for one message; ids are None when the database was down (spooled)."""

    conversation_id: str
    message_id: int | None
    decision_id: int | None
    decision: Decision
    escalation: str | None
    ticket_id: int | None
    options: tuple[tuple[str, str], ...]  # (intent, label) to offer as buttons on clarify
    stored: bool = True


@dataclass(frozen=True)
class Turn:
    """A customer's message as received: redacted, its conversation read, not routed yet."""

    message: str | None
    choice: str | None
    conversation: Conversation | None  # None for a new conversation (or while the database is down)
    conversation_id: str
    channel: str
    metadata: dict[str, Any]
    database_down: bool
    started: float  # perf_counter when routing began: the logged latency is measured from here


class ChatService:
    """Joins the routing engine, the conversation rules and the store (with a spool for database outages).

    Its steps are run by `bot.chat.pipeline.ChatPipeline.chat`, the one chat flow.
    """

    def __init__(self, engine: Engine, database: Database, spool: Spool | None = None) -> None:
        self.engine = engine
        self.database = database
        self.spool = spool
        self.rules = ConversationRules(engine.settings)

    def open_turn(
        self,
        *,
        message: str | None,
        conversation_id: str | None = None,
        channel: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        choice: str | None = None,
    ) -> Turn:
        """Redact the input and read the conversation (no database access for a new conversation)."""
        settings = self.engine.settings
        if settings.redact:  # before routing, so no unredacted copy reaches the store or the logs
            message = redact(message, settings.redact_region) if message else message
            metadata = redact_values(dict(metadata), settings.redact_region) if metadata else metadata
        if choice is None and not message:
            raise InvalidInputError("message", "must not be empty unless a choice is sent")
        database_down = False
        existing: Conversation | None = None
        if conversation_id is not None:
            try:
                with Session(self.database, expire_on_commit=False) as session:
                    existing = self._conversation(session, conversation_id)
            except DATABASE_DOWN:
                if self.spool is None:
                    raise
                database_down = True
            if existing is not None and metadata:
                problem = metadata_problem({**existing.meta, **metadata})
                if problem is not None:
                    raise InvalidInputError("metadata", problem)
            if database_down and not CONVERSATION_ID.fullmatch(conversation_id):
                # nothing can check the id now; accept only the shape this server hands out
                raise NotFoundError(
                    f"unknown conversation '{conversation_id}'; omit conversation_id to start a new one"
                )
        return Turn(
            message=message,
            choice=choice,
            conversation=existing,
            conversation_id=existing.id if existing else conversation_id or new_id(),
            channel=channel or "web",
            metadata=dict(metadata or {}),
            database_down=database_down,
            started=time.perf_counter(),
        )

    def route_context(self, turn: Turn) -> RouteContext:
        """What routing may use from the conversation: the previous message and the metadata."""
        conversation = turn.conversation
        return RouteContext(
            previous_user_text=conversation.last_user_text if conversation else None,
            metadata={**(conversation.meta if conversation else {}), **turn.metadata},
        )

    def decide_choice(self, turn: Turn) -> tuple[str, Decision]:
        """The decision for a clarify pick, which must be one of the options the bot offered."""
        assert turn.choice is not None
        choice, conversation = turn.choice, turn.conversation
        # with the database down the offered options cannot be checked; any known intent will do
        offered = list(self.engine.intents.names) if turn.database_down else []
        if conversation is not None and not turn.database_down:
            offered = conversation.pending_options
        check_choice(choice, offered)
        if choice == NONE_OF_THESE and choice not in offered:  # "something else": ask to rephrase
            text = turn.message or NONE_OF_THESE_LABEL
            question = conversation.pending_text if conversation and conversation.pending_text else text
            return text, none_of_these(question, offered, self.engine.state)
        label = self.engine.intents.get(choice)
        text = turn.message or (label.spec.label if label else choice)
        question = conversation.pending_text if conversation and conversation.pending_text else text
        return text, self.engine.answer_choice(choice, question, self.route_context(turn).metadata)

    def pending_write(self, turn: Turn, text: str, decision: Decision) -> PendingWrite:
        """What storing the routed turn will write."""
        return PendingWrite(
            spool_id=new_id(),
            conversation_id=turn.conversation_id,
            channel=turn.channel,
            metadata=turn.metadata,
            text=text,
            decision=decision,
            latency_ms=(time.perf_counter() - turn.started) * 1000,
            chosen=turn.choice is not None,
            new_conversation=turn.conversation is None and not turn.database_down,
            at=utcnow(),
            request_id=current_request_id(),  # runs in the request's context (bot.chat.pipeline)
        )

    def store_batch(self, pendings: list[PendingWrite]) -> list[ChatReply | BaseException]:
        """Write many turns in one transaction (group commit); spool them all if the database is down.

        If the batch fails for another reason, it is split in halves and each half written on its own
        (in order, so a conversation's turns keep theirs), down to the bad turn, which fails alone: the
        result list then holds that turn's exception. A bad turn in a batch of n costs about 2·log2(n)
        extra transactions, not n, and every good turn is stored.
        """
        try:
            with session_scope(self.database) as session:
                return [
                    self._reply(turn) for turn in write_turns(session, pendings, self.rules.for_stored_turn)
                ]
        except DATABASE_DOWN:
            if self.spool is None:
                raise
            return [self.spool_turn(pending) for pending in pendings]
        except Exception as exc:
            if len(pendings) == 1:
                return [exc]
            middle = len(pendings) // 2
            return [*self.store_batch(pendings[:middle]), *self.store_batch(pendings[middle:])]

    def spool_turn(self, pending: PendingWrite) -> ChatReply:
        """Answer without the database: apply the rules to a fresh conversation and spool the turn."""
        if self.spool is None:
            raise RuntimeError("no spool configured")
        offline = Conversation(id=pending.conversation_id, channel=pending.channel, meta=pending.metadata)
        decision, escalation = self.rules.apply(offline, pending.decision, pending.text, pending.chosen)
        # when the spool drains, a later turn may already have created the conversation: look it up then
        sent = dataclasses.replace(
            pending, decision=decision, escalation=escalation, offline=True, new_conversation=False
        )
        self.spool.append(sent.to_record())
        return ChatReply(
            pending.conversation_id, None, None, decision, escalation, None, self._options(decision), False
        )

    def drain_spool(self) -> int:
        """Write spooled turns to the database, each exactly once; returns how many were applied."""
        if self.spool is None:
            return 0

        def apply(record: dict[str, Any]) -> None:
            pending = PendingWrite.from_record(record)
            with session_scope(self.database) as session:
                if session.get(SpoolApplied, pending.spool_id) is not None:
                    return  # written before a crash between commit and spool clean-up
                write_turns(session, [pending], self.rules.for_stored_turn)
                session.add(SpoolApplied(id=pending.spool_id))

        return self.spool.drain(apply, retryable=DATABASE_DOWN)

    def _reply(self, turn: StoredTurn) -> ChatReply:
        return ChatReply(
            turn.conversation_id,
            turn.message_id,
            turn.decision_id,
            turn.decision,
            turn.escalation,
            turn.ticket_id,
            self._options(turn.decision),
        )

    def _options(self, decision: Decision) -> tuple[tuple[str, str], ...]:
        intents = self.engine.intents
        return tuple((name, intent.spec.label) for name in decision.options if (intent := intents.get(name)))

    @staticmethod
    def _conversation(session: Session, conversation_id: str) -> Conversation:
        conversation = session.get(Conversation, conversation_id)
        if conversation is None:
            raise NotFoundError(
                f"unknown conversation '{conversation_id}'; omit conversation_id to start a new one"
            )
        return conversation
