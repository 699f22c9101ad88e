"""Storing chat turns: conversations, messages, decisions and handoff tickets, many turns per transaction.

A batch is written with a few bulk statements (INSERT ... RETURNING), not per-object ORM work, which is
what lets one writer thread keep up with hundreds of turns a second. The conversation rules (escalation,
fallback streaks, clarify options) are the chat layer's: the writer calls them, as `rules`, on each turn's
locked conversation row, so two replicas answering one conversation never both escalate it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Table, bindparam, func, insert, update
from sqlalchemy import select as sa_select
from sqlalchemy import text as sa_text
from sqlmodel import Session, SQLModel, col, select

from bot.errors import InvalidInputError
from bot.routing.policy import Candidate, Decision
from bot.store.models import Conversation, HandoffTicket, utcnow

log = logging.getLogger(__name__)

# A conversation's metadata is merged from every turn's and rewritten with its row on every turn, so it
# is capped as a whole (each message's own metadata is capped by the API at 4096 bytes and these keys).
MAX_CONVERSATION_METADATA_BYTES = 8192
MAX_CONVERSATION_METADATA_KEYS = 50


def metadata_problem(merged: dict[str, Any]) -> str | None:
    """What is wrong with a conversation's merged metadata (over a cap), or None."""
    keys = len(merged)
    size = len(json.dumps(merged, ensure_ascii=False, default=str).encode())
    if keys <= MAX_CONVERSATION_METADATA_KEYS and size <= MAX_CONVERSATION_METADATA_BYTES:
        return None
    return (
        f"merged into the conversation's, it would have {keys} keys and {size} bytes as JSON; a conversation "
        f"keeps at most {MAX_CONVERSATION_METADATA_KEYS} keys and {MAX_CONVERSATION_METADATA_BYTES} bytes "
        "(a key sent again replaces its value)"
    )


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
class StoredTurn:
    """What writing one turn produced: its row ids, the decision after the rules, its ticket if any."""

    conversation_id: str
    message_id: int
    decision_id: int
    decision: Decision
    escalation: str | None
    ticket_id: int | None


class ConversationState(Protocol):
    """What the conversation rules read and update on a conversation: a stored `Conversation` row, or
    the `NewConversation` a batch's first turn of a conversation starts."""

    id: str
    status: str
    fallback_streak: int
    pending_options: list[str]
    pending_text: str | None
    last_user_text: str | None
    meta: dict[str, Any]
    updated_at: datetime


@dataclass
class NewConversation:
    """A conversation a batch creates: plain attributes, inserted as a row by one bulk statement.

    Not an ORM object: building and dumping a `Conversation` cost about 80 us per new conversation on
    the writer thread; this holds the same columns with the model's defaults.
    """

    id: str
    channel: str
    meta: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    status: str = "bot"
    fallback_streak: int = 0
    pending_options: list[str] = dataclasses.field(default_factory=list)
    pending_text: str | None = None
    last_user_text: str | None = None

    def row(self) -> dict[str, Any]:
        """Column values ("metadata" is the column behind `meta`)."""
        return {
            "id": self.id,
            "channel": self.channel,
            "status": self.status,
            "fallback_streak": self.fallback_streak,
            "pending_options": self.pending_options,
            "pending_text": self.pending_text,
            "last_user_text": self.last_user_text,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "metadata": self.meta,
        }


# The conversation rules, applied by the chat layer to a turn's (locked) conversation: returns the
# decision to store and the escalation, if any, and updates what the next turn needs on the conversation.
TurnRules = Callable[[ConversationState, PendingWrite], tuple[Decision, "str | None"]]


@dataclass
class _Outcome:
    """One turn inside a batch write, after the conversation rules."""

    pending: PendingWrite
    conversation: ConversationState
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


def _reserve_ids(session: Session, table: Table, count: int) -> list[int] | None:
    """`count` new ids for the table, ascending; None on databases where they cannot be known beforehand.

    PostgreSQL: from the table's sequence. SQLite: the ids it would give the rows itself, max(id) + 1
    onwards (the tables have no AUTOINCREMENT). Only call this after the transaction has written: it then
    holds SQLite's write lock, so no other connection inserts until it commits.
    """
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return sorted(
            session.scalars(
                sa_text("SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :n)"),
                {"table": table.name, "n": count},
            )
        )
    if dialect == "sqlite":
        largest = session.scalar(sa_select(func.coalesce(func.max(table.c.id), 0)))
        start = int(largest or 0) + 1
        return list(range(start, start + count))
    return None


