"""The drafts of `bot bootstrap` as `bot serve` shows them at /review/bootstrap (`BOT_BOOTSTRAP_DIR`).

The page reads DIR/drafts.json (re-read on every request, so a new `bot bootstrap --force` run shows at
the next reload) and saves the reviewed intents as DIR/drafts.yaml, the file `bot check --intents DIR`
reads. Nothing goes live from here: the folder must not be the one the server routes with (nor its
shadow), the saved file is validated as an intents file first and replaced whole, and a person still
points BOT_INTENTS_DIR at the folder after `bot check`.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from ruamel.yaml.error import YAMLError

from bot.config import Settings
from bot.content.intents import load_intents
from bot.errors import ConflictError, IntentFileError, InvalidInputError, NotFoundError
from bot.insights.bootstrap_folder import INTENTS_FILE, SUMMARY_FILE

MAX_REVIEWED_CHARS = 2_000_000  # a reviewed file of 300 intents x 200 examples is well under this


def drafts_folder(settings: Settings) -> Path:
    """BOT_BOOTSTRAP_DIR, refused when unset or when it is a folder the server routes with."""
    folder = settings.bootstrap_dir
    if folder is None:
        raise NotFoundError(
            "no drafts folder: set BOT_BOOTSTRAP_DIR to the folder `bot bootstrap --out` wrote, then restart"
        )
    live = [settings.intents_dir, settings.shadow_intents_dir]
    if any(other is not None and other.resolve() == folder.resolve() for other in live):
        raise ConflictError(
            f"BOT_BOOTSTRAP_DIR {folder} is a folder this server routes with (BOT_INTENTS_DIR or "
            "BOT_SHADOW_INTENTS_DIR); drafts are reviewed in a folder of their own, so nothing goes live unread"
        )
    return folder


def read_drafts(settings: Settings) -> dict[str, object]:
    """drafts.json of the drafts folder, with where it is and whether a reviewed file was saved there."""
    folder = drafts_folder(settings)
    path = folder / SUMMARY_FILE
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
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
    reviewed = folder / INTENTS_FILE
    # `bot bootstrap` writes drafts.yaml before drafts.json; one written after it is a saved review
    saved = reviewed.is_file() and reviewed.stat().st_mtime_ns > path.stat().st_mtime_ns
    return {
        "folder": str(folder),
        "summary": summary,
        "saved_to": str(reviewed),
        "saved_at": reviewed.stat().st_mtime if saved else None,
    }


def save_reviewed(settings: Settings, text: str) -> tuple[Path, int]:
    """Write `text` (the page's reviewed drafts.yaml) as DIR/drafts.yaml once it loads as an intents
    folder on its own; the path and how many intents it holds. A file that does not load is refused with
    its line and nothing is written."""
    folder = drafts_folder(settings)
    if len(text) > MAX_REVIEWED_CHARS:
        raise InvalidInputError("yaml", f"{len(text):,} characters, at most {MAX_REVIEWED_CHARS:,}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate escaped in the JSON body
        raise InvalidInputError("yaml", f"not text: {exc.reason} at character {exc.start}") from None
    with tempfile.TemporaryDirectory(prefix="reviewed-") as scratch:
        trial = Path(scratch) / INTENTS_FILE
        trial.write_text(text, encoding="utf-8")
        try:
            intents = load_intents(scratch)
        except YAMLError as exc:  # what the YAML reader refuses before parsing (a NUL, a C0 control)
            problem = str(exc).replace(str(trial), INTENTS_FILE).splitlines()[0]
            raise InvalidInputError("yaml", f"the reviewed drafts.yaml does not load: {problem}") from None
        except IntentFileError as exc:
            where = f"line {exc.line}: " if exc.line else ""
            problem = exc.message.replace(str(trial), INTENTS_FILE)  # not the scratch copy's path
            raise InvalidInputError(
                "yaml", f"the reviewed drafts.yaml does not load: {where}{problem}"
            ) from None
        written = sum(1 for intent in intents.intents if intent.path == trial)  # not the built-in small talk
    target = folder / INTENTS_FILE
    # replaced whole (write beside it, then rename): `bot check` never reads half a file
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".drafts-", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target, written
