"""Conversation flow: route a customer's message, apply conversation rules, store everything at once."""

from __future__ import annotations

import dataclasses
import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine as Database
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlmodel import Session, col, select

from bot.db import session_scope
from bot.engine import Engine, RouteContext
from bot.errors import InvalidInputError, NotFoundError
from bot.models import Conversation, DecisionLog, HandoffTicket, Message, SpoolApplied, utcnow
from bot.redact import redact, redact_values
from bot.router import Candidate, Decision
from bot.spool import Spool

ESCALATE_AFTER_FALLBACKS = 2
CONVERSATION_ID = re.compile(r"[0-9a-f]{32}")  # uuid4().hex, as new conversations get
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
class PendingWrite:
    """Everything one chat turn writes: stored at once, or spooled while the database is down."""

    spool_id: str
    conversation_id: str
    channel: str
    metadata: dict[str, Any]
    text: str
    decision: Decision
    latency_ms: float
    chosen: bool
    at: datetime
    escalation: str | None = None
    offline: bool = False  # decided without the database (spooled): `decision` is what was sent

    def to_record(self) -> dict[str, Any]:
        """JSON-ready form for the spool."""
        record = dataclasses.asdict(self)
        record["at"] = self.at.isoformat()
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> PendingWrite:
        """Back from the spool."""
        data = dict(record)
        decision = dict(data["decision"])
        decision["candidates"] = tuple(Candidate(**c) for c in decision["candidates"])
        decision["options"] = tuple(decision["options"])
        data["decision"] = Decision(**decision)
        data["at"] = datetime.fromisoformat(data["at"])
        return cls(**data)


def decision_row(
    decision: Decision, *, conversation_id: str, message_id: int | None, text: str, latency_ms: float
) -> DecisionLog:
    """The log row for a decision: enough to replay it."""
    return DecisionLog(
        conversation_id=conversation_id,
        message_id=message_id,
        text=text,
        route=decision.route,
        intent=decision.intent,
        confidence=decision.confidence,
        candidates=[dataclasses.asdict(c) for c in decision.candidates],
        options=list(decision.options),
        answer=decision.answer,
        reason=decision.reason,
        threshold=decision.threshold,
        margin=decision.margin,
        retrieval_score=decision.retrieval_score,
        source=decision.source,
        context_used=decision.context_used,
        model_id=decision.model_id,
        intents_version=decision.intents_version,
        latency_ms=round(latency_ms, 3),
    )


