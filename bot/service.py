"""Conversation flow: route a customer's message, apply conversation rules, store turns in batches."""

from __future__ import annotations

import dataclasses
import re
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine as Database
from sqlalchemy import Table, bindparam, insert, update
from sqlalchemy import text as sa_text
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlmodel import Session, SQLModel, col, select

from bot.db import session_scope
from bot.engine import Engine, RouteContext
from bot.errors import InvalidInputError, NotFoundError
from bot.models import Conversation, HandoffTicket, SpoolApplied, utcnow
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
    new_conversation: bool = False  # its first turn, id made here: no row to look up or lock yet

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


def decision_values(
    decision: Decision,
    *,
    conversation_id: str,
    message_id: int | None,
    text: str,
    latency_ms: float,
    escalation: str | None,
    chosen: bool,
    at: datetime,
) -> dict[str, Any]:
    """The log row for a decision, as column values: enough to replay it."""
    return {
        "conversation_id": conversation_id,
        "message_id": message_id,
        "text": text,
        "route": decision.route,
        "intent": decision.intent,
        "confidence": decision.confidence,
        "candidates": [
            {"intent": c.intent, "score": c.score, "confidence": c.confidence} for c in decision.candidates
        ],
        "options": list(decision.options),
        "answer": decision.answer,
        "reason": decision.reason,
        "threshold": decision.threshold,
        "margin": decision.margin,
        "retrieval_score": decision.retrieval_score,
        "source": decision.source,
        "context_used": decision.context_used,
        "escalation": escalation,
        "chosen": chosen,
        "model_id": decision.model_id,
        "intents_version": decision.intents_version,
        "calibration_id": decision.calibration_id,
        "latency_ms": round(latency_ms, 3),
        "reviewed": False,
        "created_at": at,
    }


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


@dataclass
class _Outcome:
    """One turn inside a batch write, after the conversation rules."""

    pending: PendingWrite
    conversation: Conversation
    decision: Decision
    escalation: str | None


def _ids(generated: Iterable[int | None]) -> list[int]:
    """Primary keys returned by a bulk INSERT (never NULL)."""
    ids = list(generated)
    if any(i is None for i in ids):
        raise RuntimeError("the database returned no id for an inserted row")
    return [i for i in ids if i is not None]


# The Core tables behind the models: the writer's bulk statements skip per-object ORM work
CONVERSATIONS: Table = SQLModel.metadata.tables["conversation"]
MESSAGES: Table = SQLModel.metadata.tables["message"]
DECISIONS: Table = SQLModel.metadata.tables["decision"]
TICKETS: Table = SQLModel.metadata.tables["handoff_ticket"]


def _conversation_row(conversation: Conversation) -> dict[str, Any]:
    """Column values of a new conversation ("metadata" is the column behind `meta`)."""
    row = conversation.model_dump(exclude={"meta"})
    row["metadata"] = conversation.meta
    return row


def _reserve_ids(session: Session, table: Table, count: int) -> list[int] | None:
    """`count` ids from the table's PostgreSQL sequence, ascending; None on databases without one."""
    if session.get_bind().dialect.name != "postgresql":
        return None
    return sorted(
        session.scalars(
            sa_text("SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :n)"),
            {"table": table.name, "n": count},
        )
    )


