"""A Chatwoot agent-bot connector (issue #30 item 3): Chatwoot's webhook in, a turn of our conversation,
the answer back through Chatwoot's API; a handoff leaves a private note and opens the conversation to
Chatwoot's agents. What Chatwoot sends and accepts is written down, with sources, in
tests/chatwoot_double.py and docs/chatwoot.md.

A message is routed while Chatwoot waits (milliseconds; if it fails the webhook answers 5xx and Chatwoot
itself opens a pending conversation to its agents), and only the calls back to Chatwoot are queued
(`ChatwootClient`), so a slow or down Chatwoot never holds a webhook or the chat.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Any, TypeGuard

from sqlalchemy import Engine as Database
from starlette.concurrency import run_in_threadpool

from bot.chat.pipeline import ChatPipeline
from bot.chat.service import ChatReply
from bot.config import Settings
from bot.runtime.chatwoot_client import ChatwootCall, ChatwootClient
from bot.store.chatwoot import ensure_conversation

MAX_SKEW_SECONDS = 300  # a signed webhook older (or newer) than this is refused: a replay
QUIET = frozenset({"with_agent", "awaiting_agent"})  # our own escalations that are not a new handoff


def verify(secret: str, body: bytes, headers: dict[str, str], token: str | None, now: float) -> bool:
    """Whether a webhook comes from Chatwoot: its `X-Chatwoot-Signature` (`sha256=` + HMAC-SHA256 of
    `{X-Chatwoot-Timestamp}.{body}` with the agent bot's secret, recent), or, for Chatwoot versions that
    do not sign agent-bot webhooks, the `?token=` in the URL configured on the bot."""
    if not secret:
        return False
    if token is not None and hmac.compare_digest(token.encode(), secret.encode()):
        return True
    signature, stamp = headers.get("x-chatwoot-signature", ""), headers.get("x-chatwoot-timestamp", "")
    if not signature or not stamp.isdigit() or abs(now - int(stamp)) > MAX_SKEW_SECONDS:
        return False
    expected = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(signature.removeprefix("sha256=").encode(), expected.encode())


@dataclass(frozen=True)
class Incoming:
    """A customer's message from Chatwoot's `message_created` webhook."""

    account_id: int
    conversation_id: int  # the id Chatwoot's API and URLs use (the conversation's display id)
    content: str


def incoming(payload: Any) -> Incoming | str:
    """The customer's message in `payload`, or why it is ignored (the bot's own and agents' messages,
    private notes, other events, conversations Chatwoot's agents hold): no reply loops."""
    if not isinstance(payload, dict):
        return "the body is not a JSON object"
    if payload.get("event") != "message_created":
        return f"event {payload.get('event')!r} is not message_created"
    if payload.get("message_type") not in ("incoming", 0):
        return "not an incoming message (outgoing, activity or template)"
    if payload.get("private"):
        return "a private note"
    sender = payload.get("sender")
    if isinstance(sender, dict) and sender.get("type") not in (None, "contact"):
        return f"sent by a {sender.get('type')}, not a contact"
    conversation, account = payload.get("conversation"), payload.get("account")
    if not isinstance(conversation, dict) or not isinstance(account, dict):
        return "no conversation or account"
    status = conversation.get("status")
    if status not in (None, "pending"):
        return f"the conversation is {status}: Chatwoot's agents hold it"
    account_id, conversation_id = account.get("id"), conversation.get("id")
    if not (_positive_int(account_id) and _positive_int(conversation_id)):
        return "no numeric account.id and conversation.id"
    content = payload.get("content")
    if not isinstance(content, str) or not content.strip():
        return "no text (an attachment only)"
    return Incoming(account_id=account_id, conversation_id=conversation_id, content=content.strip())


def _positive_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def our_conversation_id(secret: str, account_id: int, conversation_id: int) -> str:
    """Our conversation id for a Chatwoot conversation: derived, so the same one every time and after a
    restart, and keyed by the secret, so nobody can guess it from Chatwoot's small ids and read it
    through /v1/conversations (a new secret starts new conversations on our side)."""
    key = f"chatwoot:{account_id}:{conversation_id}".encode()
    return hmac.new(secret.encode(), key, hashlib.sha256).hexdigest()[:32]


def note(reply: ChatReply) -> str:
    """The private note a handoff leaves for Chatwoot's agents: the bot's reading of the message."""
    d = reply.decision
    lines = [
        "Handed off by the intent router.",
        f"Intent: {d.intent or 'none'} (confidence {d.confidence:.2f})",
        f"Reason: {reply.escalation + ': ' if reply.escalation else ''}{d.reason}",
    ]
    if reply.ticket_id is not None:
        lines.append(f"Ticket: {reply.ticket_id}")
    if d.candidates:
        lines.append("Candidates: " + ", ".join(f"{c.intent} {c.confidence:.2f}" for c in d.candidates[:3]))
    return "\n".join(lines)


def calls_for(message: Incoming, reply: ChatReply) -> list[ChatwootCall]:
    """What to send Chatwoot for one answered turn, in order."""
    base = f"/api/v1/accounts/{message.account_id}/conversations/{message.conversation_id}"
    d = reply.decision
    text = d.answer.strip()
    if d.route == "clarify" and reply.options:  # numbered, so a reply on any channel can pick one
        picks = "\n".join(f"{n}. {label}" for n, (_, label) in enumerate(reply.options, start=1))
        text = f"{text}\n{picks}\n(Reply with a number.)" if text else picks
    calls = []
    if text:
        calls.append(
            ChatwootCall(f"{base}/messages", {"content": text, "message_type": "outgoing", "private": False})
        )
    if reply.escalation in QUIET:
        # a person already has it on our side, yet Chatwoot still sends it as pending (an earlier open
        # was lost): open it again, without a second note
        calls.append(ChatwootCall(f"{base}/toggle_status", {"status": "open"}))
    elif d.route == "handoff":
        private = {"content": note(reply), "message_type": "outgoing", "private": True}
        calls.append(ChatwootCall(f"{base}/messages", private))
        calls.append(ChatwootCall(f"{base}/toggle_status", {"status": "open"}))
    return calls


class ChatwootConnector:
    """Turns Chatwoot's webhooks into turns of the chat pipeline and queues the answers back."""

    def __init__(
        self, settings: Settings, pipeline: ChatPipeline, database: Database, client: ChatwootClient
    ) -> None:
        self.secret = settings.chatwoot_secret
        self.pipeline = pipeline
        self.database = database
        self.client = client

    def verify(self, body: bytes, headers: dict[str, str], token: str | None) -> bool:
        """Whether the webhook is Chatwoot's (see `verify`)."""
        return verify(self.secret, body, headers, token, time.time())

    async def handle(self, message: Incoming) -> ChatReply:
        """Route `message` as a turn of its conversation and queue the answer to Chatwoot."""
        ours = our_conversation_id(self.secret, message.account_id, message.conversation_id)
        meta = {
            "chatwoot_account_id": message.account_id,
            "chatwoot_conversation_id": message.conversation_id,
        }
        offered = await run_in_threadpool(ensure_conversation, self.database, ours, meta)
        pick = message.content.rstrip(".)")
        choice = offered[int(pick) - 1] if pick.isdigit() and 0 < int(pick) <= len(offered) else None
        reply = await self.pipeline.chat(
            message=None if choice else message.content,
            conversation_id=ours,
            channel="chatwoot",
            choice=choice,
        )
        self.client.submit(calls_for(message, reply))
        return reply
