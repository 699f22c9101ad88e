"""Every error of an intents folder's files in one read, for `bot check` (issue #27 item 11).

`load_intents` stops at the first problem, which is right for a server (one clear line, nothing loads),
but a bot builder fixing a folder then meets its mistakes one run at a time. Here each file is read on
its own and each intent checked on its own: a file that cannot be read at all (YAML syntax, top-level
keys) counts once, otherwise every intent's first schema error and every mistake in every answer
template is listed (`path:line: answer of 'x': unknown filter 'shout' ...`), then names defined twice.
The messages are `load_intents`'; folder-wide limits stay its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from bot.content.answers import TemplateProblems, compile_template
from bot.content.intents import IntentSpec, _describe, _line_of, _load_file, first_error, intent_files
from bot.content.yaml_io import read_yaml
from bot.errors import IntentFileError, TemplateError


def folder_errors(folder: Path) -> list[IntentFileError]:
    """Every error the folder's intent files have, file by file in `load_intents`' order, then duplicate
    names; empty when each file and intent is valid on its own."""
    errors: list[IntentFileError] = []
    seen: dict[str, tuple[Path, int]] = {}
    for path in intent_files(folder) if folder.is_dir() else []:
        found, names = file_errors(path)
        for name, line in names:
            if name in seen:
                where = f"{seen[name][0]}:{seen[name][1]}"
                found.append(
                    IntentFileError(path, line, f"duplicate intent name '{name}'; first defined at {where}")
                )
            else:
                seen[name] = (path, line)
        errors.extend(sorted(found, key=lambda e: e.line or 0))  # top to bottom, as an editor shows them
    return errors


def file_errors(path: Path) -> tuple[list[IntentFileError], list[tuple[str, int]]]:
    """One file's errors, and the name and line of each intent in it that is valid."""
    whole: IntentFileError | None = None
    try:
        _load_file(path)  # the file's own checks (its shape, its top-level keys) and its first error
    except IntentFileError as exc:
        whole = exc
    try:
        data = read_yaml(path)
    except IntentFileError as exc:  # not YAML at all: nothing more to say about it
        return [exc], []
    raw_intents = data.get("intents") if isinstance(data, CommentedMap) else None
    errors: list[IntentFileError] = []
    names: list[tuple[str, int]] = []
    if isinstance(raw_intents, CommentedSeq):
        for position, raw in enumerate(raw_intents):
            line = raw_intents.lc.item(position)[0] + 1
            name = _intent_errors(path, raw, line, errors)
            if name is not None:
                names.append((name, line))
    if whole is not None and not any((e.path, e.line) == (whole.path, whole.line) for e in errors):
        errors.insert(0, whole)  # a whole-file problem, or one only load_intents sees
    return errors, names


def _intent_errors(path: Path, raw: Any, line: int, errors: list[IntentFileError]) -> str | None:
    """Add one intent's errors to `errors`: its first schema error, or each mistake of its answer
    template. Its name when its schema is valid (a template error does not hide a duplicate name)."""
    try:
        spec = IntentSpec.model_validate(dict(raw) if isinstance(raw, CommentedMap) else raw)
    except ValidationError as exc:
        first = first_error(exc)
        errors.append(IntentFileError(path, _line_of(raw, first["loc"], line), _describe(first)))
        return None
    if spec.answer:
        try:
            compile_template(spec.answer)
        except TemplateError as exc:
            answer_line = _line_of(raw, ("answer",), line)
            problems = exc.problems if isinstance(exc, TemplateProblems) else (exc,)
            errors.extend(
                IntentFileError(path, answer_line, f"answer of '{spec.name}': {problem.message}")
                for problem in problems
            )
    return spec.name
