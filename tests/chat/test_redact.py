"""Redaction covers bank, card, ID, secret and phone numbers (docs/security.md: "What is redacted")."""

from __future__ import annotations

import pytest

from bot.chat.redact import redact, redact_values


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
