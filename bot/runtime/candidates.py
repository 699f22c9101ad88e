"""Which folders on the server an admin may name as a candidate (a routing diff, a shadow run), and one
diff at a time.

An admin key names folders by path, so without a rule it could make the server read any folder it can
(`/etc`, a home directory) and tell, by the error, which exist. Candidates must lie inside the
configured roots (BOT_CANDIDATE_ROOTS; default: the folder holding BOT_INTENTS_DIR, where a next version
of the intents usually sits beside the live one), after symlinks are resolved; anything else, missing or
not, gets the same answer. A diff replays up to thousands of logged messages through the encoder: one
runs at a time per process, so diffs cannot crowd out customers' chats.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bot.config import Settings
from bot.errors import BusyError, InvalidInputError


def candidate_roots(settings: Settings) -> list[Path]:
    """The folders candidates may lie in, resolved."""
    named = [part.strip() for part in settings.candidate_roots.split(",") if part.strip()]
    roots = [Path(part) for part in named] or [Path(settings.intents_dir).resolve().parent]
    return [root.expanduser().resolve() for root in roots]


def candidate_folder(path: str, settings: Settings, field: str = "intents_dir") -> Path:
    """`path` resolved, if it is a folder inside the candidate roots; else one answer for every refusal."""
    roots = candidate_roots(settings)
    folder = Path(path).expanduser().resolve()
    inside = any(folder == root or folder.is_relative_to(root) for root in roots)
    if not inside or not folder.is_dir():
        allowed = ", ".join(str(root) for root in roots)
        raise InvalidInputError(
            field, f"must be an intents folder inside the candidate roots ({allowed}; BOT_CANDIDATE_ROOTS)"
        )
    return folder


_diff_running = threading.Lock()


@contextmanager
def one_diff_at_a_time() -> Iterator[None]:
    """Run the body if no other diff runs in this process; else `BusyError` (429 with Retry-After)."""
    if not _diff_running.acquire(blocking=False):
        raise BusyError("a routing diff is running on this server; retry when it ends", retry_after=10)
    try:
        yield
    finally:
        _diff_running.release()
