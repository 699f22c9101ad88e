"""The drafts of `bot bootstrap` as `bot serve` shows them at /review/bootstrap (`BOT_BOOTSTRAP_DIR`).

The page reads DIR/drafts.json (re-read on every request, so a new `bot bootstrap --force` run shows at
the next reload) and sends back only the reviewer's decisions (accept with a name, merge into, drop); the
server makes the reviewed DIR/drafts.yaml from drafts.json with `bot bootstrap`'s own writer
(bootstrap_folder.intent_entry), so one writer escapes customer text, and a decisions list stays small
under the request guard's body limit where the file itself would not. Nothing goes live from here: the
folder must not be, hold or sit inside the one the server routes with (nor its shadow), the file is loaded
as an intents folder before it replaces the old one whole, and a person still points BOT_INTENTS_DIR at
the folder after `bot check`.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from bot.config import Settings
from bot.content.intents import MAX_EXAMPLES_PER_INTENT, NAME_PATTERN, load_intents
from bot.content.yaml_io import atomic_write
from bot.errors import ConflictError, IntentFileError, InvalidInputError, NotFoundError
from bot.insights.bootstrap import Draft
from bot.insights.bootstrap_folder import INTENTS_FILE, SUMMARY_FILE, intent_entry, uncovered_line

MAX_DECISIONS = 5_000  # above any drafts.json `bot bootstrap` writes; one decision per draft at most
MAX_NAME_CHARS = 100  # an intent name's limit in an intents file


@dataclass(frozen=True)
class Decision:
    """What the reviewer decided for one draft, named by its drafted name (drafts.json)."""

    draft: str
    decision: Literal["accept", "merge", "drop"]
    name: str | None = None  # accept: the intent's name, the drafted one when None
    into: str | None = None  # merge: the drafted name of the draft whose examples it joins


def drafts_folder(settings: Settings) -> Path:
    """BOT_BOOTSTRAP_DIR, refused when unset, or when it is, holds or sits in a folder the server routes
    with: a drafts.yaml saved inside the live folder's load path (its knowledge/, say) would break the next
    reload."""
    folder = settings.bootstrap_dir
    if folder is None:
        raise NotFoundError(
            "no drafts folder: set BOT_BOOTSTRAP_DIR to the folder `bot bootstrap --out` wrote, then restart"
        )
    mine = folder.resolve()
    for other in (settings.intents_dir, settings.shadow_intents_dir):
        if other is None:
            continue
        live = other.resolve()
        if mine.is_relative_to(live) or live.is_relative_to(mine):
            raise ConflictError(
                f"BOT_BOOTSTRAP_DIR {folder} is, holds or sits inside {other}, a folder this server routes "
                "with (BOT_INTENTS_DIR or BOT_SHADOW_INTENTS_DIR); drafts are reviewed in a folder of their "
                "own, so nothing goes live unread"
            )
    if folder.exists() and not folder.is_dir():
        raise ConflictError(
            f"BOT_BOOTSTRAP_DIR {folder} is a file; point it at the folder `bot bootstrap --out` wrote"
        )
    return folder


def _summary(folder: Path) -> tuple[dict[str, Any], str]:
    """drafts.json of `folder` and a version of it (the file's hash): decisions are refused against
    drafts that changed since the page read them."""
    path = folder / SUMMARY_FILE
    try:
        raw = path.read_bytes()
        summary = json.loads(raw.decode("utf-8"))
    except FileNotFoundError:
        raise NotFoundError(
            f"{path}: no drafts yet; run `bot bootstrap --from FILE --out {folder}` first"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConflictError(
            f"{path}: cannot be read ({exc}); run `bot bootstrap ... --force` again"
        ) from None
    if not isinstance(summary, dict) or not isinstance(summary.get("drafts"), list):
        raise ConflictError(f"{path}: not a drafts.json written by `bot bootstrap` (no 'drafts' list)")
    return summary, hashlib.sha256(raw).hexdigest()[:16]


def read_drafts(settings: Settings) -> dict[str, object]:
    """drafts.json of the drafts folder, with its version, where it is and whether a reviewed file was
    saved there."""
    folder = drafts_folder(settings)
    summary, version = _summary(folder)
    reviewed = folder / INTENTS_FILE
    # `bot bootstrap` writes drafts.yaml before drafts.json; one written after it is a saved review
    saved = reviewed.is_file() and reviewed.stat().st_mtime_ns > (folder / SUMMARY_FILE).stat().st_mtime_ns
    return {
        "folder": str(folder),
        "version": version,
        "summary": summary,
        "saved_to": str(reviewed),
        "saved_at": reviewed.stat().st_mtime if saved else None,
    }


def _as_draft(entry: dict[str, Any], name: str, examples: list[str]) -> Draft:
    return Draft(
        name=name,
        description=str(entry.get("description") or ""),
        examples=tuple(dict.fromkeys(examples))[:MAX_EXAMPLES_PER_INTENT],
        answer=entry.get("answer") or None,
        size=int(entry.get("size", 0)),
        share=float(entry.get("share", 0.0)),
        mean_similarity=float(entry.get("mean_similarity", 0.0)),
        tight_share=float(entry.get("tight_share", 0.0)),
        answered=int(entry.get("answered", 0)),
        members=(),
    )


def _checked(drafts: dict[str, dict[str, Any]], decisions: list[Decision]) -> dict[str, Decision]:
    """The decisions by drafted name, each refused with its reason when it names no draft, a draft twice,
    an invalid name or a merge into nothing."""
    if len(decisions) > MAX_DECISIONS:
        raise InvalidInputError("decisions", f"{len(decisions):,} decisions, at most {MAX_DECISIONS:,}")
    by_draft: dict[str, Decision] = {}
    for d in decisions:
        if d.draft not in drafts:
            raise InvalidInputError(
                "decisions", f"no draft is named '{d.draft}' in drafts.json; reload the page"
            )
        if d.draft in by_draft:
            raise InvalidInputError("decisions", f"'{d.draft}' is decided twice; send one decision a draft")
        name = d.name if d.name is not None else d.draft
        if d.decision == "accept" and (len(name) > MAX_NAME_CHARS or not re.fullmatch(NAME_PATTERN, name)):
            raise InvalidInputError(
                "decisions",
                f"'{name}' is not a valid name: lower-case letters, digits and _, at most "
                f"{MAX_NAME_CHARS} characters",
            )
        if d.decision == "merge" and (d.into is None or d.into not in drafts or d.into == d.draft):
            raise InvalidInputError(
                "decisions", f"'{d.draft}' is merged into '{d.into}', which is no other draft in drafts.json"
            )
        by_draft[d.draft] = d
    return by_draft


def _target(draft: str, by_draft: dict[str, Decision]) -> str:
    """The accepted draft at the end of `draft`'s merges (merges may chain)."""
    seen: set[str] = set()
    at = draft
    while (d := by_draft.get(at)) is not None and d.decision == "merge":
        if at in seen:
            raise InvalidInputError("decisions", f"'{draft}' is merged in a circle, into no accepted draft")
        seen.add(at)
        at = str(d.into)
    if d is None or d.decision != "accept":
        raise InvalidInputError("decisions", f"'{draft}' is merged into '{at}', which is not accepted")
    return at


def reviewed_text(summary: dict[str, Any], decisions: list[Decision]) -> tuple[str, int]:
    """The reviewed drafts.yaml made from drafts.json and the decisions, and how many intents it holds.
    Accepted drafts keep their examples plus those of the drafts merged into them (repeats once, at most
    MAX_EXAMPLES_PER_INTENT); dropped and undecided drafts are left out, and their messages count as
    traffic no kept draft covers (`off_topic_share`)."""
    drafts = {str(e["name"]): e for e in summary["drafts"] if isinstance(e, dict) and "name" in e}
    by_draft = _checked(drafts, decisions)
    joined: dict[str, list[str]] = {k: [] for k, d in by_draft.items() if d.decision == "accept"}
    for key, d in by_draft.items():
        if d.decision == "merge":
            joined[_target(key, by_draft)].append(key)
    if not joined:
        raise InvalidInputError("decisions", "no draft is accepted yet; accept at least one")
    names: dict[str, str] = {}
    entries = []
    for key, merged in joined.items():
        name = by_draft[key].name or key
        if name in names:
            raise InvalidInputError(
                "decisions", f"'{names[name]}' and '{key}' are both named '{name}'; rename or merge one"
            )
        names[name] = key
        examples = [str(t) for k in (key, *merged) for t in drafts[k].get("examples", [])]
        also = ", ".join(f"{k} ({int(drafts[k].get('size', 0)):,} messages)" for k in merged)
        entries.append(
            (f"  # merged into it: {also}\n" if merged else "")
            + intent_entry(_as_draft(drafts[key], name, examples))
        )
    messages = int(summary.get("messages") or 0)
    covered = sum(int(drafts[k].get("size", 0)) for key, merged in joined.items() for k in (key, *merged))
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    header = (
        f"# Intents reviewed on the drafts page, from `bot bootstrap`'s drafts of {summary.get('source')}"
        f" on {when}.\n# {len(joined)} intents; {len(drafts) - len(by_draft)} undecided drafts left out.\n"
    )
    share = uncovered_line(max(0, messages - covered), messages, "in no kept draft") if messages else ""
    return header + share + "intents:\n" + "\n".join(entries), len(joined)


def _loads(text: str) -> int:
    """How many intents `text` holds once it loads as an intents folder on its own; a 422 with its line
    otherwise (a last check: the writer quotes every string, so this should not fail)."""
    with tempfile.TemporaryDirectory(prefix="reviewed-") as scratch:
        trial = Path(scratch) / INTENTS_FILE
        trial.write_text(text, encoding="utf-8")
        try:
            intents = load_intents(scratch)
        except IntentFileError as exc:
            where = f"line {exc.line}: " if exc.line else ""
            problem = exc.message.replace(str(trial), INTENTS_FILE)  # not the scratch copy's path
            raise InvalidInputError(
                "decisions", f"the reviewed drafts.yaml does not load: {where}{problem}"
            ) from None
        return sum(1 for intent in intents.intents if intent.path == trial)  # not the built-in small talk


def make_reviewed(settings: Settings, version: str, decisions: list[Decision]) -> tuple[str, int]:
    """The reviewed drafts.yaml for `decisions` on the drafts of `version`, checked to load; nothing is
    written (the page shows it, and offers it as a download)."""
    summary, current = _summary(drafts_folder(settings))
    if version != current:
        raise ConflictError(
            "drafts.json changed since the page read it (a new `bot bootstrap` run?); reload the page and "
            "decide again"
        )
    text, _ = reviewed_text(summary, decisions)
    return text, _loads(text)


def save_reviewed(settings: Settings, version: str, decisions: list[Decision]) -> tuple[Path, int]:
    """Make the reviewed drafts.yaml and write it as DIR/drafts.yaml, replaced whole with the old file's
    mode (atomic_write); the path and how many intents it holds."""
    text, written = make_reviewed(settings, version, decisions)
    folder = drafts_folder(settings)
    target = folder / INTENTS_FILE
    try:
        atomic_write(target, text)
    except OSError as exc:  # a read-only mount, a folder removed since: the reviewer is told what to do
        raise ConflictError(
            f"{folder}: cannot write {INTENTS_FILE} ({exc.strerror or exc}); make the folder writable by "
            "the server, or use Download and save the file there yourself"
        ) from None
    return target, written