def write_turns(session: Session, pendings: list[PendingWrite], rules: TurnRules) -> list[StoredTurn]:
    """Write turns in the caller's transaction: conversations, messages, decisions, tickets.

    Statements are per batch, not per turn (a few bulk INSERTs with RETURNING), which is what lets
    one writer thread keep up with hundreds of turns a second.
    """
    ids = sorted({p.conversation_id for p in pendings if not p.new_conversation})
    conversations: dict[str, ConversationState] = {}
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
    created: list[NewConversation] = []
    outcomes = [_apply_turn(conversations, created, pending, rules) for pending in pendings]
    if created:  # Core statements from here on: the ORM's per-object work cost half the writer's time
        session.execute(insert(CONVERSATIONS), [c.row() for c in created])
    session.flush()  # changes to conversations that existed; all exist before messages refer to them
    # The user message and its decision point at each other. PostgreSQL hands out the decision ids
    # first (one sequence call); in SQLite the next ids are known, since every turn has written its
    # conversation by now and the transaction holds the write lock (one max(id) per table, and no
    # INSERT ... RETURNING, which SQLite runs row by row). So both rows are inserted complete; other
    # databases get the messages' decision ids in a bulk UPDATE afterwards (on PostgreSQL every updated
    # row would be a dead tuple for vacuum and an extra statement).
    reserved = _reserve_ids(session, DECISIONS, len(outcomes))
    user_messages = [
        {
            "conversation_id": o.conversation.id,
            "role": "user",
            "text": o.pending.text,
            "decision_id": reserved[n] if reserved else None,
            "created_at": o.pending.at,
        }
        for n, o in enumerate(outcomes)
    ]
    sqlite = session.get_bind().dialect.name == "sqlite"
    known_message_ids = _reserve_ids(session, MESSAGES, len(outcomes)) if sqlite else None
    if known_message_ids:
        session.execute(
            insert(MESSAGES),
            [{**row, "id": i} for row, i in zip(user_messages, known_message_ids, strict=True)],
        )
        message_ids = known_message_ids
    else:
        message_ids = _ids(
            session.scalars(
                insert(MESSAGES).returning(MESSAGES.c.id, sort_by_parameter_order=True), user_messages
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
        session.execute(insert(DECISIONS), [{**row, "id": i} for row, i in zip(rows, reserved, strict=True)])
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
    tickets = _tickets_for(session, outcomes, decision_ids, existing=existing)
    session.flush()
    return [
        StoredTurn(
            o.conversation.id,
            message_id,
            decision_id,
            o.decision,
            o.escalation,
            tickets.get(o.conversation.id) if o.decision.route == "handoff" else None,
        )
        for o, message_id, decision_id in zip(outcomes, message_ids, decision_ids, strict=True)
    ]


def _apply_turn(
    conversations: dict[str, ConversationState],
    created: list[NewConversation],
    pending: PendingWrite,
    rules: TurnRules,
) -> _Outcome:
    """The turn's conversation (created if new) with the conversation rules applied to it."""
    conversation = conversations.get(pending.conversation_id)
    if conversation is None:  # inserted by the caller in one bulk statement, not by the ORM
        new = NewConversation(
            id=pending.conversation_id,
            channel=pending.channel,
            meta=pending.metadata,
            created_at=pending.at,
            updated_at=pending.at,  # set below, after the rules
        )
        conversations[new.id] = new
        created.append(new)
        conversation = new
    elif pending.metadata:
        merged = {**conversation.meta, **pending.metadata}
        problem = metadata_problem(merged)
        if problem is None:
            conversation.meta = merged
        elif pending.offline:  # a spooled turn was answered long ago: keep it, without the new metadata
            log.warning("spooled turn %s: metadata not merged: %s", pending.spool_id, problem)
        else:  # checked when the turn arrived; only a concurrent turn of the same conversation gets here
            raise InvalidInputError("metadata", problem)
    decision, escalation = rules(conversation, pending)
    if decision.route == "handoff":  # now, so a later turn in the same batch sees it
        conversation.status = "handoff"
    conversation.updated_at = utcnow()
    return _Outcome(pending, conversation, decision, escalation)


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
