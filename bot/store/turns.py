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
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import insert
from sqlmodel import Session, col, select

from bot.errors import InvalidInputError
from bot.routing.policy import Candidate, Decision
from bot.store.models import Conversation, utcnow
from bot.store.outbox import HeldTurn, enqueue_turns
from bot.store.turn_rows import (
    CONVERSATIONS,
    DECISIONS,
    insert_answers,
    insert_decisions,
    insert_user_messages,
    reserve_ids,
    tickets_for,
)

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
    request_id: str | None = None  # the HTTP request it came in with, stored with its decision

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


@dataclass(frozen=True)
class StoredTurn:
    """What writing one turn produced: its row ids, the decision after the rules, its ticket if any."""

    conversation_id: str
    message_id: int
    decision_id: int
    decision: Decision
    escalation: str | None
    ticket_id: int | None


# Who answers a conversation (its `status`): the bot; the bot while a ticket waits for a person (no agent
# has claimed it); a person, once an agent claimed the ticket (`bot.store.handoffs.claim`). Resolving the
# ticket gives it back to the bot.
WITH_BOT = "bot"
WAITING = "handoff"  # the value conversations handed off before claims were recorded already have
WITH_AGENT = "agent"


class ConversationState(Protocol):
    """What the conversation rules read and update on a conversation: a stored `Conversation` row, or
    the `NewConversation` a batch's first turn of a conversation starts."""

    id: str
    status: str  # WITH_BOT, WAITING or WITH_AGENT
    fallback_streak: int
    pending_options: list[str]
    pending_text: str | None
    last_user_text: str | None
    meta: dict[str, Any]
    updated_at: datetime


@dataclass
class NewConversation:
    """A conversation a batch creates: plain attributes, inserted as a row by one bulk statement.

    Not an ORM object: building and dumping a `Conversation` costs about 80 us per new conversation on
    the writer thread; this holds the same columns with the model's defaults.
    """

    id: str
    channel: str
    meta: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    status: str = WITH_BOT
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
class TurnOutcome:
    """One turn inside a batch write, after the conversation rules."""

    pending: PendingWrite
    conversation: ConversationState
    decision: Decision
    escalation: str | None
    # a ticket was open (or opened) for the conversation at this turn: the reply names it, so the widget
    # keeps saying a person is on the way while the bot answers
    holds_ticket: bool = False


def write_turns(session: Session, pendings: list[PendingWrite], rules: TurnRules) -> list[StoredTurn]:
    """Write turns in the caller's transaction: conversations, messages, decisions, tickets.

    Statements are per batch, not per turn (a few bulk INSERTs, `turn_rows`), which is what lets one
    writer thread keep up with hundreds of turns a second.
    """
    if not pendings:
        return []
    conversations = _locked_conversations(session, pendings)
    existing = set(conversations)  # before the batch's new conversations join the dict
    created: list[NewConversation] = []
    outcomes = [_apply_turn(conversations, created, pending, rules) for pending in pendings]
    if created:  # Core statements from here on: the ORM's per-object work cost half the writer's time
        session.execute(insert(CONVERSATIONS), [c.row() for c in created])
    session.flush()  # changes to conversations that existed; all exist before messages refer to them
    # The user message and its decision point at each other: the decision ids are reserved first
    # (PostgreSQL: one sequence call; SQLite: the transaction holds the write lock, since every turn has
    # written its conversation by now), so both rows are inserted complete, with no UPDATE afterwards.
    decision_ids = reserve_ids(session, DECISIONS, len(outcomes))
    message_ids = insert_user_messages(session, outcomes, decision_ids)
    insert_decisions(session, outcomes, message_ids, decision_ids)
    insert_answers(session, outcomes, decision_ids)
    tickets = tickets_for(session, outcomes, decision_ids, existing=existing)
    if tickets:  # a ticket opened or a person's conversation moved: its events, in this transaction
        enqueue_turns(session, _held_turns(outcomes, message_ids, decision_ids, tickets))
    session.flush()
    return [
        StoredTurn(
            o.conversation.id,
            message_id,
            decision_id,
            o.decision,
            o.escalation,
            tickets.get(o.conversation.id) if o.holds_ticket else None,
        )
        for o, message_id, decision_id in zip(outcomes, message_ids, decision_ids, strict=True)
    ]


def _held_turns(
    outcomes: list[TurnOutcome], message_ids: list[int], decision_ids: list[int], tickets: dict[str, int]
) -> list[HeldTurn]:
    """The batch's turns of conversations with a ticket, as the outbox reads them."""
    return [
        HeldTurn(
            o.conversation.id,
            o.conversation.status,
            ticket,
            message_id,
            decision_id,
            o.pending.text,
            o.pending.at,
        )
        for o, message_id, decision_id in zip(outcomes, message_ids, decision_ids, strict=True)
        if o.holds_ticket and (ticket := tickets.get(o.conversation.id)) is not None
    ]


def _locked_conversations(session: Session, pendings: list[PendingWrite]) -> dict[str, ConversationState]:
    """The stored conversations the turns continue, their rows locked until the transaction ends."""
    ids = sorted({p.conversation_id for p in pendings if not p.new_conversation})
    if not ids:
        return {}
    found = session.exec(
        # lock the rows, in id order so two writers never deadlock: two replicas answering one
        # conversation must not both escalate it
        select(Conversation)
        .where(col(Conversation.id).in_(ids))
        .order_by(col(Conversation.id))
        .with_for_update()
    )
    return {conversation.id: conversation for conversation in found}


def _apply_turn(
    conversations: dict[str, ConversationState],
    created: list[NewConversation],
    pending: PendingWrite,
    rules: TurnRules,
) -> TurnOutcome:
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
    if decision.route == "handoff" and conversation.status == WITH_BOT:  # now, so a later turn sees it
        conversation.status = WAITING
    conversation.updated_at = utcnow()
    return TurnOutcome(pending, conversation, decision, escalation, conversation.status != WITH_BOT)
