"""Redaction of personal data before anything is stored: what a customer types and the widget's metadata.

Each kind of number is matched by its shape and, where the number carries a checksum, confirmed with
python-stdnum (IBAN mod-97, card Luhn, US SSN reserved ranges), so amounts, dates and order references
stay readable. Numbers without a checksum (UK sort code and account number, PINs) are redacted only
next to the words that name them ("sort code", "account", "PIN"), for the same reason. The "What is
redacted" table of docs/security.md lists each kind with an example, and what is not covered.

The patterns run on a normalised copy of the text (`normalized`: NFKC, so full-width letters and digits
are plain ones; format characters such as zero-width spaces and soft hyphens removed; every space
separator a space, every dash a hyphen, every decimal digit of any script an ASCII digit), and what they
find is replaced in the original text, span for span: `4111\u00a01111\u2013...` is found as
`4111 1111-...`, and the customer's other words are stored as typed.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from typing import Any

import phonenumbers
from stdnum import iban, luhn
from stdnum.us import ssn

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# 13-19 digits grouped by spaces (one or two), dashes, dots, slashes or underscores; confirmed by Luhn
CARD = re.compile(r"(?<![\d.,/])\d(?:(?:[ .\-/_]|  )?\d){12,18}(?![\d])")
# two letters, two check digits, then 11-30 letters/digits, optionally in groups of four split by spaces
# or dashes; checked mod 97
IBAN = re.compile(
    r"\b[A-Z]{2}\d{2}(?:[A-Z0-9]{11,30}|(?:[ -][A-Z0-9]{4}){2,7}(?:[ -][A-Z0-9]{1,4})?)\b", re.IGNORECASE
)
# a UK National Insurance number: two prefix letters (some never issued), six digits, a suffix A-D
NINO = re.compile(
    r"\b(?!BG|GB|KN|NK|NT|TN|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b",
    re.IGNORECASE,
)
SSN = re.compile(r"(?<![\d.-])\d{3}([-. ])\d{2}\1\d{4}(?![\d-]|\.\d)")
SSN_NAMED = re.compile(
    r"\b(?:ssn|social security(?: number| no\.?)?)\s*(?:is|:|#)?\s*(\d{3}([-. ]?)\d{2}\2\d{4})(?!\d)",
    re.IGNORECASE,
)
SORT_CODE = r"\d{2}(?:-\d{2}-| \d{2} |\d{2})\d{2}"  # 12-34-56, 12 34 56 or 123456
ACCOUNT_NUMBER = r"\d{8}"
# a sort code and an account number together, in either order, or each after its own name
BANK_DETAILS = re.compile(
    rf"(?<!\d)(?P<sc>{SORT_CODE})(?!\d)[^\d\n]{{0,40}}?(?<!\d)(?P<acc>{ACCOUNT_NUMBER})(?!\d)"
    rf"|(?<!\d)(?P<acc2>{ACCOUNT_NUMBER})(?!\d)[^\d\n]{{0,40}}?(?<!\d)(?P<sc2>{SORT_CODE})(?!\d)",
)
NAMED_SORT_CODE = re.compile(rf"\bsort[ -]?code\s*(?:is|:)?\s*(?<!\d)(?P<n>{SORT_CODE})(?!\d)", re.IGNORECASE)
NAMED_ACCOUNT = re.compile(
    rf"\b(?:account|acct|acc|a/c)(?: number| no\.?| #)?\s*(?:is|:|#)?\s*(?<!\d)(?P<n>{ACCOUNT_NUMBER})(?!\d)",
    re.IGNORECASE,
)
MASK = "\ue000"  # stands in the working copy for what was already redacted (private use: no digit, letter or space)
# "my password is hunter2", "PIN: 1234", "pin is: 9876": the word after the name is the secret, and so is
# each word after it that holds a digit or a symbol ("hunter 2", "abc 123")
_WORD = rf"[^\s,;{MASK}]+"
_SYMBOL = rf"[^\s,;{MASK}]*?(?:\d|[^\w\s,;{MASK}])"  # a word ahead that holds a digit or a symbol
SECRET = re.compile(
    r"\b(?P<name>pass(?:word|code|phrase)|pwd|memorable (?:word|information)|security (?:code|answer)"
    r"|pin(?: number| code)?|cvv|cvc|one[- ]time (?:code|password)|otp)"
    rf"(?P<glue>(?:\s*(?:is|was)\b)?\s*[=:]?\s*)(?P<secret>(?![=:]){_WORD}(?:[ \t]+(?={_SYMBOL}){_WORD})*)",
    re.IGNORECASE,
)
_SECRET_GLUE_WORDS = frozenset({"is", "was", "and", "to", "for", "reset", "the", "my", "a"})
# a North American number written the national way, which the customer's own region does not parse
NANP = re.compile(r"(?<![\d+])(?:\(\d{3}\)\s?|\d{3}[-. ])\d{3}[-. ]\d{4}(?!\d)")

Span = tuple[int, int, str]  # start and end in the normalised copy, and what the text there becomes


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def _card(match: re.Match[str]) -> list[Span]:
    digits = _digits(match.group())
    valid = 13 <= len(digits) <= 19 and luhn.is_valid(digits)
    return [(match.start(), match.end(), "[card number]")] if valid else []


def _iban(match: re.Match[str]) -> list[Span]:
    valid = iban.is_valid(re.sub(r"[ -]", "", match.group()))
    return [(match.start(), match.end(), "[iban]")] if valid else []


def _ssn(match: re.Match[str]) -> list[Span]:
    return [(match.start(), match.end(), "[ssn]")] if ssn.is_valid(_digits(match.group())) else []


def _named_ssn(match: re.Match[str]) -> list[Span]:
    return [(match.start(1), match.end(1), "[ssn]")] if ssn.is_valid(_digits(match.group(1))) else []


def _whole(label: str) -> Callable[[re.Match[str]], list[Span]]:
    return lambda match: [(match.start(), match.end(), label)]


def _named(label: str) -> Callable[[re.Match[str]], list[Span]]:
    return lambda match: [(match.start("n"), match.end("n"), label)]


def _bank_details(match: re.Match[str]) -> list[Span]:
    sort_code, account = ("sc", "acc") if match.group("sc") is not None else ("sc2", "acc2")
    return [
        (match.start(sort_code), match.end(sort_code), "[sort code]"),
        (match.start(account), match.end(account), "[account number]"),
    ]


def _secret(match: re.Match[str]) -> list[Span]:
    secret = match.group("secret")
    is_pin = match.group("name").lower().startswith("pin")
    if is_pin and not re.fullmatch(r"\d{4,8}", re.sub(r"\s", "", secret)):  # "pin this chat": 4-8 digits
        return []
    said = match.group("glue").strip() != ""  # "password is ...", "password: ..."
    if secret.lower() in _SECRET_GLUE_WORDS or not (said or re.search(r"[\d\W]", secret)):
        return []  # "reset my password for me", "password please"
    return [(match.start("secret"), match.end("secret"), "[pin]" if is_pin else "[password]")]


def _nanp(match: re.Match[str]) -> list[Span]:
    try:
        number = phonenumbers.parse(match.group(), "US")
    except phonenumbers.NumberParseException:
        return []
    return [(match.start(), match.end(), "[phone number]")] if phonenumbers.is_valid_number(number) else []


_DIGIT = re.compile(r"\d")
_DASHES = frozenset(
    "\u2212\u2043\ufe63\uff0d"
)  # minus sign, hyphen bullet, small and full-width hyphen-minus


def _normal_char(char: str) -> str:
    """What one non-ASCII character is in the normalised copy (see the module docstring)."""
    category = unicodedata.category(char)
    if category == "Cf":  # zero-width space, soft hyphen, joiners, direction marks, BOM
        return ""
    if category == "Zs":
        return " "
    if category == "Pd" or char in _DASHES:
        return "-"
    if category == "Nd":
        return str(unicodedata.decimal(char))
    return unicodedata.normalize("NFKC", char)


def normalized(text: str) -> tuple[str, list[int] | None]:
    """The copy of `text` the patterns read, and for each of its characters the index in `text` of the
    character it came from (None when the copy is `text` itself: plain ASCII, the common case)."""
    if text.isascii():
        return text, None
    parts: list[str] = []
    origin: list[int] = []
    for index, char in enumerate(text):
        normal = char if char.isascii() else _normal_char(char)
        parts.append(normal)
        origin.extend([index] * len(normal))
    return "".join(parts), origin


class _Finder:
    """The normalised copy, with the spans found so far masked so that no later pattern reads them."""

    def __init__(self, text: str) -> None:
        self.work, self.origin = normalized(text)
        self.spans: list[Span] = []

    def find(self, pattern: re.Pattern[str], spans_of: Callable[[re.Match[str]], list[Span]]) -> None:
        self.take(span for match in pattern.finditer(self.work) for span in spans_of(match))

    def take(self, spans: Iterable[Span]) -> None:
        for start, end, label in list(spans):
            if MASK not in self.work[start:end]:  # already part of something redacted
                self.work = f"{self.work[:start]}{MASK * (end - start)}{self.work[end:]}"
                self.spans.append((start, end, label))

    def apply(self, text: str) -> str:
        """`text` with each span found replaced by its label."""
        out: list[str] = []
        done = 0
        for start, end, label in sorted(self.spans):
            first, last = (
                (start, end) if self.origin is None else (self.origin[start], self.origin[end - 1] + 1)
            )
            out.append(text[done : max(first, done)])
            out.append(label)
            done = max(last, done)
        out.append(text[done:])
        return "".join(out)


def redact(text: str, region: str = "GB") -> str:
    """`text` with e-mail addresses, bank and card numbers, ID numbers, secrets and phone numbers replaced.

    Every number pattern needs a least count of digits (a card 13, an SSN 9, ...), so a pattern is skipped
    when the text has fewer digits than it needs: a message without digits costs two checks instead of a
    dozen scans (same result, less time on the event loop).
    """
    found = _Finder(text)
    if "@" in found.work:
        found.find(EMAIL, _whole("[email]"))
    digits = len(_DIGIT.findall(found.work))
    if digits:
        _find_numbers(found, digits)
    found.find(SECRET, _secret)
    if digits:
        # phonenumbers finds national and international formats for the region without false digit runs
        matches = phonenumbers.PhoneNumberMatcher(found.work, region)
        found.take((m.start, m.end, "[phone number]") for m in matches)
        if region != "US" and digits >= 10:
            found.find(NANP, _nanp)
    return found.apply(text) if found.spans else text


def _find_numbers(found: _Finder, digits: int) -> None:
    """The numbers with a checksum or a name, in an order where the longer shapes go first."""
    if digits >= 2:
        found.find(IBAN, _iban)
    if digits >= 13:
        found.find(CARD, _card)
    if digits >= 9:
        found.find(SSN, _ssn)
        found.find(SSN_NAMED, _named_ssn)
    if digits >= 6:
        found.find(NINO, _whole("[national insurance number]"))
    if digits >= 14:
        found.find(BANK_DETAILS, _bank_details)
    if digits >= 6:
        found.find(NAMED_SORT_CODE, _named("[sort code]"))
    if digits >= 8:
        found.find(NAMED_ACCOUNT, _named("[account number]"))


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
