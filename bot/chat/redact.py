"""Redaction of e-mail addresses, card numbers and phone numbers before anything is stored."""

from __future__ import annotations

import re
from typing import Any

import phonenumbers

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# 13-19 digits, optionally grouped by spaces or dashes; confirmed by the Luhn checksum below
CARD = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")


def _luhn_ok(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group())
    return "[card number]" if _luhn_ok(digits) else match.group()


def redact(text: str, region: str = "GB") -> str:
    """`text` with e-mail addresses, card numbers and phone numbers replaced by placeholders."""
    text = EMAIL.sub("[email]", text)
    text = CARD.sub(_card, text)
    # phonenumbers finds national and international formats for the region without false digits runs
    spans = [(m.start, m.end) for m in phonenumbers.PhoneNumberMatcher(text, region)]
    for start, end in reversed(spans):
        text = f"{text[:start]}[phone number]{text[end:]}"
    return text


def redact_values(value: Any, region: str = "GB") -> Any:
    """Redact every string inside JSON-like data (metadata from the widget)."""
    if isinstance(value, str):
        return redact(value, region)
    if isinstance(value, dict):
        return {k: redact_values(v, region) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_values(v, region) for v in value]
    return value
