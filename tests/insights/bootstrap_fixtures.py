"""Small past-conversation histories in each format `bot bootstrap` reads, shared by its tests.

The Chatwoot and Zendesk shapes follow their published API references (docs/bootstrap.md); no real
instance of either produced them.
"""

from __future__ import annotations

import csv
import io
import json

# three recurring topics, written the way customers write, each with the answer agents gave
TOPICS: dict[str, tuple[list[str], str]] = {
    "card_arrival": (
        [
            "my new card still hasn't arrived",
            "when will my card arrive?",
            "I ordered a card two weeks ago and it never came",
            "card not delivered yet",
            "how long does the card take to arrive",
            "still waiting for my card in the post",
        ],
        "Cards arrive within 5 working days. If yours has not come after 7, order a replacement in the app.",
    ),
    "exchange_rate": (
        [
            "what exchange rate do you use",
            "how do you calculate the exchange rate",
            "which exchange rate applies when I pay in euros",
            "is the exchange rate fixed",
            "exchange rate for dollars?",
            "where can I see today's exchange rate",
        ],
        "We use the interbank exchange rate at the moment you pay, with no markup on weekdays.",
    ),
    "lost_phone": (
        [
            "I lost my phone, how do I log in",
            "my phone was stolen what do I do",
            "can I access my account without my phone",
            "lost phone need to lock my account",
            "phone stolen, please block the app",
            "how do I log in on a new phone after losing mine",
        ],
        "Log in on the new phone with your email and passcode; we will ask you for a selfie to confirm it is you.",
    ),
}
ONE_OFF = (
    "do you sponsor the local football club",
    "Yes, we sponsor the Larkspur Rovers youth team every season since the bank opened.",
)


def rows() -> list[tuple[str, str]]:
    """(question, answer) for every question of every topic, then the one-off one."""
    return [(q, answer) for questions, answer in TOPICS.values() for q in questions] + [ONE_OFF]


def csv_text(bad_row: bool = False, repeat: int = 1) -> str:
    """A CSV with aliased columns (question, reply, created_at, labels), each topic question `repeat` times;
    optionally a malformed row 3."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["Question", "reply", "created_at", "labels"])
    history = [pair for pair in rows()[:-1] for _ in range(repeat)] + [ONE_OFF]
    for n, (question, answer) in enumerate(history):
        if bad_row and n == 1:
            writer.writerow(
                [question, answer, "yesterday-ish", "cards"]
            )  # row 3: a timestamp nobody can read
        else:
            writer.writerow([question, answer, f"2024-05-{1 + n % 28:02d}T09:30:00Z", "cards;web"])
    return out.getvalue()


def chatwoot_json() -> str:
    """Chatwoot conversations with their messages: an opening greeting and question, a private note,
    an activity line, the agent's reply; and one message of an unknown type."""
    conversations = []
    for n, (question, answer) in enumerate(rows(), 1):
        messages = [
            {
                "id": 10 * n,
                "conversation_id": n,
                "message_type": 0,
                "content": "hi",
                "created_at": 1714550000 + n,
            },
            {
                "id": 10 * n + 1,
                "conversation_id": n,
                "message_type": 0,
                "content": question,
                "created_at": 1714550001 + n,
            },
            {
                "id": 10 * n + 2,
                "conversation_id": n,
                "message_type": 1,
                "private": True,
                "content": "VIP customer",
            },
            {"id": 10 * n + 3, "conversation_id": n, "message_type": 2, "content": "Assigned to Sam"},
            {"id": 10 * n + 4, "conversation_id": n, "message_type": 1, "content": answer, "private": False},
        ]
        if n == 2:
            messages.insert(0, {"id": 1, "conversation_id": n, "message_type": 7, "content": "?"})
        conversations.append({"id": n, "labels": ["web"], "messages": messages})
    return json.dumps({"data": {"payload": conversations}})


def zendesk_jsonl() -> str:
    """Zendesk tickets, one per line as the JSON export writes them: the requester's comment, an internal
    note, the agent's public reply; line 3 lacks its requester_id."""
    lines = []
    for n, (question, answer) in enumerate(rows(), 1):
        ticket = {
            "id": 100 + n,
            "requester_id": 7000 + n,
            "created_at": "2024-05-01T09:30:00Z",
            "tags": ["web"],
            "comments": [
                {"author_id": 7000 + n, "public": True, "plain_body": question, "body": question},
                {"author_id": 1, "public": False, "plain_body": "checked the account"},
                {"author_id": 1, "public": True, "plain_body": answer},
            ],
        }
        if n == 3:
            del ticket["requester_id"]
        lines.append(json.dumps(ticket))
    return "\n".join(lines) + "\n"
