"""Near names for a name that does not exist, so every message reporting one can say "did you mean ...?".

A wrong intent name is nearly always a near miss of a real one: a BANKING77 label spelt the data set's
way (`top_up_by_card` for the folder's `topping_up_by_card`), a typo in a YAML file or a request, a name
from an older version of the folder. Python's difflib ranks the known names by how much of the name
they share (its ratio, 0.6 at least, as `difflib.get_close_matches` does), which is enough for names of
a few words and needs no dependency.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

CUTOFF = 0.6  # difflib's default: 'card_arival' -> 'card_arrival', 'lost_card' -> 'lost_or_stolen_card'
MAX_SUGGESTIONS = 3


def _folded(name: str) -> str:
    """A name as intent names are written: lowercase, anything but letters and digits as '_'."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def near_names(name: str, known: Iterable[str], limit: int = MAX_SUGGESTIONS) -> list[str]:
    """The known names nearest to `name`, best first (none when nothing is close); case, spaces and
    punctuation do not count against a name ('Card Arrival' finds 'card_arrival')."""
    by_folded: dict[str, str] = {}
    for candidate in known:
        by_folded.setdefault(_folded(candidate), candidate)
    wanted = _folded(name)
    if wanted in by_folded and by_folded[wanted] != name:
        return [by_folded[wanted]]  # only spelt differently: that one is meant
    close = difflib.get_close_matches(wanted, list(by_folded), n=limit, cutoff=CUTOFF)
    return [by_folded[c] for c in close if by_folded[c] != name]


def did_you_mean(name: str, known: Iterable[str], limit: int = MAX_SUGGESTIONS) -> str:
    """ " (did you mean 'a' or 'b'?)" for the names near `name`, or "" when none is."""
    found = near_names(name, known, limit)
    if not found:
        return ""
    return " (did you mean " + " or ".join(f"'{n}'" for n in found) + "?)"


def unknown_intent(name: str, known: Iterable[str], where: str = "see GET /v1/intents") -> str:
    """The message for an intent name a request or file gives that the folder lacks, with near names."""
    return f"unknown intent '{name}'{did_you_mean(name, known)}; {where}"
