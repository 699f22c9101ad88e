"""The conversations a Chatwoot connector serves (issue #30 item 3): created under the id derived from
Chatwoot's account and conversation ids, so the mapping lives in the conversation table and survives
restarts without a table of its own."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine as Database
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from bot.store.models import Conversation


def ensure_conversation(database: Database, conversation_id: str, meta: dict[str, Any]) -> list[str]:
    """The conversation `conversation_id` (channel `chatwoot`, `meta` naming Chatwoot's ids), created
    if new; returns the clarify options it waits on (intents, in the order offered)."""
    with Session(database) as session:
        found = session.get(Conversation, conversation_id)
        if found is not None:
            return list(found.pending_options)
        session.add(Conversation(id=conversation_id, channel="chatwoot", meta=meta))
        try:
            session.commit()
        except IntegrityError:  # two messages of one new conversation at once: the other created it
            session.rollback()
    return []
