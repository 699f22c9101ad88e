"""The shipped set of general off-topic messages: what a chat widget receives besides its business.

Self-calibration refuses by evidence, and a folder's own evidence of what it does not cover is only its
siblings (an example scored with its whole intent removed): the hardest off-topic request, a neighbour of
the business. Real off-topic traffic also holds small talk, other industries, nonsense and abuse, far easier
to refuse; judged by siblings alone a folder told its true off-topic share turns far too strict (#31). This
set, written by hand for this project (`data/off_topic.txt`, one message per line, `#` comments), is that
second kind of evidence: real messages, scored like any customer's. `bot.routing.pseudo_queries` drops the
ones a folder covers before they count as off-topic.
"""

from __future__ import annotations

import hashlib
from functools import cache
from importlib.resources import files


@cache
def off_topic_texts() -> tuple[str, ...]:
    """The shipped off-topic messages, in file order (comments and blank lines left out)."""
    text = files("bot.content").joinpath("data", "off_topic.txt").read_text(encoding="utf-8")
    lines = (line.strip() for line in text.splitlines())
    return tuple(line for line in lines if line and not line.startswith("#"))


@cache
def off_topic_version() -> str:
    """A short hash of the set: part of a self-calibration's cache key, so an edited set refits."""
    return hashlib.sha256("\n".join(off_topic_texts()).encode("utf-8")).hexdigest()[:12]
