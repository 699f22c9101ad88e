"""What the Chatwoot connector's webhook answers (issue #30 item 3); Chatwoot itself ignores the body."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class ChatwootOut(BaseModel):
    """Whether the webhook became a turn, and if not why (useful when testing the bot's webhook URL)."""

    status: Literal["accepted", "ignored"]
    reason: str | None = Field(None, description="Why the webhook was ignored (no reply is sent).")
    route: str | None = Field(None, description="The turn's route: answer, clarify, retrieve or handoff.")
    decision_id: int | None = None
