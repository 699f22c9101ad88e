"""People's names as API keys and request bodies give them: one character set, and a look-alike rule.

A name is shown to customers ("Ann from the fraud team") and recorded as who claimed, replied or
resolved, so a shared key must not be able to pass for a person with a key of their own by writing that
person's name with other characters. `clean_name` normalises a name (NFKC, spaces collapsed) and refuses
what falls outside the set below; `skeleton` is what two names are compared by.

The character set (docs/security.md, "Agent names"): after NFKC, 1-128 characters that are letters,
combining marks on a letter, the ASCII digits 0-9, spaces and `.` `-` `_` `'`; no format or invisible
characters (zero-width spaces, soft hyphens, direction marks), no control characters, and the letters of
one script (Latin, Cyrillic, Greek, ...; Han may mix with Hiragana/Katakana or Hangul, as Japanese and
Korean names do). A letter's script is read from the first word of its Unicode name (`LATIN SMALL
LETTER A`), which is exact for the scripts that matter here.

The skeleton follows Unicode TS #39 (section 4, "Confusable Detection") in spirit, for the characters a
name in this set can hold: NFKD with the combining marks dropped (so `Ånn` and `Anń` are `Ann`), each
character mapped by `CONFUSABLE` (the Cyrillic, Greek and Armenian letters, and the digits, that TS #39's
confusables.txt maps to a Latin letter; capital `I` to `l` as TS #39 does), case folded, `rn`, `vv` and
`cl` read as `m`, `w` and `d`, and the separators (space `.` `-` `_` `'`) dropped. It is stricter than
TS #39 (which keeps diacritics and case) on purpose: a customer reading a chat does not tell `Anń` from
`Ann`. The whole confusables.txt (6,000+ entries) is not bundled: the mixed-script rule already refuses a
Cyrillic a among Latin letters, and the table covers the letters a name written wholly in another script
would need to look Latin.
"""

from __future__ import annotations

import unicodedata

NAME_MAX = 128
ALLOWED = (
    "1-128 letters of one script (with their accents), digits 0-9, spaces and . - _ ' characters; "
    "no invisible or format characters"
)
SEPARATORS = frozenset(" .-_'")
# scripts that names mix by nature: Japanese writes Han with kana, Korean Han with Hangul
_SCRIPT_FAMILIES = ({"CJK", "HIRAGANA", "KATAKANA"}, {"CJK", "HANGUL"}, {"CJK", "BOPOMOFO"})

# letters (and digits) of other scripts that TS #39's confusables.txt maps to a Latin letter: what a name
# written wholly in Cyrillic, Greek or Armenian would use to look like a Latin one
# (written as code points: the letters themselves are the look-alikes this table exists for)
CONFUSABLE = str.maketrans(
    {
        # Cyrillic
        "\u0410": "A", "\u0412": "B", "\u0415": "E", "\u041a": "K", "\u041c": "M", "\u041d": "H",
        "\u041e": "O", "\u0420": "P", "\u0421": "C", "\u0422": "T", "\u0423": "Y", "\u0425": "X",
        "\u0405": "S", "\u0406": "l", "\u0408": "J", "\u051a": "Q", "\u051c": "W", "\u04ba": "h",
        "\u04c0": "l", "\u04ae": "Y", "\u0500": "d", "\ua646": "l", "\u0430": "a", "\u0435": "e",
        "\u043e": "o", "\u0440": "p", "\u0441": "c", "\u0443": "y", "\u0445": "x", "\u0455": "s",
        "\u0456": "i", "\u0458": "j", "\u0501": "d", "\u051b": "q", "\u051d": "w", "\u04bb": "h",
        "\u04cf": "l", "\u04af": "y", "\u0475": "v",
        # Greek
        "\u0391": "A", "\u0392": "B", "\u0395": "E", "\u0396": "Z", "\u0397": "H", "\u0399": "l",
        "\u039a": "K", "\u039c": "M", "\u039d": "N", "\u039f": "O", "\u03a1": "P", "\u03a4": "T",
        "\u03a5": "Y", "\u03a7": "X", "\u03f9": "C", "\u037f": "J", "\u03b1": "a", "\u03bf": "o",
        "\u03bd": "v", "\u03b9": "i", "\u03ba": "k", "\u03c1": "p", "\u03c5": "u", "\u03c7": "x",
        "\u03b3": "y", "\u03f2": "c", "\u03f3": "j", "\u03f1": "p",
        # Armenian
        "\u0555": "O", "\u054d": "U", "\u054f": "S", "\u0585": "o", "\u057d": "u", "\u0581": "g",
        "\u0570": "h", "\u0578": "n", "\u0566": "q",
        # Latin letters that look like others, and digits that look like letters
        "\u0131": "i", "\u0251": "a", "\u0269": "i", "\u029f": "L", "I": "l", "0": "O", "1": "l",
        "5": "S", "\u0261": "g",
    }
)  # fmt: skip
_PAIRS = (("rn", "m"), ("vv", "w"), ("cl", "d"))


def clean_name(name: str) -> str:
    """`name` normalised (NFKC, runs of spaces one space, none at the ends), or ValueError saying why
    it is not a name (see the module docstring for the set)."""
    if not isinstance(name, str):
        raise ValueError(f"must be text of {ALLOWED}")
    bad = next((c for c in name if unicodedata.category(c) in ("Cf", "Cc", "Co", "Cs", "Cn")), None)
    if bad is not None:
        raise ValueError(f"holds the invisible or control character U+{ord(bad):04X}; use {ALLOWED}")
    cleaned = " ".join(unicodedata.normalize("NFKC", name).split())
    if not 1 <= len(cleaned) <= NAME_MAX:
        raise ValueError(f"must be {ALLOWED}")
    scripts: set[str] = set()
    for index, char in enumerate(cleaned):
        category = unicodedata.category(char)
        if category.startswith("L"):
            scripts.add(_script(char))
        elif category.startswith("M") and index and unicodedata.category(cleaned[index - 1])[0] in "LM":
            continue
        elif not ("0" <= char <= "9" or char in SEPARATORS):
            raise ValueError(f"may not hold '{char}' (U+{ord(char):04X}); use {ALLOWED}")
    if len(scripts) > 1 and not any(scripts <= family for family in _SCRIPT_FAMILIES):
        raise ValueError(f"mixes scripts ({', '.join(sorted(scripts)).lower()}); use {ALLOWED}")
    return cleaned


def _script(letter: str) -> str:
    """The script of a letter, from its Unicode name's first word ('LATIN', 'CYRILLIC', 'CJK', ...)."""
    return unicodedata.name(letter, "UNKNOWN").split(" ")[0]


def skeleton(name: str) -> str:
    """What two names are compared by: equal skeletons look alike to a reader (module docstring)."""
    decomposed = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", name))
    kept: list[str] = []
    for char in decomposed:
        category = unicodedata.category(char)
        if category == "Cf" or (category.startswith("M") and kept and _accented(kept[-1])):
            continue  # invisible, or an accent on a Latin, Greek, Cyrillic or Armenian letter
        kept.append(char)
    folded = "".join(kept).translate(CONFUSABLE).casefold()
    folded = "".join(c for c in folded if c not in SEPARATORS and not c.isspace())
    for pair, single in _PAIRS:
        folded = folded.replace(pair, single)
    return folded


def _accented(base: str) -> bool:
    """Whether a mark after `base` is an accent a reader overlooks (Latin, Greek, Cyrillic, Armenian),
    not a part of the letter as in other scripts (the dakuten of だ, a Devanagari vowel sign)."""
    return ord(base) < 0x0590 or 0x1D00 <= ord(base) < 0x2000
