"""Database tables: conversations, messages, routing decisions, handoff tickets and reviews."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on every backend (SQLite stores them naive)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        """Store UTC; refuse naive datetimes, whose zone would be a guess."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: use datetime.now(UTC)")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        """Read back as aware UTC."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


def _timestamp(index: bool = False) -> Any:
    return Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False, index=index)


def _json(default: Any) -> Any:
    return Field(default_factory=lambda: type(default)(), sa_type=sa.JSON, nullable=False)


class Conversation(SQLModel, table=True):
    """One customer's chat; `status` says whether the bot or a person answers it."""

    id: str = Field(default_factory=lambda: uuid.uuid4().hex, primary_key=True, max_length=64)
    channel: str = Field(default="web", max_length=64)
    meta: dict[str, Any] = Field(
        default_factory=dict, sa_column=sa.Column("metadata", sa.JSON, nullable=False)
    )
    status: str = Field(default="bot", max_length=16)  # bot | handoff (a ticket waits) | agent (claimed)
    fallback_streak: int = 0  # consecutive messages no intent took; two in a row escalate
    pending_options: list[str] = _json([])  # clarify options awaiting the customer's choice
    pending_text: str | None = None  # the message those options were offered for
    last_user_text: str | None = None  # context for short follow-ups
    created_at: datetime = _timestamp()
    updated_at: datetime = _timestamp()


class Message(SQLModel, table=True):
    """A line in a conversation, written by the user, the bot or a human agent."""

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: str = Field(foreign_key="conversation.id", index=True, max_length=64)
    role: str = Field(max_length=16)  # user | bot | agent
    text: str
    author: str | None = Field(default=None, max_length=128)  # the agent's name for agent messages
    decision_id: int | None = Field(default=None, index=True)
    created_at: datetime = _timestamp()


class DecisionLog(SQLModel, table=True):
    """Everything needed to replay one routing decision: candidates, thresholds, model and version."""

    __tablename__ = "decision"

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: str = Field(foreign_key="conversation.id", index=True, max_length=64)
    message_id: int | None = Field(default=None)
    text: str
    route: str = Field(max_length=16, index=True)
    intent: str | None = Field(default=None, max_length=100, index=True)
    confidence: float
    candidates: list[dict[str, Any]] = _json([])
    options: list[str] = _json([])
    answer: str = ""
    reason: str
    threshold: float
    margin: float
    retrieval_score: float | None = None
    source: str | None = None
    context_used: bool = False
    # angry | repeated_fallback (handed off) | awaiting_agent (a ticket waits) | with_agent (an agent holds it)
    escalation: str | None = Field(default=None, max_length=32)
    chosen: bool = False  # the customer picked this intent from clarify options
    model_id: str = Field(max_length=200)
    intents_version: str = Field(max_length=64)
    # what turned scores into confidences: the calibration's content hash, or 'settings-' + a hash
    calibration_id: str = Field(default="", max_length=64)
    latency_ms: float
    reviewed: bool = Field(default=False, index=True)
    created_at: datetime = _timestamp(index=True)
    # the HTTP request that made it (X-Request-Id, bot.api.request_id): the id its JSON log lines carry
    request_id: str | None = Field(default=None, max_length=128, index=True)
    # the message's anger score (bot.routing.tone; sentiment by topic counts it negative above
    # BOT_SENTIMENT_NEGATIVE_THRESHOLD); None for a clarify pick and for rows stored before it was kept
    anger: float | None = None


class HandoffTicket(SQLModel, table=True):
    """A conversation waiting for, or taken by, a human agent."""

    __tablename__ = "handoff_ticket"

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: str = Field(foreign_key="conversation.id", index=True, max_length=64)
    decision_id: int | None = None
    intent: str | None = Field(default=None, max_length=100)
    reason: str
    status: str = Field(default="open", max_length=16, index=True)  # open | claimed | resolved
    claimed_by: str | None = Field(default=None, max_length=128)
    claimed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    resolved_intent: str | None = Field(default=None, max_length=100)
    note: str | None = None
    created_at: datetime = _timestamp()


