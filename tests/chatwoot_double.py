"""A recorded-contract double of Chatwoot (issue #30 item 3): a real HTTP server that accepts only the
requests Chatwoot documents, and builds the webhooks Chatwoot sends. No Chatwoot runs in these tests.

The contract, with where it was read (github.com/chatwoot/chatwoot, files at the commits named):

Webhooks Chatwoot sends an agent bot
- `app/listeners/agent_bot_listener.rb` @07c914a5: `message_created` (and `message_updated`) of a
  conversation in an inbox with an active agent bot is POSTed to the bot's `outgoing_url`, whatever the
  conversation's status; the payload is `message.webhook_data.merge(event: 'message_created')`.
- `app/models/message.rb` @0049df88: `webhook_data` = id, content, created_at, message_type (the enum
  name: "incoming" | "outgoing" | "activity" | "template"), content_type, content_attributes,
  source_id, sender, contact, inbox, conversation (its `webhook_data`: id is the display id the API
  paths use, plus status: "pending" while the bot holds it, "open" once opened to agents), account.
  Newer versions add `private` (a private note) to it.
- `lib/webhooks/trigger.rb` @05a4bd24: POST, JSON body, `Content-Type: application/json`, 5 s
  timeout, no retry; on an error with a pending conversation Chatwoot opens it to its agents.
- `spec/listeners/agent_bot_listener_spec.rb` (current): the job is called with `secret:
  agent_bot.secret, delivery_id:`; the headers then are `X-Chatwoot-Delivery`, `X-Chatwoot-Timestamp`
  and `X-Chatwoot-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`. Older versions
  send no signature: the bot's URL then carries our own `?token=`.

Calls an agent bot makes (header `api_access_token: <the bot's access token>`; swagger `agentBotApiKey`)
- `swagger/paths/application/conversation/messages/create.yml` @1bfc200d and
  `swagger/definitions/request/conversation/create_message_payload.yml` @14484755:
  `POST /api/v1/accounts/{account_id}/conversations/{conversation_id}/messages`, JSON body with
  `content` (string, required), `message_type` ("outgoing" | "incoming"), `private` (boolean: a
  private note), `content_type` ("text", "input_email", "cards", "input_select", "form", "article"),
  `content_attributes` (object); 200 with the message, 404 unknown conversation, 403 denied.
- `swagger/paths/application/conversation/toggle_status.yml` @0193afb8:
  `POST /api/v1/accounts/{account_id}/conversations/{conversation_id}/toggle_status`, JSON body
  `status` (required: "open" | "resolved" | "pending" | "snoozed"), optional `snoozed_until` (number);
  200 `{"meta": {}, "payload": {"success": true, "current_status": ..., "conversation_id": ...}}`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PATH = re.compile(r"/api/v1/accounts/(\d+)/conversations/(\d+)/(messages|toggle_status)")
MESSAGE_KEYS = {"content", "message_type", "private", "content_type", "content_attributes"}
MESSAGE_TYPES = {"outgoing", "incoming"}
CONTENT_TYPES = {"text", "input_email", "cards", "input_select", "form", "article"}
STATUSES = {"open", "resolved", "pending", "snoozed"}


def body_problem(kind: str, body: Any) -> str | None:
    """Why `body` breaks the documented request body of `kind` (messages | toggle_status), or None."""
    if not isinstance(body, dict):
        return "the body is not a JSON object"
    if kind == "toggle_status":
        if set(body) - {"status", "snoozed_until"}:
            return f"unknown keys {sorted(set(body) - {'status', 'snoozed_until'})}"
        return None if body.get("status") in STATUSES else f"status {body.get('status')!r} not in {STATUSES}"
    if set(body) - MESSAGE_KEYS:
        return f"unknown keys {sorted(set(body) - MESSAGE_KEYS)}"
    if not isinstance(body.get("content"), str) or not body["content"]:
        return "content (a string) is required"
    if "message_type" in body and body["message_type"] not in MESSAGE_TYPES:
        return f"message_type {body['message_type']!r} not in {MESSAGE_TYPES}"
    if "private" in body and not isinstance(body["private"], bool):
        return "private must be a boolean"
    if "content_type" in body and body["content_type"] not in CONTENT_TYPES:
        return f"content_type {body['content_type']!r} not in {CONTENT_TYPES}"
    if "content_attributes" in body and not isinstance(body["content_attributes"], dict):
        return "content_attributes must be an object"
    return None


@dataclass
class Recorded:
    """A request the double received: what was asked and what it answered."""

    path: str
    headers: dict[str, str]
    body: Any
    status: int
    problem: str | None = None


@dataclass
class ChatwootDouble:
    """The server: `accepted` and `rejected` requests; `fail_next` answers that many with a 500."""

    token: str
    conversations: set[tuple[int, int]] = field(default_factory=set)
    accepted: list[Recorded] = field(default_factory=list)
    rejected: list[Recorded] = field(default_factory=list)
    fail_next: int = 0
    failed: int = 0
    status: dict[tuple[int, int], str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def answer(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, Any]:
        """Check one request against the contract; record it; (status, JSON body) to answer."""
        with self._lock:
            status, reply, problem, body = self._check(method, path, headers, raw)
            if status == 200 and self.fail_next > 0:
                self.fail_next -= 1
                self.failed += 1
                return 500, {"error": "Internal Server Error"}
            record = Recorded(path, headers, body, status, problem)
            (self.accepted if status == 200 else self.rejected).append(record)
            return status, reply

    def _check(
        self, method: str, path: str, headers: dict[str, str], raw: bytes
    ) -> tuple[int, Any, str | None, Any]:
        match = PATH.fullmatch(path)
        if method != "POST" or match is None:
            return 404, {"error": "Not Found"}, f"{method} {path} is not a documented call", None
        if headers.get("api_access_token") != self.token:
            return 401, {"error": "Invalid token"}, "api_access_token missing or wrong", None
        if headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return 415, {"error": "JSON only"}, f"content-type {headers.get('content-type')!r}", None
        try:
            body = json.loads(raw)
        except ValueError:
            return 400, {"error": "bad JSON"}, "the body is not JSON", None
        key = (int(match[1]), int(match[2]))
        if key not in self.conversations:
            return 404, {"error": "Resource could not be found"}, f"unknown conversation {key}", body
        problem = body_problem(match[3], body)
        if problem is not None:
            return 422, {"error": problem}, problem, body
        if match[3] == "toggle_status":
            self.status[key] = body["status"]
            payload = {"success": True, "current_status": body["status"], "conversation_id": key[1]}
            return 200, {"meta": {}, "payload": payload}, None, body
        return 200, {"id": len(self.accepted) + 1, **body}, None, body


def _handler(double: ChatwootDouble) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {name.lower(): value for name, value in self.headers.items()}
            status, reply = double.answer(self.command, self.path, headers, raw)
            data = json.dumps(reply).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_POST = do_GET = do_PUT = do_PATCH = do_DELETE = _serve

        def log_message(self, *args: Any) -> None:  # quiet test output
            pass

    return Handler


def message_created(
    account_id: int,
    conversation_id: int,
    content: str,
    *,
    message_type: str = "incoming",
    private: bool = False,
    sender_type: str = "contact",
    status: str = "pending",
) -> dict[str, Any]:
    """A `message_created` webhook as Chatwoot builds it (Message#webhook_data + event)."""
    return {
        "event": "message_created",
        "id": int(time.time_ns() % 1_000_000_000),
        "content": content,
        "created_at": "2026-12-06T05:00:00.000Z",
        "message_type": message_type,
        "content_type": "text",
        "content_attributes": {},
        "source_id": None,
        "private": private,
        "sender": {"id": 7, "name": "Ada", "type": sender_type},
        "contact": {"id": 7, "name": "Ada", "type": "contact"},
        "inbox": {"id": 3, "name": "Website"},
        "conversation": {"id": conversation_id, "inbox_id": 3, "status": status, "account_id": account_id},
        "account": {"id": account_id, "name": "Larkspur"},
    }


def signed(secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """The headers a signing Chatwoot sends with `body`."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/json",
        "X-Chatwoot-Delivery": "d-" + stamp,
        "X-Chatwoot-Timestamp": stamp,
        "X-Chatwoot-Signature": f"sha256={digest}",
    }
