"""`bot review export`: write learned examples into the intent files that define them, keeping the files' look.

Each file is edited with ruamel.yaml's round-trip mode, and only after checking that a plain round trip
reproduces the file byte for byte: so comments, key order, quoting and folding of everything else stay as
the bot builder wrote them, and a file ruamel would reformat is reported instead of rewritten.
"""

from __future__ import annotations

import copy
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import DoubleQuotedScalarString
from sqlalchemy import Engine as Database

from bot.content.intents import load_intents
from bot.content.small_talk import is_built_in
from bot.content.yaml_io import atomic_write
from bot.errors import IntentFileError
from bot.store.db import session_scope
from bot.store.examples import mark_exported, unexported_examples
from bot.store.models import LearnedExample


@dataclass
class ExportResult:
    """What an export did: examples written per file, texts already there, intents that no longer exist."""

    written: dict[Path, list[tuple[str, str]]] = field(default_factory=dict)  # file -> (intent, text)
    already_present: int = 0
    unknown_intents: dict[str, int] = field(default_factory=dict)  # intent -> examples left unexported
    # built-in small talk has no YAML file to write to: kept in the database until the folder defines it
    built_in: dict[str, int] = field(default_factory=dict)

    @property
    def count(self) -> int:
        """Examples added to YAML files."""
        return sum(len(items) for items in self.written.values())


def _yaml_for(text: str) -> YAML:
    """A round-trip YAML whose list indentation matches the file (`- ` at the offset the file uses)."""
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap long lines
    match = re.search(r"^( *)- ", text, flags=re.MULTILINE)
    offset = len(match.group(1)) if match else 2
    yaml.indent(mapping=2, sequence=offset + 2, offset=offset)
    return yaml


def _dump(yaml: YAML, data: Any) -> str:
    buffer = io.StringIO()
    yaml.dump(data, buffer)
    return buffer.getvalue()


def _move_trailing_comment(seq: CommentedSeq, old: int, new: int) -> None:
    """Keep blank lines and comments that follow the old last item after the new last item.

    ruamel stores them in one token with the old item's end-of-line comment (`# eol\\n\\n# next\\n`): the
    end-of-line part stays on its item, the rest moves, so appended items do not land below a blank line.
    """
    entry = seq.ca.items.get(old) if old >= 0 else None
    token = entry[0] if entry else None
    if token is None or "\n" not in token.value:
        return
    cut = token.value.index("\n") + 1
    head, rest = token.value[:cut], token.value[cut:]
    if not rest:
        return
    moved = copy.copy(token)
    moved.value = "\n" + rest
    if head == "\n":
        seq.ca.items.pop(old)
    else:
        token.value = head
    seq.ca.items[new] = [moved, None, None, None]


def _append_examples(intent: CommentedMap, texts: Sequence[str]) -> None:
    """Append `texts` to the intent's `examples`, creating the list after `description` if it is missing."""
    new = [DoubleQuotedScalarString(t) for t in texts]
    examples = intent.get("examples")
    if isinstance(examples, CommentedSeq):
        _move_trailing_comment(examples, len(examples) - 1, len(examples) + len(new) - 1)
        examples.extend(new)
        return
    keys = list(intent.keys())
    position = keys.index("description") + 1 if "description" in keys else len(keys)
    intent.insert(position, "examples", CommentedSeq(new))


def add_examples_to_file(path: Path, additions: dict[str, list[str]]) -> list[tuple[str, str]]:
    """Append examples to intents of one file; returns the (intent, text) pairs really added."""
    original = path.read_text(encoding="utf-8")
    yaml = _yaml_for(original)
    data = yaml.load(original)
    if _dump(yaml, data) != original:
        raise IntentFileError(
            path,
            None,
            "ruamel.yaml cannot rewrite this file without changing its formatting; "
            "add the examples by hand or normalise the file (load and dump it once)",
        )
    added: list[tuple[str, str]] = []
    for raw in data.get("intents") or []:
        if not isinstance(raw, CommentedMap) or raw.get("name") not in additions:
            continue
        present = {str(e).strip() for e in raw.get("examples") or []}
        texts = list(dict.fromkeys(t for t in additions[raw["name"]] if t.strip() not in present))
        if texts:
            _append_examples(raw, texts)
            added.extend((raw["name"], t) for t in texts)
    if added:
        atomic_write(path, _dump(yaml, data))
    return added


def export_learned(database: Database, intents_dir: Path) -> ExportResult:
    """Write not-yet-exported learned examples into their intents' files and mark them exported.

    Running it again changes nothing: exported rows are skipped, and texts already in the YAML are only
    marked. Rows whose intent no longer exists stay unexported and are reported.
    """
    intents = load_intents(intents_dir)  # also proves the folder is valid before anything is written
    result = ExportResult()
    rows = unexported_examples(database)
    by_file: dict[Path, dict[str, list[str]]] = {}
    rows_by_key: dict[tuple[str, str], list[LearnedExample]] = {}
    done: list[LearnedExample] = []
    for row in rows:
        intent = intents.get(row.intent)
        if intent is None:
            result.unknown_intents[row.intent] = result.unknown_intents.get(row.intent, 0) + 1
            continue
        if is_built_in(intent):
            result.built_in[row.intent] = result.built_in.get(row.intent, 0) + 1
            continue
        if row.text.strip() in {e.strip() for e in intent.spec.examples}:
            result.already_present += 1
            done.append(row)
            continue
        by_file.setdefault(intent.path, {}).setdefault(row.intent, []).append(row.text)
        rows_by_key.setdefault((row.intent, row.text), []).append(row)
    for path, additions in sorted(by_file.items()):
        added = add_examples_to_file(path, additions)
        if added:
            result.written[path] = added
        for key in (key for intent, texts in additions.items() for key in ((intent, t) for t in texts)):
            done.extend(rows_by_key.pop(key, []))  # added now, or a duplicate text the file already had
    with session_scope(database) as session:
        mark_exported(session, [row.id for row in done if row.id is not None])
    load_intents(intents_dir)  # the edited folder must still load; a failure here is a bug worth seeing
    return result
