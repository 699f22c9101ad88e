"""Redaction covers bank, card, ID, secret and phone numbers (docs/security.md: "What is redacted")."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from bot.api import create_app
from bot.chat.redact import redact, redact_values
from bot.config import Settings
from bot.routing.engine import Engine
from tests.api_support import make_intents, temporary_database


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("my iban is GB82 WEST 1234 5698 7654 32 thanks", "my iban is [iban] thanks"),
        ("IBAN DE89370400440532013000", "IBAN [iban]"),
        ("NI number AB 12 34 56 C", "NI number [national insurance number]"),
        ("ni JG103759A ok", "ni [national insurance number] ok"),
        ("sort code 12-34-56 account 12345678", "sort code [sort code] account [account number]"),
        ("account 12345678, sort code 12-34-56", "account [account number], sort code [sort code]"),
        ("my sort code is 123456", "my sort code is [sort code]"),
        ("my account number is 87654321", "my account number is [account number]"),
        ("my password is hunter2!", "my password is [password]"),
        ("my passcode was abc-123", "my passcode was [password]"),
        ("PIN: 1234", "PIN: [pin]"),
        ("my pin is 0000 please", "my pin is [pin] please"),
        ("ssn 536-90-4399", "ssn [ssn]"),
        ("my social security number is 536904399", "my social security number is [ssn]"),
        ("card 4111.1111.1111.1111", "card [card number]"),
        ("card 4111/1111/1111/1111", "card [card number]"),
        ("card 4111  1111  1111  1111", "card [card number]"),
        ("call me on (415) 555-2671", "call me on [phone number]"),
        ("call 415-555-2671 tomorrow", "call [phone number] tomorrow"),
    ],
)
def test_personal_numbers_are_redacted(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "not an iban GB82 WEST 1234 5698 7654 33",  # fails mod 97
        "not a card 4111.1111.1111.1112",  # fails Luhn
        "ssn 000-12-3456",  # never issued
        "ref 12345678 for order 2024-05-01",  # an 8-digit number that nothing calls an account
        "I forgot my password",
        "reset my password for me",
        "can you pin this to the top",
        "I paid 100.00 on 01/05/2024, version 1.2.3",
        "transfer of 1500 to account ending 1234",
    ],
)
def test_ordinary_text_is_kept(text: str) -> None:
    assert redact(text) == text


def test_metadata_keys_are_redacted_too() -> None:
    metadata = {"4111 1111 1111 1111": "saved", "a@b.example": 1, "c@d.example": 2, "plan": "ann@x.example"}
    assert redact_values(metadata) == {
        "[card number]": "saved",
        "[email]": 1,
        "[email]'": 2,
        "plan": "[email]",
    }


# Written in other characters than the usual ones (#28 item 4): the patterns read a normalised copy
# (NFKC, format characters removed, separators unified, any script's digits) and the original span goes.
DISGUISED = [
    ("card 4111\u00a01111\u00a01111\u00a01111 ok", "card [card number] ok"),  # no-break spaces
    ("card 4111\u202f1111\u202f1111\u202f1111", "card [card number]"),  # narrow no-break spaces
    ("card 4111\u20131111\u20131111\u20131111", "card [card number]"),  # en dashes
    ("card 4111\u22121111\u22121111\u22121111", "card [card number]"),  # minus signs
    ("card 4111_1111_1111_1111", "card [card number]"),  # underscores
    ("card 4111\u200b1111\u200b1111\u200b1111 ok", "card [card number] ok"),  # zero-width spaces
    ("card 41\u00ad11 1111 1111 1111", "card [card number]"),  # a soft hyphen
    (
        "card \uff14\uff11\uff11\uff11 \uff11\uff11\uff11\uff11 \uff11\uff11\uff11\uff11 \uff11\uff11\uff11\uff11",
        "card [card number]",
    ),
    (
        "card \u0664\u0661\u0661\u0661 \u0661\u0661\u0661\u0661 \u0661\u0661\u0661\u0661 \u0661\u0661\u0661\u0661",
        "card [card number]",
    ),
    ("iban GB82-WEST-1234-5698-7654-32 ok", "iban [iban] ok"),
    ("iban GB82\u00a0WEST\u00a01234\u00a05698\u00a07654\u00a032", "iban [iban]"),
    ("ssn 123.45.6789", "ssn [ssn]"),
    ("ssn 536\u201390\u20134399", "ssn [ssn]"),
    ("my ssn is 536-90-4399", "my ssn is [ssn]"),
    ("pin is: 9876", "pin is: [pin]"),
    ("my password is hunter 2", "my password is [password]"),
    ("my password is hunter 2 thanks", "my password is [password] thanks"),
    (
        "\uff50\uff49\uff4e \uff49\uff53 \uff19\uff18\uff17\uff16 ok",
        "\uff50\uff49\uff4e \uff49\uff53 [pin] ok",
    ),
    ("password: 4111 1111 1111 1111", "password: [card number]"),
    ("mail ann\u200b@example.com", "mail [email]"),
    ("caf\u00e9 na\u00efve 4111 1111 1111 1111 \u00fcber", "caf\u00e9 na\u00efve [card number] \u00fcber"),
]


@pytest.mark.parametrize(("text", "expected"), DISGUISED)
def test_numbers_in_other_characters_are_redacted(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "my card is fine and so is my pin",
        "passwords are hard",
        "\uff52\uff45\uff46 12345678, caf\u00e9 \u2013 1.2.3",
        "not a card 4111\u00a01111\u00a01111\u00a01112",
    ],
)
def test_ordinary_text_in_other_characters_is_kept(text: str) -> None:
    assert redact(text) == text


def test_metadata_values_in_other_characters_are_redacted() -> None:
    metadata = {"card": "4111\u20131111\u20131111\u20131111", "n": ["ssn 123.45.6789"], "pin is: 9876": 1}
    assert redact_values(metadata) == {"card": "[card number]", "n": ["ssn [ssn]"], "pin is: [pin]": 1}


@pytest.fixture(params=["sqlite", "postgresql"])
def stored_client(
    request: pytest.FixtureRequest, tmp_path: Path, bundled_encoder, cache_dir: Path
) -> Iterator[tuple[TestClient, str]]:
    with temporary_database(request.param, tmp_path) as url:
        settings = Settings(
            intents_dir=make_intents(tmp_path / "intents"), cache_dir=cache_dir, database_url=url
        )
        engine = Engine(settings, encoder=bundled_encoder)
        engine.load()
        with TestClient(create_app(settings, engine=engine)) as client:
            yield client, url


def test_what_the_api_stores_is_redacted(stored_client: tuple[TestClient, str]) -> None:
    """Messages, decisions, the conversation's last text and its metadata, on SQLite and PostgreSQL."""
    client, url = stored_client
    texts = [text for text, _ in DISGUISED]
    metadata = {"note": texts[0], texts[2]: "key", "list": [texts[11], {"deep": texts[14]}]}
    conversation = None
    for message in texts:
        body = {"message": message, "metadata": metadata, "conversation_id": conversation}
        reply = client.post("/v1/chat", json={k: v for k, v in body.items() if v is not None})
        assert reply.status_code == 200, reply.text
        conversation = reply.json()["conversation_id"]
    database = create_engine(url)
    try:
        with database.connect() as connection:
            stored = [
                row[0]
                for row in connection.execute(
                    text("SELECT text FROM message WHERE role = 'user' ORDER BY id")
                )
            ]
            decided = [row[0] for row in connection.execute(text("SELECT text FROM decision ORDER BY id"))]
            last, meta = connection.execute(
                text("SELECT last_user_text, metadata FROM conversation WHERE id = :id"), {"id": conversation}
            ).one()
    finally:
        database.dispose()
    expected = [redacted for _, redacted in DISGUISED]
    assert stored == expected and decided == expected
    assert last == expected[-1]
    meta = json.loads(meta) if isinstance(meta, str) else meta
    assert meta == {
        "note": expected[0],
        expected[2]: "key",
        "list": [expected[11], {"deep": expected[14]}],
    }