class Review(SQLModel, table=True):
    """An analyst's verdict on a decision; the latest one per decision counts."""

    id: int | None = Field(default=None, primary_key=True)
    decision_id: int = Field(foreign_key="decision.id", index=True)
    verdict: str = Field(max_length=16)  # correct | wrong
    intent: str | None = Field(default=None, max_length=100)  # the intent that was really meant
    new_intent: str | None = Field(default=None, max_length=100)  # a proposed intent that does not exist yet
    reviewer: str | None = Field(default=None, max_length=128)
    created_at: datetime = _timestamp()


class LearnedExample(SQLModel, table=True):
    """A customer message confirmed as an example of an intent (by a review or a resolved ticket).

    One row per distinct text: a later correction moves the text to the newer intent.
    """

    __tablename__ = "learned_example"

    id: int | None = Field(default=None, primary_key=True)
    text_hash: str = Field(max_length=64, unique=True)  # sha256 of the text: long texts cannot be unique keys
    text: str
    intent: str = Field(max_length=100, index=True)
    source: str = Field(max_length=16)  # review | ticket
    decision_id: int | None = None
    ticket_id: int | None = None
    exported: bool = False  # written into intents/*.yaml by `bot review export`
    created_at: datetime = _timestamp()
    updated_at: datetime = _timestamp()


class SpoolApplied(SQLModel, table=True):
    """A spooled chat turn already written: replaying the spool twice writes nothing twice."""

    __tablename__ = "spool_applied"

    id: str = Field(primary_key=True, max_length=32)
    applied_at: datetime = _timestamp()


class IntentsVersion(SQLModel, table=True):
    """One intents folder as a server loaded it: every file's text, the model, and what changed.

    Identified by `hash` (files and model id): loading the same folder twice reuses its row.
    """

    __tablename__ = "intents_version"

    id: int | None = Field(default=None, primary_key=True)
    hash: str = Field(max_length=64, unique=True)
    intents_version: str = Field(max_length=64, index=True)  # the intents' content hash decisions record
    model_id: str = Field(max_length=200)
    files: dict[str, str] = _json({})  # path inside the folder -> text
    specs: dict[str, Any] = _json({})  # intent name -> its YAML fields, for summaries and diffs
    summary: str = ""  # what changed against the version live before it, one line
    loaded_by: str = Field(max_length=128)
    created_at: datetime = _timestamp()


class IntentsActivation(SQLModel, table=True):
    """A version made live; the newest row is what every replica routes by."""

    __tablename__ = "intents_activation"

    id: int | None = Field(default=None, primary_key=True)
    version_id: int = Field(foreign_key="intents_version.id", index=True)
    action: str = Field(max_length=16)  # start | reload | activate | promote
    activated_by: str = Field(max_length=128)
    created_at: datetime = _timestamp()


class ShadowDecision(SQLModel, table=True):
    """What a shadow version (a candidate routing every live message too) decided; never shown to customers.

    Kept apart from `decision`, so no endpoint a customer or agent reads can return it by mistake.
    """

    __tablename__ = "shadow_decision"

    id: int | None = Field(default=None, primary_key=True)
    decision_id: int = Field(foreign_key="decision.id", index=True)  # the live decision of the same message
    candidate: str = Field(max_length=300)  # the folder or 'version N' the shadow routes by
    intents_version: str = Field(max_length=64, index=True)
    route: str = Field(max_length=16)
    intent: str | None = Field(default=None, max_length=100)
    confidence: float
    source: str | None = None
    context_used: bool = False
    created_at: datetime = _timestamp(index=True)


