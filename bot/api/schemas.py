"""Request and response bodies of the HTTP API (they are also its OpenAPI schema)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_validator

from bot.content.intents import NAME_PATTERN
from bot.insights import stats
from bot.routing.policy import Route
from bot.store.turns import MAX_CONVERSATION_METADATA_KEYS

IntentName = Annotated[str, Field(pattern=NAME_PATTERN, max_length=100)]
AgentName = Annotated[str, Field(min_length=1, max_length=128)]


MAX_METADATA_BYTES = 4096
MAX_METADATA_DEPTH = 4


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


ANSWER_DESCRIPTION = (
    "Plain text, never HTML: it may contain <, > and & as typed (templates fill in customer metadata "
    "unescaped). Show it as text (textContent, not innerHTML) or escape it first."
)


class Strict(BaseModel):
    """Bodies reject unknown fields, so a typo is an error rather than silently ignored."""

    model_config = ConfigDict(extra="forbid")


class CandidateOut(BaseModel):
    """One candidate intent with its raw score and calibrated confidence."""

    intent: str
    score: float
    confidence: float


class OptionOut(BaseModel):
    """A clarify option: send `intent` back as `choice`."""

    intent: str
    label: str


class ChatIn(Strict):
    """A customer's message, or the pick of a clarify option (`choice`)."""

    conversation_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    message: Annotated[str, Field(max_length=100_000)] | None = None  # the real limit is a setting
    choice: IntentName | None = None
    channel: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    metadata: dict[str, Any] | None = Field(
        None,
        description="Context for answer templates (e.g. first_name), merged into the conversation's: at most "
        "4096 bytes and 50 keys per message, and the conversation's merged metadata at most "
        "8192 bytes and 50 keys (422 beyond).",
    )

    @field_validator("metadata")
    @classmethod
    def _small_metadata(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        """Metadata is context for templates, not a payload: small and shallow."""
        if value is None:
            return value
        try:
            size = len(json.dumps(value, allow_nan=False))
        except ValueError:  # the guard refuses NaN and Infinity in bodies; this holds for any other caller
            raise ValueError("numbers must be finite (no NaN or Infinity)") from None
        if size > MAX_METADATA_BYTES:
            raise ValueError(f"must be at most {MAX_METADATA_BYTES} bytes as JSON")
        if len(value) > MAX_CONVERSATION_METADATA_KEYS:
            raise ValueError(f"must have at most {MAX_CONVERSATION_METADATA_KEYS} keys")
        if _depth(value) > MAX_METADATA_DEPTH:
            raise ValueError(f"must nest at most {MAX_METADATA_DEPTH} levels deep")
        return value


class ChatOut(BaseModel):
    """The bot's decision and answer for one message."""

    conversation_id: str
    message_id: int | None  # None while the database is down: the turn is spooled (`stored` false)
    decision_id: int | None
    stored: bool = True
    route: Route
    intent: str | None
    confidence: float
    answer: str = Field(description=ANSWER_DESCRIPTION)
    reason: str
    candidates: list[CandidateOut]
    options: list[OptionOut] | None = None
    ticket_id: int | None = None
    source: str | None = None
    context_used: bool = False
    escalation: str | None = None


class MessageOut(BaseModel):
    """A line of a conversation."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    role: str
    text: str
    author: str | None
    created_at: datetime


class MessagesOut(BaseModel):
    """Messages after the `after` id; poll again with `after=last_id`."""

    conversation_id: str
    messages: list[MessageOut]
    last_id: int | None


class RouteIn(Strict):
    """Messages to classify; nothing is stored."""

    messages: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=100_000)]], Field(min_length=1, max_length=100)
    ]


class DecisionOut(BaseModel):
    """A routing decision without storage."""

    text: str
    route: str
    intent: str | None
    confidence: float
    answer: str = Field(description=ANSWER_DESCRIPTION)
    reason: str
    candidates: list[CandidateOut]
    options: list[str]
    source: str | None


class RouteOut(BaseModel):
    """Decisions in the order of the messages."""

    decisions: list[DecisionOut]
    model_id: str
    intents_version: str


class TicketOut(BaseModel):
    """A handoff ticket."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    conversation_id: str
    decision_id: int | None
    intent: str | None
    reason: str
    status: str
    claimed_by: str | None
    claimed_at: datetime | None
    resolved_at: datetime | None
    resolved_intent: str | None
    note: str | None
    created_at: datetime


class TicketsOut(BaseModel):
    """A page of tickets."""

    items: list[TicketOut]
    total: int
    limit: int
    offset: int


class AgentOut(BaseModel):
    """Who the presented key acts as: a name for `agent@NAME:KEY` keys, else null (name yourself in bodies)."""

    agent: str | None


class ClaimIn(Strict):
    """Who takes the ticket (may be left out when the API key names its agent)."""

    agent: AgentName | None = None


class ReplyIn(Strict):
    """An agent's reply to the customer (`agent` may be left out when the API key names its agent)."""

    agent: AgentName | None = None
    text: Annotated[str, Field(min_length=1, max_length=5000)]


class ResolveIn(Strict):
    """Close a ticket; `intent` is what the customer really meant."""

    agent: AgentName | None = None
    intent: IntentName | None = None
    note: Annotated[str, Field(max_length=5000)] | None = None


class LogOut(BaseModel):
    """A stored routing decision."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    conversation_id: str
    message_id: int | None
    text: str
    route: str
    intent: str | None
    confidence: float
    candidates: list[CandidateOut]
    options: list[str]
    answer: str
    reason: str
    threshold: float
    margin: float
    retrieval_score: float | None
    source: str | None
    context_used: bool
    escalation: str | None
    chosen: bool
    model_id: str
    intents_version: str
    calibration_id: str
    latency_ms: float
    reviewed: bool
    created_at: datetime


class LogsOut(BaseModel):
    """A page of decisions, newest first."""

    items: list[LogOut]
    total: int
    limit: int
    offset: int


class ReviewIn(Strict):
    """An analyst's verdict on a decision."""

    verdict: Literal["correct", "wrong"]
    intent: IntentName | None = None
    new_intent: IntentName | None = None
    reviewer: AgentName | None = None


class ReviewOut(BaseModel):
    """A stored review."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    decision_id: int
    verdict: str
    intent: str | None
    new_intent: str | None
    reviewer: str | None
    created_at: datetime


class IntentOut(BaseModel):
    """An intent as the router sees it."""

    name: str
    label: str
    description: str
    examples: list[str]
    learned_examples: list[str]
    has_answer: bool
    handoff: bool
    threshold: float | None
    tags: list[str]
    source: str


class IntentsOut(BaseModel):
    """The live intent set."""

    version: str
    model_id: str
    intents: list[IntentOut]


class ReloadOut(BaseModel):
    """The result of a reload."""

    version: str
    intents: int
    passages: int
    embedded_texts: int
    seconds: float


class QueueOut(BaseModel):
    """One of the chat path's batch queues (routing, writing)."""

    pending: int = Field(description="Turns queued or in the batch being handled now.")
    capacity: int = Field(description="Beyond this many pending turns, new requests wait.")
    batches: int
    items: int
    largest_batch: int
    busy_seconds: float = Field(description="Time the worker threads spent handling batches.")
    slowest_batch_ms: float


class RepeatCacheOut(BaseModel):
    """How often a message's vector came from the repeated-text cache instead of the encoder."""

    size: int = Field(description="Most entries kept.")
    entries: int
    hits: int
    misses: int


class TrainingOut(BaseModel):
    """The background training of the live folder version's model (bot serve, self-training)."""

    state: Literal["idle", "running", "ready", "failed", "cancelled"] = Field(
        description="idle: none ran in this process; ready: the last one finished and is live."
    )
    intents_version: str | None
    phase: str = Field(description="starting, model, cross-fit 1/2, cross-fit 2/2, export, done.")
    progress: float = Field(description="0 to 1, of the whole training.")
    seconds: float = Field(description="How long it has run (or ran).")
    eta_seconds: float | None = Field(description="Estimated seconds left, while running.")
    error: str | None


class ReadyOut(BaseModel):
    """Readiness: whether this process routes, with which model and operating point, and the training."""

    ready: bool
    error: str | None = Field(description="Why loading failed; the process then stays unready.")
    model: str | None = Field(description="The id of the model routing now.")
    model_kind: Literal["self-trained", "interim", "configured"] | None = Field(
        description="interim: the stock model until this folder version's trained model is ready."
    )
    model_note: str
    operating_point: str | None = Field(description="Where the threshold and confidences come from.")
    intents_version: str | None
    intents: int | None
    training: TrainingOut


class HealthOut(BaseModel):
    """Liveness and what is loaded (answers from the first second of a start; `ready` says if it routes)."""

    status: Literal["ok", "degraded", "starting"]
    ready: bool
    model: str | None
    intents_version: str | None
    intents: int | None
    database: str
    spooled: int
    spool_rejected: int = Field(
        description="Spooled turns the database refused when they were written back, kept in rejected.jsonl."
    )
    queues: dict[str, QueueOut] = Field(description="Routing and decision-writing queues of this process.")
    auth: Literal["keys", "open"]
    repeat_cache: RepeatCacheOut | None = Field(
        None, description="The repeated-text cache of this process (onnx backends; BOT_REPEAT_CACHE)."
    )
    training: TrainingOut


class TicketDetailOut(BaseModel):
    """A ticket with its conversation and the bot's decisions: everything an agent reads before replying."""

    ticket: TicketOut
    messages: list[MessageOut]
    decisions: list[LogOut]


# -- agents: the handoff queue and a ticket's detail (bot.api.agents) ------------------------------

MessageId = Annotated[int, Field(ge=1, le=2**31 - 1)]


class LearnableOut(BaseModel):
    """A customer message that resolving the ticket could teach as an example of its intent."""

    message_id: int
    text: str
    default: bool = Field(description="Taught when the resolve body names no `learn` list.")
    reason: str = Field(description="Why it is, or is not, the default pick (e.g. 'asked for a person').")
    route: str | None = Field(description="The route the bot took for it.")
    intent: str | None = Field(description="The intent the bot read in it.")
    created_at: datetime


class TicketLearnableOut(TicketDetailOut):
    """A ticket with its conversation, decisions and the customer messages resolving it could teach."""

    learnable: list[LearnableOut]


class ResolveLearnIn(ResolveIn):
    """Close a ticket; `intent` is what the customer really meant, `learn` the messages that teach it.

    Without `learn`, the customer's question (the `default` of the ticket's `learnable`) is taught;
    `learn: []` teaches nothing.
    """

    learn: Annotated[list[MessageId], Field(max_length=100)] | None = Field(
        default=None,
        description="Ids of the conversation's customer messages to learn as examples of `intent`.",
    )


QUEUE_MESSAGES = 2  # the customer's latest messages shown in the queue: enough to triage, short to scan


class QueueTicketOut(TicketOut):
    """A ticket as the queue shows it: with the customer's own latest words, so agents can triage."""

    customer_messages: list[str] = Field(
        description=f"The customer's latest {QUEUE_MESSAGES} messages in the conversation, oldest first."
    )


class HandoffQueueOut(TicketsOut):
    """A page of tickets with the customer's latest messages."""

    items: list[QueueTicketOut]  # type: ignore[assignment]  # a TicketOut with one more field


# -- analysts: stats and new-intent discovery (bot.api.insights) ----------------------------------


class OperatingPointOut(BaseModel):
    """The threshold and margin the router decides with now, where they came from and what they promise."""

    source: Literal["defaults", "self", "labelled", "reviews"] = Field(
        description="'defaults': the settings' values (fitted on BANKING77); 'self': self-calibration from "
        "the intents folder alone; 'labelled': `bot calibrate --data FILE`; 'reviews': `bot calibrate "
        "--data reviewed`."
    )
    threshold: float
    margin: float
    expected_precision: float | None = Field(
        description="Share of answers expected right; null for defaults."
    )
    expected_coverage: float | None = Field(description="Share of in-scope messages expected to be answered.")
    oos_rate: float | None = Field(description="Out-of-scope share of traffic the expected figures assume.")
    target_precision: float | None
    data: str | None = Field(description="What the calibration was fitted on (a file name, 'reviewed', ...).")
    calibration_id: str
    intents_version: str
    model_id: str
    reviewed: int = Field(description="Decisions of the stats window reviewed by analysts (`reviewed`).")
    reviewed_accuracy: float | None = Field(
        description="Share of those judged correct, all routes (`review_accuracy`); null without reviews."
    )


class StatsWithOperatingPoint(stats.StatsOut):
    """The stats page's figures and the router's current operating point."""

    operating_point: OperatingPointOut


class ClusterOut(BaseModel):
    """A group of similar messages no intent took, with a drafted intent."""

    size: int = Field(description="Messages in the cluster, repeats included: the sum of `counts`.")
    messages: list[str] = Field(description="The distinct texts, most central first.")
    counts: list[int] = Field(description="How often each of `messages` was sent, in the same order.")
    nearest_intent: str | None
    nearest_score: float | None
    name: str
    description: str
    yaml: str


class DiscoveryOut(BaseModel):
    """Clusters among recent messages that neither an intent nor the knowledge base answered."""

    days: int
    messages: int
    distance_threshold: float
    clusters: list[ClusterOut]


# -- intents versions, routing diffs and shadow runs (bot.api.versions) -----------------------------


class VersionOut(BaseModel):
    """A stored intents folder."""

    id: int
    hash: str = Field(description="sha256 of the model id and every file of the folder.")
    intents_version: str = Field(description="The intents' content hash, as decisions record it.")
    model_id: str
    intents: int
    files: list[str] = Field(description="Paths inside the folder.")
    summary: str = Field(description="What changed against the version live before it was stored.")
    loaded_by: str
    created_at: datetime
    live: bool
    last_activated_at: datetime | None
    last_activated_by: str | None


class ActivationOut(BaseModel):
    """A version made live: by a server starting, a reload, a rollback or a promotion."""

    version_id: int
    action: str
    activated_by: str
    at: datetime = Field(validation_alias=AliasChoices("at", "created_at"))


class VersionsOut(BaseModel):
    """Stored versions, newest first, and the newest activations (the version live at any moment is the
    newest activation before it, so a logged decision's version can be named)."""

    items: list[VersionOut]
    total: int
    live_id: int | None
    activations: list[ActivationOut]


class VersionDetailOut(VersionOut):
    """A version with its files' text."""

    contents: dict[str, str]


class ActivatedOut(BaseModel):
    """The version now live here (and, within the sync interval, on every replica)."""

    version: VersionOut
    intents: int
    passages: int
    seconds: float
    operating_point: str
    model_id: str = Field(description="The model this server routes the version with.")


class DiffIn(BaseModel):
    """A candidate: a folder on the server, or a stored version."""

    intents_dir: str | None = Field(None, max_length=1000, description="A folder on the server (admin only).")
    version_id: int | None = Field(
        None, ge=1, le=2**31 - 1, description="A stored version (GET /v1/versions)."
    )
    since: datetime | None = Field(None, description="Replay messages logged from then on (with a timezone).")
    limit: int = Field(10_000, ge=1, le=200_000, description="The newest N messages at most.")
    examples: int = Field(5, ge=1, le=50, description="Example messages per group.")

    @model_validator(mode="after")
    def _one_candidate(self) -> DiffIn:
        if (self.intents_dir is None) == (self.version_id is None):
            raise ValueError("give exactly one of intents_dir (a folder on the server) or version_id")
        if self.since is not None and self.since.tzinfo is None:
            raise ValueError("since needs a timezone, e.g. 2026-11-01T00:00:00Z")
        return self


class DiffExampleOut(BaseModel):
    decision_id: int
    text: str
    verdict: str | None
    effect: str | None = Field(description="'fixes' a reviewed error, 'breaks' a reviewed-correct decision.")


class DiffGroupOut(BaseModel):
    before: str
    after: str
    count: int
    fixes: int
    breaks: int
    examples: list[DiffExampleOut]


class DiffOut(BaseModel):
    """Every logged message whose outcome the candidate changes, grouped by (before -> after)."""

    live_version: str
    candidate_version: str
    candidate: str
    summary: str = Field(description="What the candidate changes in the intents, against the live version.")
    messages: int
    distinct_texts: int
    changed: int
    reviewed: int
    fixes: int
    breaks: int
    groups: list[DiffGroupOut]
    seconds: float


class ShadowIn(BaseModel):
    """The candidate a shadow run routes by: a folder on the server, or a stored version."""

    intents_dir: str | None = Field(None, max_length=1000, description="A folder on the server.")
    version_id: int | None = Field(None, ge=1, le=2**31 - 1, description="A stored version.")

    @model_validator(mode="after")
    def _one_candidate(self) -> ShadowIn:
        if (self.intents_dir is None) == (self.version_id is None):
            raise ValueError("give exactly one of intents_dir (a folder on the server) or version_id")
        return self


class ShadowRunOut(BaseModel):
    """A shadow run in this process."""

    candidate: str
    version_id: int | None = Field(
        description="The stored version it routes by (POST .../promote makes it live)."
    )
    intents_version: str
    started_at: datetime
    running: bool
    decided: int
    dropped: int = Field(description="Live messages not shadowed because the shadow's queue was full.")
    failed: int
    pending: int
    errors: list[str]


class DisagreementOut(BaseModel):
    live: str
    shadow: str
    count: int
    examples: list[str]


class ComparisonOut(BaseModel):
    """Live against shadow on the same messages."""

    intents_version: str
    messages: int
    agreed: int
    agreement: float | None
    disagreements: list[DisagreementOut]
    reviewed: int = Field(description="Shadowed messages an analyst reviewed.")
    live_correct: int
    shadow_correct: int
    live_accuracy: float | None
    shadow_accuracy: float | None


class ShadowOut(BaseModel):
    """The shadow run (if any) and how it compares with live."""

    run: ShadowRunOut | None
    comparison: ComparisonOut | None