class ChatService:
    """Joins the routing engine and the conversation store (with a spool for database outages).

    A turn is handled in three steps that the HTTP API spreads over its batchers: `open_turn` (read
    the conversation), routing (`route_context` + `Engine.route_batch`, or `decide_choice` for a clarify
    pick), and `store_batch` (write many turns in one transaction). `chat` runs the three in a row.
    """

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
        turn = self.open_turn(
            message=message,
            conversation_id=conversation_id,
            channel=channel,
            metadata=metadata,
            choice=choice,
        )
        if turn.choice is not None:
            text, decision = self.decide_choice(turn)
        else:
            assert turn.message is not None
            text, decision = turn.message, self.engine.route(turn.message, self.route_context(turn))
        pending = self.pending_write(turn, text, decision)
        if turn.database_down:
            return self.spool_turn(pending)
        result = self.store_batch([pending])[0]
        if isinstance(result, BaseException):
            raise result
        return result

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
            if database_down and not CONVERSATION_ID.fullmatch(conversation_id):
                # nothing can check the id now; accept only the shape this server hands out
                raise NotFoundError(
                    f"unknown conversation '{conversation_id}'; omit conversation_id to start a new one"
                )
        return Turn(
            message=message,
            choice=choice,
            conversation=existing,
            conversation_id=existing.id if existing else conversation_id or uuid.uuid4().hex,
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
        if choice not in offered:
            allowed = ", ".join(offered) if offered else "none: there is no open clarify question"
            raise InvalidInputError("choice", f"'{choice}' was not offered; allowed: {allowed}")
        label = self.engine.intents.get(choice)
        text = turn.message or (label.spec.label if label else choice)
        question = conversation.pending_text if conversation and conversation.pending_text else text
        return text, self.engine.answer_choice(choice, question, self.route_context(turn).metadata)

    def pending_write(self, turn: Turn, text: str, decision: Decision) -> PendingWrite:
        """What storing the routed turn will write."""
        return PendingWrite(
            spool_id=uuid.uuid4().hex,
            conversation_id=turn.conversation_id,
            channel=turn.channel,
            metadata=turn.metadata,
            text=text,
            decision=decision,
            latency_ms=(time.perf_counter() - turn.started) * 1000,
            chosen=turn.choice is not None,
            new_conversation=turn.conversation is None and not turn.database_down,
            at=utcnow(),
        )

    def store_batch(self, pendings: list[PendingWrite]) -> list[ChatReply | BaseException]:
        """Write many turns in one transaction (group commit); spool them all if the database is down.

        If the batch fails for another reason, each turn is retried alone so one bad turn fails only
        its own request: the result list then holds that turn's exception.
        """
        try:
            with session_scope(self.database) as session:
                return list(self._store_many(session, pendings))
        except DATABASE_DOWN:
            if self.spool is None:
                raise
            return [self.spool_turn(pending) for pending in pendings]
        except Exception as exc:
            if len(pendings) == 1:
                return [exc]
            return [result for pending in pendings for result in self.store_batch([pending])]

    def spool_turn(self, pending: PendingWrite) -> ChatReply:
        """Answer without the database: apply the rules to a fresh conversation and spool the turn."""
        if self.spool is None:
            raise RuntimeError("no spool configured")
        offline = Conversation(id=pending.conversation_id, channel=pending.channel, meta=pending.metadata)
        decision, escalation = self._apply_conversation_rules(
            offline, pending.decision, pending.text, pending.chosen
        )
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
                self._store_many(session, [pending])
                session.add(SpoolApplied(id=pending.spool_id))

        return self.spool.drain(apply, retryable=DATABASE_DOWN)

    def _store_many(self, session: Session, pendings: list[PendingWrite]) -> list[ChatReply]:
        """Write turns in the caller's transaction: conversations, messages, decisions, tickets.

        Statements are per batch, not per turn (a few bulk INSERTs with RETURNING), which is what lets
        one writer thread keep up with hundreds of turns a second.
        """
        ids = sorted({p.conversation_id for p in pendings if not p.new_conversation})
        conversations: dict[str, Conversation] = {}
        if ids:
            found = session.exec(
                # lock the rows, in id order so two writers never deadlock: two replicas answering one
                # conversation must not both escalate it
                select(Conversation)
                .where(col(Conversation.id).in_(ids))
                .order_by(col(Conversation.id))
                .with_for_update()
            )
            conversations = {conversation.id: conversation for conversation in found}
        existing = set(conversations)  # before the batch's new conversations join the dict
        created: list[Conversation] = []
        outcomes = [self._apply_turn(conversations, created, pending) for pending in pendings]
        if created:  # Core statements from here on: the ORM's per-object work cost half the writer's time
            session.execute(insert(CONVERSATIONS), [_conversation_row(c) for c in created])
        session.flush()  # changes to conversations that existed; all exist before messages refer to them
        # The user message and its decision point at each other. PostgreSQL hands out the decision ids
        # first (one sequence call), so both rows are inserted complete; elsewhere the messages get
        # their decision ids in a bulk UPDATE afterwards (cheap in SQLite, but on PostgreSQL every
        # updated row is a dead tuple for vacuum and an extra statement).
        reserved = _reserve_ids(session, DECISIONS, len(outcomes))
        message_ids = _ids(
            session.scalars(
                insert(MESSAGES).returning(MESSAGES.c.id, sort_by_parameter_order=True),
                [
                    {
                        "conversation_id": o.conversation.id,
                        "role": "user",
                        "text": o.pending.text,
                        "decision_id": reserved[n] if reserved else None,
                        "created_at": o.pending.at,
                    }
                    for n, o in enumerate(outcomes)
                ],
            )
        )
        rows = [
            decision_values(
                o.decision,
                conversation_id=o.conversation.id,
                message_id=message_id,
                text=o.pending.text,
                latency_ms=o.pending.latency_ms,
                escalation=o.escalation,
                chosen=o.pending.chosen,
                at=o.pending.at,
            )
            for o, message_id in zip(outcomes, message_ids, strict=True)
        ]
        if reserved:
            session.execute(
                insert(DECISIONS), [{**row, "id": i} for row, i in zip(rows, reserved, strict=True)]
            )
            decision_ids = reserved
        else:
            decision_ids = _ids(
                session.scalars(
                    insert(DECISIONS).returning(DECISIONS.c.id, sort_by_parameter_order=True),
                    rows,
                )
            )
            session.execute(
                update(MESSAGES)
                .where(MESSAGES.c.id == bindparam("message"))
                .values(decision_id=bindparam("decision")),
                [
                    {"message": message_id, "decision": decision_id}
                    for message_id, decision_id in zip(message_ids, decision_ids, strict=True)
                ],
            )
        answers = [
            {
                "conversation_id": o.conversation.id,
                "role": "bot",
                "text": o.decision.answer,
                "decision_id": decision_id,
                "created_at": o.pending.at,
            }
            for o, decision_id in zip(outcomes, decision_ids, strict=True)
            if o.decision.answer
        ]
        if answers:
            session.execute(insert(MESSAGES), answers)
        tickets = self._tickets_for(session, outcomes, decision_ids, existing=existing)
        session.flush()
        return [
            ChatReply(
                o.conversation.id,
                message_id,
                decision_id,
                o.decision,
                o.escalation,
                tickets.get(o.conversation.id) if o.decision.route == "handoff" else None,
                self._options(o.decision),
            )
            for o, message_id, decision_id in zip(outcomes, message_ids, decision_ids, strict=True)
        ]

    def _apply_turn(
        self, conversations: dict[str, Conversation], created: list[Conversation], pending: PendingWrite
    ) -> _Outcome:
        """The turn's conversation (created if new) with the conversation rules applied to it."""
        conversation = conversations.get(pending.conversation_id)
        if conversation is None:  # inserted by the caller in one bulk statement, not by the ORM
            conversation = Conversation(
                id=pending.conversation_id,
                channel=pending.channel,
                meta=pending.metadata,
                created_at=pending.at,
            )
            conversations[conversation.id] = conversation
            created.append(conversation)
        elif pending.metadata:
            conversation.meta = {**conversation.meta, **pending.metadata}
        if pending.offline:  # the customer already got this answer: store it as sent, not re-decided
            decision, escalation = pending.decision, pending.escalation
            self._remember_turn(conversation, decision, pending.text, pending.chosen)
        else:
            decision, escalation = self._apply_conversation_rules(
                conversation, pending.decision, pending.text, pending.chosen
            )
        if decision.route == "handoff":  # now, so a later turn in the same batch sees it
            conversation.status = "handoff"
        conversation.updated_at = utcnow()
        return _Outcome(pending, conversation, decision, escalation)

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
    def _tickets_for(
        session: Session, outcomes: list[_Outcome], decision_ids: list[int], *, existing: set[str]
    ) -> dict[str, int]:
        """The ticket of every conversation handed off in this batch: its open one, or a new one.

        One SELECT (only for conversations that existed before the batch) and one bulk INSERT.
        """
        handoffs = [
            (o, decision_id)
            for o, decision_id in zip(outcomes, decision_ids, strict=True)
            if o.decision.route == "handoff"
        ]
        if not handoffs:
            return {}
        tickets: dict[str, int] = {}
        known = sorted({o.conversation.id for o, _ in handoffs} & existing)
        if known:
            rows = session.exec(
                select(HandoffTicket.conversation_id, HandoffTicket.id)
                .where(
                    col(HandoffTicket.conversation_id).in_(known),
                    col(HandoffTicket.status).in_(("open", "claimed")),
                )
                .order_by(col(HandoffTicket.id))
            )
            tickets = {conversation_id: ticket_id for conversation_id, ticket_id in rows if ticket_id}
        first_handoff: dict[str, tuple[_Outcome, int]] = {}
        for o, decision_id in handoffs:
            if o.conversation.id not in tickets:
                first_handoff.setdefault(o.conversation.id, (o, decision_id))
        if first_handoff:
            created = _ids(
                session.scalars(
                    insert(TICKETS).returning(TICKETS.c.id, sort_by_parameter_order=True),
                    [
                        {
                            "conversation_id": conversation_id,
                            "decision_id": decision_id,
                            "intent": o.decision.intent,
                            "reason": o.decision.reason,
                            "status": "open",
                            "created_at": o.pending.at,
                        }
                        for conversation_id, (o, decision_id) in first_handoff.items()
                    ],
                )
            )
            tickets.update(zip(first_handoff, created, strict=True))
        return tickets