class TrainedModel(SQLModel, table=True):
    """A folder version's self-trained model as replicas share it: what the ONNX backends load (configs,
    tokenizer, the int8 graph) and the cross-fit, packed, so that one replica trains and every other one
    unpacks it into its own cache (bot.runtime.model_share). The archive is read only to unpack it."""

    __tablename__ = "trained_model"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=100, unique=True)  # the model folder's name in the cache: self-<content id>
    intents_version: str = Field(max_length=64)
    fingerprint: str = Field(max_length=200)  # the model id's base, the same on every replica
    backend: str = Field(max_length=32)
    size_bytes: int
    archive: bytes = Field(sa_column=sa.Column(sa.LargeBinary, nullable=False))
    trained_by: str = Field(max_length=200)
    created_at: datetime = _timestamp()


class TrainingLease(SQLModel, table=True):
    """Which replica trains a folder version's model now: taken by one conditional write, renewed while
    the training runs, taken over by another replica once it expires (its holder died)."""

    __tablename__ = "training_lease"

    key: str = Field(primary_key=True, max_length=100)
    holder: str = Field(max_length=200)
    expires_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    created_at: datetime = _timestamp()


class WebhookSubscription(SQLModel, table=True):
    """Where events are sent (bot.store.webhooks): added by the admin API or read from BOT_WEBHOOKS.

    The secret signs each delivery; the API shows it once, when it is set, and never again.
    """

    __tablename__ = "webhook_subscription"

    id: int | None = Field(default=None, primary_key=True)
    url: str = Field(max_length=2000)
    secret: str = Field(max_length=200)
    events: list[str] = _json([])  # event types (bot.store.outbox.EVENT_TYPES); empty: all of them
    source: str = Field(default="api", max_length=16)  # api | settings (BOT_WEBHOOKS)
    active: bool = True  # a deleted subscription stays for its deliveries' history
    created_at: datetime = _timestamp()


class WebhookDelivery(SQLModel, table=True):
    """The outbox: one event for one subscription, written in the transaction of what caused it and sent
    by a dispatcher (bot.runtime.webhooks), at least once; `event_id` is the receiver's de-duplication key."""

    __tablename__ = "webhook_delivery"

    id: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(max_length=64, index=True)  # the same for every subscription the event goes to
    subscription_id: int = Field(foreign_key="webhook_subscription.id", index=True)
    event_type: str = Field(max_length=64)
    payload: dict[str, Any] = _json({})
    status: str = Field(default="pending", max_length=16, index=True)  # pending | delivered | failed
    attempts: int = 0
    next_attempt_at: datetime = _timestamp(index=True)
    lease_until: datetime | None = Field(default=None, sa_type=UTCDateTime)  # a dispatcher is sending it
    last_error: str | None = Field(default=None, max_length=500)
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = _timestamp()


class SentimentSurge(SQLModel, table=True):
    """A topic whose share of negative messages over its last hours jumped over its own baseline
    (bot.runtime.sentiment): written once per surge whichever replica sees it first, in the transaction
    of its `sentiment.surge` webhook event. After it, the topic is judged only on hours
    BOT_SENTIMENT_REARM_HOURS (at least a day) after `created_at` (bot.store.sentiment); the unique key
    (intent, day) settles replicas writing in the same moment."""

    __tablename__ = "sentiment_surge"
    __table_args__ = (sa.UniqueConstraint("intent", "day", name="uq_sentiment_surge_intent_day"),)

    id: int | None = Field(default=None, primary_key=True)
    intent: str = Field(max_length=100)
    day: str = Field(max_length=10, index=True)  # the UTC day it was found (of created_at), YYYY-MM-DD
    messages: int  # the topic's scored messages in the window when the surge was found
    negative: int
    share: float
    baseline_messages: int  # the trailing days' scored messages of the topic
    baseline_negative: int
    baseline_share: float
    p_value: float
    samples: list[str] = _json([])  # the window's most negative messages, redacted as the decisions keep them
    created_at: datetime = _timestamp()
