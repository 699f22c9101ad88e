"""Agents: the handoff queue, a ticket's detail, claiming, replying and resolving (bot.api.agents)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from bot.api.schemas.common import (
    AgentName,
    IntentName,
    LogOut,
    MessageOut,
    Strict,
)


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


class TicketDetailOut(BaseModel):
    """A ticket with its conversation and the bot's decisions: everything an agent reads before replying."""

    ticket: TicketOut
    messages: list[MessageOut]
    decisions: list[LogOut]


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
    `learn: []` teaches nothing. Nothing is ever taught to an intent that always hands off
    (`handoff: true`): a `learn` list for one is a 422, and without one nothing is learned.
    """

    learn: Annotated[list[MessageId], Field(max_length=100)] | None = Field(
        default=None,
        description="Ids of the conversation's customer messages to learn as examples of `intent`.",
    )


class ResolvedOut(TicketOut):
    """A resolved ticket and what resolving it taught the bot."""

    learned: list[str] = Field(description="The customer messages learned as examples of the intent.")
    not_learned: str | None = Field(
        default=None, description="Why nothing was learned, when `learned` is empty."
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
