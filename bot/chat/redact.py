"""Redaction of personal data before anything is stored: what a customer types and the widget's metadata.

Each kind of number is matched by its shape and, where the number carries a checksum, confirmed with
python-stdnum (IBAN mod-97, card Luhn, US SSN reserved ranges), so amounts, dates and order references
stay readable. Numbers without a checksum (UK sort code and account number, PINs) are redacted only
next to the words that name them ("sort code", "account", "PIN"), for the same reason. The "What is
redacted" table of docs/security.md lists each kind with an example, and what is not covered.
"""

from __future__ import annotations

import re
from typing import Any

import phonenumbers
from stdnum import iban, luhn
from stdnum.us import ssn

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# 13-19 digits grouped by spaces (one or two), dashes, dots or slashes; confirmed by the Luhn checksum
CARD = re.compile(r"(?<![\d.,/])\d(?:(?:[ .\-/]|  )?\d){12,18}(?![\d])")
# two letters, two check digits, then 11-30 letters/digits, optionally in groups of four; checked mod 97
IBAN = re.compile(
    r"\b[A-Z]{2}\d{2}(?:[A-Z0-9]{11,30}|(?: [A-Z0-9]{4}){2,7}(?: [A-Z0-9]{1,4})?)\b", re.IGNORECASE
)
# a UK National Insurance number: two prefix letters (some never issued), six digits, a suffix A-D
NINO = re.compile(
    r"\b(?!BG|GB|KN|NK|NT|TN|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b",
    re.IGNORECASE,
)
SSN = re.compile(r"(?<![\d-])\d{3}([- ])\d{2}\1\d{4}(?![\d-])")
SSN_NAMED = re.compile(
    r"\b(?:ssn|social security(?: number| no\.?)?)\s*(?:is|:|#)?\s*(\d{9})\b", re.IGNORECASE
)
SORT_CODE = r"\d{2}(?:-\d{2}-| \d{2} |\d{2})\d{2}"  # 12-34-56, 12 34 56 or 123456
ACCOUNT_NUMBER = r"\d{8}"
# a sort code and an account number together, in either order, or each after its own name
BANK_DETAILS = re.compile(
    rf"(?<!\d)(?:{SORT_CODE})(?!\d)(?P<between>[^\d\n]{{0,40}}?)(?<!\d){ACCOUNT_NUMBER}(?!\d)"
    rf"|(?<!\d){ACCOUNT_NUMBER}(?!\d)(?P<between2>[^\d\n]{{0,40}}?)(?<!\d)(?:{SORT_CODE})(?!\d)",
)
NAMED_SORT_CODE = re.compile(rf"(\bsort[ -]?code\s*(?:is|:)?\s*)(?<!\d){SORT_CODE}(?!\d)", re.IGNORECASE)
NAMED_ACCOUNT = re.compile(
    rf"(\b(?:account|acct|acc|a/c)(?: number| no\.?| #)?\s*(?:is|:|#)?\s*)(?<!\d){ACCOUNT_NUMBER}(?!\d)",
    re.IGNORECASE,
)
# "my password is hunter2", "PIN: 1234", "passcode 0000": the word after the name is the secret
SECRET = re.compile(
    r"\b(?P<name>pass(?:word|code|phrase)|pwd|memorable (?:word|information)|security (?:code|answer)"
    r"|pin(?: number| code)?|cvv|cvc|one[- ]time (?:code|password)|otp)"
    r"(?P<glue>\s*(?:is|was|=|:)?\s*)(?P<secret>[^\s,;]+)",
    re.IGNORECASE,
)
_SECRET_GLUE_WORDS = frozenset({"is", "was", "and", "to", "for", "reset", "the", "my", "a"})
# a North American number written the national way, which the customer's own region does not parse
NANP = re.compile(r"(?<![\d+])(?:\(\d{3}\)\s?|\d{3}[-. ])\d{3}[-. ]\d{4}(?!\d)")


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group())
    return "[card number]" if 13 <= len(digits) <= 19 and luhn.is_valid(digits) else match.group()


