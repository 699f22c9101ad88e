"""The rows one batch of chat turns inserts, as bulk Core statements: ids, messages, decisions, tickets.

`turns.write_turns` decides what each turn stores; this module writes it with a few statements per
batch (the ORM's per-object work cost half the writer's time). SQLite and PostgreSQL, the two databases
the store supports, both let a decision's and its message's ids be known before either row is written.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, func, insert
from sqlalchemy import select as sa_select
from sqlalchemy import text as sa_text
from sqlmodel import Session, SQLModel, col, select

from bot.routing.policy import Decision
from bot.store.models import HandoffTicket

if TYPE_CHECKING:
    from bot.store.turns import TurnOutcome

# The Core tables behind the models
CONVERSATIONS: Table = SQLModel.metadata.tables["conversation"]
MESSAGES: Table = SQLModel.metadata.tables["message"]
DECISIONS: Table = SQLModel.metadata.tables["decision"]
TICKETS: Table = SQLModel.metadata.tables["handoff_ticket"]


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
        # the message's tone, for sentiment by topic; a clarify pick scored no message of its own
        "anger": None if chosen else round(decision.anger, 4),
        "model_id": decision.model_id,
        "intents_version": decision.intents_version,
        "calibration_id": decision.calibration_id,
        "latency_ms": round(latency_ms, 3),
        "reviewed": False,
        "created_at": at,
    }


def _ids(generated: Iterable[int | None]) -> list[int]:
    """Primary keys returned by a bulk INSERT (never NULL)."""
    ids = list(generated)
    if any(i is None for i in ids):
        raise RuntimeError("the database returned no id for an inserted row")
    return [i for i in ids if i is not None]


def reserve_ids(session: Session, table: Table, count: int) -> list[int]:
    """`count` new ids for the table, ascending.

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
    raise RuntimeError(f"the conversation store supports SQLite and PostgreSQL, not {dialect}")


def insert_user_messages(session: Session, outcomes: list[TurnOutcome], decision_ids: list[int]) -> list[int]:
    """The turns' user messages, each pointing at its decision (ids reserved); returns their ids.

    SQLite: the ids are reserved too (no INSERT ... RETURNING, which SQLite runs row by row).
    """
    rows = [
        {
            "conversation_id": o.conversation.id,
            "role": "user",
            "text": o.pending.text,
            "decision_id": decision_id,
            "created_at": o.pending.at,
        }
        for o, decision_id in zip(outcomes, decision_ids, strict=True)
    ]
    if session.get_bind().dialect.name == "sqlite":
        message_ids = reserve_ids(session, MESSAGES, len(rows))
        session.execute(
            insert(MESSAGES), [{**row, "id": i} for row, i in zip(rows, message_ids, strict=True)]
        )
        return message_ids
    return _ids(
        session.scalars(insert(MESSAGES).returning(MESSAGES.c.id, sort_by_parameter_order=True), rows)
    )


def insert_decisions(
    session: Session, outcomes: list[TurnOutcome], message_ids: list[int], decision_ids: list[int]
) -> None:
    """The turns' decision log rows, with the ids reserved for them."""
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
    ids = zip(rows, decision_ids, outcomes, strict=True)
    session.execute(
        insert(DECISIONS), [{**row, "id": i, "request_id": o.pending.request_id} for row, i, o in ids]
    )


def insert_answers(session: Session, outcomes: list[TurnOutcome], decision_ids: list[int]) -> None:
    """The bot's answer message of every turn that has one."""
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


def tickets_for(
    session: Session, outcomes: list[TurnOutcome], decision_ids: list[int], *, existing: set[str]
) -> dict[str, int]:
    """The ticket of every conversation handed off (or waiting for a person) in this batch: its open one,
    or a new one for a handoff.

    One SELECT (only for conversations that existed before the batch) and one bulk INSERT.
    """
    handoffs = [
        (o, decision_id) for o, decision_id in zip(outcomes, decision_ids, strict=True) if o.holds_ticket
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
    first_handoff: dict[str, tuple[TurnOutcome, int]] = {}
    for o, decision_id in handoffs:
        if o.conversation.id not in tickets and o.decision.route == "handoff":
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