class ChatService:
    """Joins the routing engine and the conversation store (with a spool for database outages)."""

    def __init__(self, engine: Engine, database: Database, spool: Spool | None = None) -> None:
        self.engine = engine
        self.database = database
        self.spool = spool

    def chat(
        self,
        *,
        message: str | None,
        conversation_id: str | None = None,
        channel: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        choice: str | None = None,
    ) -> ChatReply:
        """Handle one customer message (or clarify choice) and store the message, decision and reply.

        If the database is unreachable the bot still answers: the turn is spooled and written later.
        """
        settings = self.engine.settings
        if settings.redact:  # before routing, so no unredacted copy reaches the store or the logs
            message = redact(message, settings.redact_region) if message else message
            metadata = redact_values(dict(metadata), settings.redact_region) if metadata else metadata
        database_down = False
        existing: Conversation | None = None
        try:
            with Session(self.database, expire_on_commit=False) as session:
                existing = self._conversation(session, conversation_id) if conversation_id else None
        except DATABASE_DOWN:
            if self.spool is None:
                raise
            database_down = True
        if database_down and conversation_id is not None and not CONVERSATION_ID.fullmatch(conversation_id):
            # nothing can check the id now; accept only the shape this server hands out
            raise NotFoundError(
                f"unknown conversation '{conversation_id}'; omit conversation_id to start a new one"
            )
        started = time.perf_counter()
        text, decision = self._decide(existing, message, metadata, choice, trust_choice=database_down)
        pending = PendingWrite(
            spool_id=uuid.uuid4().hex,
            conversation_id=existing.id if existing else conversation_id or uuid.uuid4().hex,
            channel=channel or "web",
            metadata=dict(metadata or {}),
            text=text,
            decision=decision,
            latency_ms=(time.perf_counter() - started) * 1000,
            chosen=choice is not None,
            at=utcnow(),
        )
        if not database_down:
            try:
                with session_scope(self.database) as session:
                    return self._store(session, pending)
            except DATABASE_DOWN:
                if self.spool is None:
                    raise
        assert self.spool is not None
        offline = Conversation(id=pending.conversation_id, channel=pending.channel, meta=pending.metadata)
        decision, escalation = self._apply_conversation_rules(offline, decision, text, pending.chosen)
        sent = dataclasses.replace(pending, decision=decision, escalation=escalation, offline=True)
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
                self._store(session, pending)
                session.add(SpoolApplied(id=pending.spool_id))

        return self.spool.drain(apply)

    def _store(self, session: Session, pending: PendingWrite) -> ChatReply:
        """Write one turn in the caller's transaction: conversation, messages, decision, ticket."""
        conversation = (
            session.exec(  # lock the row: two replicas answering one conversation must not both escalate
                select(Conversation).where(Conversation.id == pending.conversation_id).with_for_update()
            ).first()
        )
        if conversation is None:
            conversation = Conversation(
                id=pending.conversation_id,
                channel=pending.channel,
                meta=pending.metadata,
                created_at=pending.at,
            )
            session.add(conversation)
        elif pending.metadata:
            conversation.meta = {**conversation.meta, **pending.metadata}
        if pending.offline:  # the customer already got this answer: store it as sent, not re-decided
            decision, escalation = pending.decision, pending.escalation
            self._remember_turn(conversation, decision, pending.text, pending.chosen)
        else:
            decision, escalation = self._apply_conversation_rules(
                conversation, pending.decision, pending.text, pending.chosen
            )
        user_message = Message(
            conversation_id=conversation.id, role="user", text=pending.text, created_at=pending.at
        )
        session.add(user_message)
        session.flush()
        log = decision_row(
            decision,
            conversation_id=conversation.id,
            message_id=user_message.id,
            text=pending.text,
            latency_ms=pending.latency_ms,
        )
        log.escalation = escalation
        log.chosen = pending.chosen
        log.created_at = pending.at
        session.add(log)
        session.flush()
        user_message.decision_id = log.id
        if decision.answer:
            session.add(
                Message(
                    conversation_id=conversation.id,
                    role="bot",
                    text=decision.answer,
                    decision_id=log.id,
                    created_at=pending.at,
                )
            )
        ticket_id = (
            self._ticket_for(session, conversation, decision, log) if decision.route == "handoff" else None
        )
        conversation.updated_at = utcnow()
        session.add(conversation)
        session.flush()
        assert user_message.id is not None and log.id is not None
        return ChatReply(
            conversation.id, user_message.id, log.id, decision, escalation, ticket_id, self._options(decision)
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

    def _decide(
        self,
        conversation: Conversation | None,
        message: str | None,
        metadata: Mapping[str, Any] | None,
        choice: str | None,
        *,
        trust_choice: bool = False,
    ) -> tuple[str, Decision]:
        meta = {**(conversation.meta if conversation else {}), **(metadata or {})}
        if choice is not None:
            # with the database down the offered options cannot be checked; any known intent will do
            offered = list(self.engine.intents.names) if trust_choice else []
            if conversation is not None and not trust_choice:
                offered = conversation.pending_options
            if choice not in offered:
                allowed = ", ".join(offered) if offered else "none: there is no open clarify question"
                raise InvalidInputError("choice", f"'{choice}' was not offered; allowed: {allowed}")
            label = self.engine.intents.get(choice)
            text = message or (label.spec.label if label else choice)
            question = conversation.pending_text if conversation and conversation.pending_text else text
            return text, self.engine.answer_choice(choice, question, meta)
        if not message:
            raise InvalidInputError("message", "must not be empty unless a choice is sent")
        previous = conversation.last_user_text if conversation else None
        return message, self.engine.route(message, RouteContext(previous_user_text=previous, metadata=meta))

    def _apply_conversation_rules(
        self, conversation: Conversation, decision: Decision, text: str, chosen: bool
    ) -> tuple[Decision, str | None]:
        """Escalate angry messages and repeated fallbacks; keep quiet while a person has the chat."""
        escalation = None
        settings = self.engine.settings
        if conversation.status == "handoff":
            escalation = "with_agent"
            decision = dataclasses.replace(
                decision,
                route="handoff",
                answer="",
                reason="The conversation is with a person; the bot stays quiet.",
            )
        elif decision.anger > settings.anger_threshold:
            escalation = "angry"
            decision = self._escalate(
                decision, f"The message reads as an angry complaint (anger {decision.anger:.2f})."
            )
        elif decision.route == "retrieve" and conversation.fallback_streak + 1 >= ESCALATE_AFTER_FALLBACKS:
            # an unmatched handoff is already with a person; a second knowledge-base guess should be too
            escalation = "repeated_fallback"
            decision = self._escalate(decision, "Second message in a row that no intent could take.")
        self._remember_turn(conversation, decision, text, chosen)
        return decision, escalation

    @staticmethod
    def _remember_turn(conversation: Conversation, decision: Decision, text: str, chosen: bool) -> None:
        """Update what the next turn needs: fallback streak, open clarify options, context."""
        accepted = decision.route in ("answer", "clarify") or decision.intent is not None
        conversation.fallback_streak = 0 if accepted else conversation.fallback_streak + 1
        clarifying = decision.route == "clarify"
        conversation.pending_options = list(decision.options) if clarifying else []
        conversation.pending_text = text if clarifying else None
        if not chosen:  # a picked option answers the earlier question; that stays the context
            conversation.last_user_text = text

    def _escalate(self, decision: Decision, why: str) -> Decision:
        """Hand off to a person; a handoff the router already chose keeps its own answer."""
        answer = decision.answer if decision.route == "handoff" else self.engine.settings.handoff_message
        return dataclasses.replace(
            decision, route="handoff", answer=answer, reason=f"{why} {decision.reason}"
        )

    @staticmethod
    def _ticket_for(
        session: Session, conversation: Conversation, decision: Decision, log: DecisionLog
    ) -> int:
        """The conversation's open ticket, or a new one; the conversation is now with a person."""
        ticket = session.exec(
            select(HandoffTicket)
            .where(
                HandoffTicket.conversation_id == conversation.id,
                col(HandoffTicket.status).in_(("open", "claimed")),
            )
            .order_by(col(HandoffTicket.id).desc())
        ).first()
        if ticket is None:
            ticket = HandoffTicket(
                conversation_id=conversation.id,
                decision_id=log.id,
                intent=decision.intent,
                reason=decision.reason,
            )
            session.add(ticket)
            session.flush()
        conversation.status = "handoff"
        assert ticket.id is not None
        return ticket.id
