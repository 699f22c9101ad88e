"""Chatwoot's and Zendesk's exports as `Turn`s: per conversation or ticket, the customer's opening question
and the first public answer an agent gave to it.

Built from the vendors' published API references (docs/bootstrap.md lists the fields and the pages), not
from a running instance:
- Chatwoot messages: `conversation_id`, `message_type` (0 or "incoming": the contact; 1 or "outgoing": an
  agent or bot; 2 activity and 3 template are not conversation), `content`, `private` (an internal note),
  `created_at` (Unix seconds). Accepted as a JSON array of messages, `{"payload": [...]}` (the messages
  endpoint), conversations with a `messages` list (and `labels`), or one message per line.
- Zendesk tickets: `id`, `requester_id`, `created_at`, `tags`, and `comments` with `author_id`, `public`,
  `plain_body` (else `body`). Accepted as `{"tickets": [...]}`, a JSON array, or one ticket per line (the
  JSON export); a ticket without comments gives its `description` as the question.
The customer's messages before the first reply are joined into one question ("hi" then "my card is lost").
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from bot.insights.history import (
    MAX_CHARS,
    MAX_RECORDS,
    History,
    HistoryError,
    Problem,
    Skip,
    Turn,
    clean_text,
    json_problem,
    parse_tags,
    parse_timestamp,
)

_T = TypeVar("_T")
_INCOMING = {0: "customer", "incoming": "customer", 1: "agent", "outgoing": "agent"}
_IGNORED_TYPES = {2, 3, "activity", "template"}


def _records(path: Path, content: str, keys: tuple[str, ...]) -> Iterator[tuple[str, Any]]:
    """(where, record) for a JSON document (an array, or an object holding the array under one of `keys`,
    possibly inside `data`) or for JSON lines; a line that is not JSON is yielded as a `Skip`."""
    try:
        document = json.loads(content)
    except (ValueError, RecursionError):
        document = None  # JSON lines, or a broken document: read line by line, so one bad line costs one
    if document is not None:
        found = _unwrap(document, keys)
        if found is None:
            raise HistoryError(f"{path}: expected a JSON array, or an object with {' or '.join(keys)}")
        for index, record in enumerate(found, 1):
            yield f"record {index}", record
        return
    for number, line in enumerate(content.splitlines(), 1):
        if line.strip():
            try:
                yield f"line {number}", json.loads(line)
            except (ValueError, RecursionError) as exc:
                yield f"line {number}", Skip("line", json_problem(exc))


def _unwrap(document: Any, keys: tuple[str, ...]) -> list[Any] | None:
    if isinstance(document, list):
        return document
    if isinstance(document, dict):
        if isinstance(document.get("data"), dict):
            document = document["data"]
        for key in keys:
            if isinstance(document.get(key), list):
                return list(document[key])
        if any(k in document for k in ("message_type", "requester_id")):  # one record alone
            return [document]
    return None


def _counted(history: History, path: Path, where: str) -> None:
    """Count one record read (a ticket, a Chatwoot message, usable or not); refuse past MAX_RECORDS."""
    history.records += 1
    if history.records > MAX_RECORDS:
        raise HistoryError(f"{path}: {where}: more than {MAX_RECORDS:,} records; split the file")


def _add(
    history: History, path: Path, where: str, turn: Turn | Skip | None, ignored: Sequence[Skip] = ()
) -> None:
    """Keep `turn`, or name the record skipped; `ignored` are the optional fields it was kept without."""
    if isinstance(turn, Skip):
        history.problems.append(Problem(path, where, turn.field_name, turn.reason))
    elif turn is not None:
        history.turns.append(turn)
    history.problems.extend(Problem(path, where, i.field_name, i.reason, kept=True) for i in ignored)


def _optional(
    value: Any, field_name: str, parse: Callable[[Any, str], _T], default: _T, ignored: list[Skip]
) -> _T:
    """An optional field (a time, tags): unreadable costs only itself, noted in `ignored`, not the record."""
    try:
        return parse(value, field_name)
    except Skip as skip:
        ignored.append(skip)
        return default


def _opening(messages: list[tuple[str, str, Any]]) -> tuple[str, str | None, Any] | None:
    """(question, answer, time of the question) from (role, text, time) in order: the customer's messages
    before the first agent reply, joined and cut to MAX_CHARS (each was checked alone, not their sum), and
    that reply; None when the customer never wrote."""
    asked: list[str] = []
    when = None
    for role, text, at in messages:
        if role == "customer":
            asked.append(text)
            when = when or at
        elif asked:
            return _joined(asked), text, when
    return (_joined(asked), None, when) if asked else None


def _joined(asked: list[str]) -> str:
    return " ".join(asked)[:MAX_CHARS].rstrip()


def _chatwoot_message(record: Any, ignored: list[Skip]) -> tuple[str, str, str, Any] | None:
    """(conversation id, role, text, time) of one Chatwoot message; None for activity, template and private
    notes; `Skip` for a malformed one."""
    if not isinstance(record, dict):
        raise Skip("message", "must be a JSON object")
    kind = record.get("message_type")
    known = isinstance(kind, int | str) and not isinstance(kind, bool)  # a list or object is not hashable
    if (known and kind in _IGNORED_TYPES) or record.get("private") is True:
        return None
    if not known or kind not in _INCOMING:
        shown = repr(kind)[:40]
        raise Skip("message_type", f"{shown}; allowed: 0/incoming, 1/outgoing (2, 3 are skipped)")
    conversation = record.get("conversation_id")
    if not isinstance(conversation, int | str) or isinstance(conversation, bool):
        raise Skip("conversation_id", "missing, or not a number or string")
    text = clean_text(record.get("content"), "content", required=True)
    assert text is not None
    at = _optional(record.get("created_at"), "created_at", parse_timestamp, None, ignored)
    return str(conversation), _INCOMING[kind], text, at


def read_chatwoot(path: Path, content: str, history: History) -> None:
    """Turns from a Chatwoot export: messages alone, or conversations holding their messages."""
    conversations: dict[str, list[tuple[str, str, Any]]] = {}  # by id as a string: 7 and "7" are one
    labels: dict[str, tuple[str, ...]] = {}
    for where, record in _records(path, content, ("payload", "messages", "conversations")):
        inner = record.get("messages") if isinstance(record, dict) else None
        items = [(where, record)]
        if isinstance(inner, list):  # a conversation object: its messages, its labels
            items = [(f"{where}, message {n}", m) for n, m in enumerate(inner, 1)]
            if isinstance(record.get("id"), int | str):
                labels[str(record["id"])] = _safe_tags(record.get("labels"))
        for place, message in items:
            _counted(history, path, place)  # each message held for its conversation counts
            ignored: list[Skip] = []
            try:
                if isinstance(message, Skip):
                    raise message
                found = _chatwoot_message(message, ignored)
            except Skip as skip:
                _add(history, path, place, skip)
                continue
            except (ValueError, RecursionError, TypeError) as exc:  # untrusted: a message costs only itself
                _add(history, path, place, Skip("message", f"cannot be read: {exc}"))
                continue
            _add(history, path, place, None, ignored)
            if found is not None:
                conversation, role, text, at = found
                conversations.setdefault(conversation, []).append((role, text, at))
    for conversation, messages in conversations.items():
        opened = _opening(messages)  # the export's order; Chatwoot lists a conversation's messages by time
        if opened is not None:
            question, answer, at = opened
            turn = Turn(question, answer, at, labels.get(conversation, ()))
            _add(history, path, f"conversation {conversation}", turn)


def _safe_tags(value: Any) -> tuple[str, ...]:
    try:
        return parse_tags(value)
    except Skip:
        return ()


def _zendesk_ticket(record: Any, ignored: list[Skip]) -> Turn | None:
    """The opening question of one ticket and the first public agent comment after it; an unreadable
    `created_at` or `tags` is noted in `ignored` and the ticket kept without it."""
    if not isinstance(record, dict):
        raise Skip("ticket", "must be a JSON object")
    comments = record.get("comments")
    when = _optional(record.get("created_at"), "created_at", parse_timestamp, None, ignored)
    no_tags: tuple[str, ...] = ()
    tags = _optional(record.get("tags"), "tags", parse_tags, no_tags, ignored)
    if comments is None:
        text = clean_text(record.get("description"), "description", required=True)
        assert text is not None
        return Turn(text, None, when, tags)
    if not isinstance(comments, list):
        raise Skip("comments", "must be a list of comment objects")
    requester = record.get("requester_id")
    if requester is None:
        raise Skip("requester_id", "missing: without it the customer's comments cannot be told from agents'")
    messages: list[tuple[str, str, Any]] = []
    for number, comment in enumerate(comments, 1):
        if not isinstance(comment, dict):
            raise Skip(f"comments[{number}]", "must be a JSON object")
        if comment.get("public") is False:
            continue  # an internal note: never an answer to show a customer
        body = comment.get("plain_body", comment.get("body"))
        text = clean_text(body, f"comments[{number}].plain_body", required=False)
        if text is not None:
            role = "customer" if comment.get("author_id") == requester else "agent"
            messages.append((role, text, None))
    opened = _opening(messages)
    if opened is None:
        raise Skip("comments", "no public comment by the requester")
    return Turn(opened[0], opened[1], when, tags)


def read_zendesk(path: Path, content: str, history: History) -> None:
    """Turns from a Zendesk ticket export."""
    for where, record in _records(path, content, ("tickets", "results")):
        ticket = f"{where} (ticket {record.get('id')})" if isinstance(record, dict) else where
        _counted(history, path, ticket)
        ignored: list[Skip] = []
        try:
            if isinstance(record, Skip):
                raise record
            _add(history, path, ticket, _zendesk_ticket(record, ignored), ignored)
        except Skip as skip:
            _add(history, path, ticket, skip)
        except (ValueError, RecursionError, TypeError) as exc:  # untrusted: a ticket costs only itself
            _add(history, path, ticket, Skip("ticket", f"cannot be read: {exc}"))