def _iban(match: re.Match[str]) -> str:
    return "[iban]" if iban.is_valid(match.group()) else match.group()


def _ssn(match: re.Match[str]) -> str:
    return "[ssn]" if ssn.is_valid(re.sub(r"\D", "", match.group())) else match.group()


def _named_ssn(match: re.Match[str]) -> str:
    number = match.group(1)
    return match.group().replace(number, "[ssn]") if ssn.is_valid(number) else match.group()


def _bank_details(match: re.Match[str]) -> str:
    if match.group("between") is not None:
        return f"[sort code]{match.group('between')}[account number]"
    return f"[account number]{match.group('between2')}[sort code]"


def _secret(match: re.Match[str]) -> str:
    secret = match.group("secret")
    is_pin = match.group("name").lower().startswith("pin")
    if is_pin and not re.fullmatch(r"\d{4,8}", secret):  # "pin this chat": a PIN is 4-8 digits
        return match.group()
    said = match.group("glue").strip() != ""  # "password is ...", "password: ..."
    if secret.lower() in _SECRET_GLUE_WORDS or not (said or re.search(r"[\d\W]", secret)):
        return match.group()  # "reset my password for me", "password please"
    name = "pin" if is_pin else "password"
    return f"{match.group('name')}{match.group('glue')}[{name}]"


def _nanp(match: re.Match[str]) -> str:
    try:
        number = phonenumbers.parse(match.group(), "US")
    except phonenumbers.NumberParseException:
        return match.group()
    return "[phone number]" if phonenumbers.is_valid_number(number) else match.group()


_DIGIT = re.compile(r"\d")  # the same (Unicode) digits the patterns above and phonenumbers match


def redact(text: str, region: str = "GB") -> str:
    """`text` with e-mail addresses, bank and card numbers, ID numbers, secrets and phone numbers replaced.

    Every number pattern needs a least count of digits (a card 13, an SSN 9, ...) and replacements only
    remove digits, so a pattern is skipped when the text has fewer digits than it needs: a message
    without digits costs two checks instead of a dozen scans (same result, less time on the event loop).
    """
    if "@" in text:
        text = EMAIL.sub("[email]", text)
    digits = len(_DIGIT.findall(text))
    if digits:
        if digits >= 2:
            text = IBAN.sub(_iban, text)
        if digits >= 13:
            text = CARD.sub(_card, text)
        if digits >= 9:
            text = SSN.sub(_ssn, text)
            text = SSN_NAMED.sub(_named_ssn, text)
        if digits >= 6:
            text = NINO.sub("[national insurance number]", text)
        if digits >= 14:
            text = BANK_DETAILS.sub(_bank_details, text)
        if digits >= 6:
            text = NAMED_SORT_CODE.sub(r"\1[sort code]", text)
        if digits >= 8:
            text = NAMED_ACCOUNT.sub(r"\1[account number]", text)
    text = SECRET.sub(_secret, text)
    if digits:
        # phonenumbers finds national and international formats for the region without false digits runs
        spans = [(m.start, m.end) for m in phonenumbers.PhoneNumberMatcher(text, region)]
        for start, end in reversed(spans):
            text = f"{text[:start]}[phone number]{text[end:]}"
        if region != "US" and digits >= 10:
            text = NANP.sub(_nanp, text)
    return text


def redact_values(value: Any, region: str = "GB") -> Any:
    """Redact every string inside JSON-like data (metadata from the widget), keys included."""
    if isinstance(value, str):
        return redact(value, region)
    if isinstance(value, dict):
        redacted: dict[str, Any] = {}
        for key, item in value.items():
            name = redact(key, region) if isinstance(key, str) else key
            while name in redacted:  # two keys that redact alike both keep their values
                name = f"{name}'"
            redacted[name] = redact_values(item, region)
        return redacted
    if isinstance(value, list):
        return [redact_values(v, region) for v in value]
    return value
