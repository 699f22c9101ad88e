"""Knowledge answers are not fallbacks, and the bot is never silent while a ticket waits (#27 item 1).

The API on the shipped demo bank: the issue's conversation, turn by turn, then the claim that quiets the
bot; and the migration that marks conversations claimed before claims were recorded on them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from bot.chat.rules import PERSON_ON_THE_WAY, PERSON_WILL_REPLY
from bot.store.db import _alembic_config, make_engine, upgrade
from tests.chat.conftest import chat

SWITCH = "How do I switch my current account to Larkspur?"
BRANCHES = "Do you have branches?"
PERSON = "let me speak to a human"


def test_two_faq_answers_then_a_person_is_on_the_way_until_an_agent_claims(client: TestClient) -> None:
    first = chat(client, SWITCH)
    conversation = first["conversation_id"]
    assert (first["route"], first["escalation"]) == ("retrieve", None) and "switching" in first["source"]
    # a second knowledge-base answer is an answer, not a second fallback
    second = chat(client, BRANCHES, conversation_id=conversation)
    assert (second["route"], second["escalation"], second["ticket_id"]) == ("retrieve", None, None)
    assert "branches" in second["source"] and second["answer"].startswith("No. Larkspur is an app-only bank")

    handoff = chat(client, PERSON, conversation_id=conversation)
    assert (handoff["route"], handoff["intent"]) == ("handoff", "human_agent") and handoff["ticket_id"]
    ticket = handoff["ticket_id"]

    # no agent yet: the bot answers what it is sure of, and says a person is on the way
    protected = chat(client, "Is my money protected?", conversation_id=conversation)
    assert (protected["route"], protected["escalation"], protected["ticket_id"]) == (
        "retrieve",
        "awaiting_agent",
        ticket,
    )
    assert "FSCS" in protected["answer"] and protected["answer"].endswith(PERSON_ON_THE_WAY)
    thanks = chat(client, "thanks", conversation_id=conversation)
    assert (thanks["route"], thanks["intent"]) == ("answer", "thanks")
    assert thanks["answer"].endswith(PERSON_ON_THE_WAY) and thanks["ticket_id"] == ticket
    # what it would not answer confidently gets the short line, on the same ticket
    unsure = chat(client, "zorp blick the frobnicator", conversation_id=conversation)
    assert (unsure["route"], unsure["answer"], unsure["ticket_id"]) == ("handoff", PERSON_WILL_REPLY, ticket)
    assert client.get("/v1/handoffs").json()["total"] == 1  # never a second ticket

    # once an agent claims the conversation the bot goes quiet
    assert client.post(f"/v1/handoffs/{ticket}/claim", json={"agent": "ann"}).status_code == 200
    quiet = chat(client, "how do I freeze my card", conversation_id=conversation)
    assert (quiet["route"], quiet["escalation"], quiet["answer"], quiet["ticket_id"]) == (
        "handoff",
        "with_agent",
        "",
        ticket,
    )
    # and answers again, with no ticket named, once the ticket is resolved
    assert client.post(f"/v1/handoffs/{ticket}/resolve", json={"agent": "ann"}).status_code == 200
    back = chat(client, BRANCHES, conversation_id=conversation)
    assert (back["route"], back["escalation"], back["ticket_id"]) == ("retrieve", None, None)


def test_an_escalated_ticket_says_it_was_handed_off_not_that_a_passage_answered(client: TestClient) -> None:
    """#27 item 8: the ticket's reason (the agent console's header) describes what happened."""
    angry = chat(client, "I'm sick of this, is my money even protected with you useless people?!")
    assert (angry["route"], angry["escalation"]) == ("handoff", "angry")
    (logged,) = client.get("/v1/logs", params={"limit": 1}).json()["items"]
    assert logged["source"]  # routing alone would have answered with a passage
    reason = client.get(f"/v1/handoffs/{angry['ticket_id']}").json()["ticket"]["reason"]
    assert reason.startswith("Handed to a person: the message reads as an angry complaint")
    assert "passage answers it" not in reason


def test_conversations_claimed_before_the_upgrade_stay_with_their_agent(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = create_engine(url)
    config = _alembic_config()
    with old.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0007")
    now = datetime.now(UTC).isoformat(sep=" ")
    with old.begin() as connection:
        for conversation, ticket in (("claimed", "claimed"), ("waiting", "open"), ("resolved", "resolved")):
            status = "bot" if ticket == "resolved" else "handoff"
            connection.execute(
                text(
                    "INSERT INTO conversation (id, channel, metadata, status, fallback_streak, pending_options,"
                    " created_at, updated_at) VALUES (:id, 'web', '{}', :status, 0, '[]', :now, :now)"
                ),
                {"id": conversation, "status": status, "now": now},
            )
            connection.execute(
                text(
                    "INSERT INTO handoff_ticket (conversation_id, reason, status, created_at)"
                    " VALUES (:id, 'asked', :status, :now)"
                ),
                {"id": conversation, "status": ticket, "now": now},
            )
    old.dispose()
    database = make_engine(url)
    try:
        upgrade(database)
        with database.connect() as connection:
            rows = connection.execute(text("SELECT id, status FROM conversation ORDER BY id")).all()
    finally:
        database.dispose()
    assert [tuple(row) for row in rows] == [("claimed", "agent"), ("resolved", "bot"), ("waiting", "handoff")]
