"""The folder key `off_topic_share`: the share of the folder's traffic that no intent covers.

Self-calibration picks the operating point whose precision reaches the target when that share of the
messages is off-topic; without the key it is `BOT_OOS_RATE` (3% by default). A business whose traffic is
15% off-topic (`bot check --data LOGS` and the stats page estimate it) writes `off_topic_share: 0.15` at the
top of one intent file, beside `small_talk`. It is a folder key, not a setting, for the same reason as
`small_talk`: it is part of the folder's version (an edit, a diff, a stored version replayed anywhere).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml.comments import CommentedMap

from bot.content.yaml_io import atomic_write, excerpt
from bot.errors import IntentFileError

OFF_TOPIC_KEY = "off_topic_share"
_LINE = re.compile(rf"^{OFF_TOPIC_KEY}\s*:[^#\n]*(#.*)?$", re.MULTILINE)
NOTE = "# share of messages no intent covers (bot check --data LOGS estimates it)"


@dataclass(frozen=True)
class OffTopicShare:
    """A folder's `off_topic_share` key and where it is written."""

    path: Path
    line: int
    share: float


def read_share(path: Path, data: CommentedMap) -> OffTopicShare:
    """Validate the key in one intent file: a number with 0 <= share < 1 (`path:line` errors)."""
    line = data.lc.key(OFF_TOPIC_KEY)[0] + 1
    value: Any = data[OFF_TOPIC_KEY]
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1:
        raise IntentFileError(
            path,
            line,
            f"'{OFF_TOPIC_KEY}' must be a number from 0 up to (not including) 1, the share of messages no intent "
            f"covers (0.15 for 15%), got {excerpt(value)}",
        )
    return OffTopicShare(path, line, float(value))


def _insert_at(lines: list[str]) -> int:
    """Where a new top-level key goes: after the leading comments and a `---` marker, before any content."""
    for index, line in enumerate(lines):
        stripped = line.strip()
        if stripped and not stripped.startswith("#") and stripped != "---" and not stripped.startswith("%"):
            return index
    return len(lines)


def with_share(text: str, share: float) -> str:
    """`text` (an intent file) with `off_topic_share` set to `share`: the key's line replaced where it
    is (its comment kept), else added as the first key. Nothing else of the file changes."""
    value = f"{share:g}"
    found = _LINE.search(text)
    if found is not None:
        comment = f"  {found.group(1)}" if found.group(1) else ""
        return text[: found.start()] + f"{OFF_TOPIC_KEY}: {value}{comment}" + text[found.end() :]
    lines = text.splitlines(keepends=True)
    at = _insert_at(lines)
    return "".join([*lines[:at], f"{OFF_TOPIC_KEY}: {value}  {NOTE}\n", *lines[at:]])


def write_share(path: Path, share: float) -> None:
    """Write the key into the intent file `path` (atomically: a reader sees the old file or the new)."""
    if not 0 <= share < 1:
        raise IntentFileError(path, None, f"'{OFF_TOPIC_KEY}' must be from 0 up to 1, got {share}")
    text = path.read_text(encoding="utf-8")
    atomic_write(path, with_share(text, share))


def set_folder_share(folder: Path, share: float) -> Path:
    """Write `share` into the folder: in the file that has the key, else the one holding `small_talk`,
    else the first intent file. The folder is read back; if it no longer loads the file is restored and
    the error raised. Returns the file written."""
    from bot.content.intents import intent_files, load_intents

    found = load_intents(folder)
    if found.off_topic is not None:
        path = found.off_topic.path
    elif found.small_talk is not None and found.small_talk.setting is not None:
        path = Path(found.small_talk.setting.rsplit(":", 1)[0])
    else:
        path = intent_files(Path(folder))[0]
    original = path.read_text(encoding="utf-8")
    write_share(path, share)
    try:
        load_intents(folder)
    except IntentFileError:
        path.write_text(original, encoding="utf-8")
        raise
    return path
