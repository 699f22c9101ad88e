"""Reading the YAML files bot builders write: bounded in size and alias expansion, errors in plain words.

Every YAML file of a folder (intents, knowledge, `tone.yaml`, `calibration.yaml`) is read here, with
ruamel.yaml's round-trip loader so that errors can name the line of the offending key. Three limits keep
a hostile or broken file from costing more than a file should:

- **size**: a file larger than `BOT_MAX_YAML_BYTES` (1 MB by default) is refused before it is parsed;
- **aliases**: `&anchor`/`*alias` are allowed (they are handy for shared lists), but a file whose aliases
  expand to more than `ALIAS_BUDGET` nodes is refused while it is composed, before anything walks the
  expanded data (a "billion laughs" file of 600 bytes otherwise expands to gigabytes when validated or
  printed); an alias to the block that contains it is refused too;
- **echo**: errors quote the bad input through `excerpt`, never whole.

Syntax errors are reported as `path:line` with what is wrong in plain words ("bad indentation: ...",
"a tab character ...") instead of the parser's own text ("expected <block end>, but found '?'").
"""

from __future__ import annotations

import os
import reprlib
import stat
import tempfile
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.composer import Composer
from ruamel.yaml.error import MarkedYAMLError, StreamMark, YAMLError
from ruamel.yaml.events import AliasEvent
from ruamel.yaml.nodes import MappingNode, Node, SequenceNode
from ruamel.yaml.reader import ReaderError

from bot.config import get_settings
from bot.errors import IntentFileError

ALIAS_BUDGET = 10_000  # nodes all aliases of one file may add when expanded; real files use a few dozen
MAX_DEPTH = 50  # nesting levels; intent files use 4
EXCERPT_CHARS = 80

_REPR = reprlib.Repr()
_REPR.maxlevel = 2
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = 4
_REPR.maxstring = _REPR.maxother = EXCERPT_CHARS


def excerpt(value: Any) -> str:
    """A short `repr` of a value taken from a file or a request, safe to put in an error message.

    reprlib stops after a few items and levels, so even data expanded from aliases is never walked whole.
    """
    text = _REPR.repr(value)
    return text if len(text) <= EXCERPT_CHARS + 10 else text[: EXCERPT_CHARS - 3] + "..."


class YamlLimitError(MarkedYAMLError):
    """A file that is well-formed YAML but would cost too much to expand."""


def _expanded_size(node: Node, sizes: dict[int, int]) -> int:
    """How many nodes `node` stands for once its aliases are expanded (memoised per composed node)."""
    known = sizes.get(id(node))
    if known is not None:
        return known
    total = 1
    if isinstance(node, SequenceNode):
        total += sum(_expanded_size(child, sizes) for child in node.value)
    elif isinstance(node, MappingNode):
        total += sum(_expanded_size(k, sizes) + _expanded_size(v, sizes) for k, v in node.value)
    sizes[id(node)] = total
    return total


class _BudgetComposer(Composer):
    """ruamel.yaml's composer, counting what each alias adds when expanded and refusing past the budget."""

    def __init__(self, loader: Any = None) -> None:
        super().__init__(loader)
        self.expanded = 0
        self.sizes: dict[int, int] = {}

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.parser.check_event(AliasEvent):
            event = self.parser.peek_event()
            target = self.anchors.get(event.anchor)
            if target is not None:  # an undefined alias is the parent's error, reported as such
                if target.end_mark is None:  # still being composed: the alias is inside its own anchor
                    raise YamlLimitError(
                        None,
                        None,
                        f"alias *{event.anchor} refers to the block that contains it",
                        event.start_mark,
                    )
                self.expanded += _expanded_size(target, self.sizes)
                if self.expanded > ALIAS_BUDGET:
                    raise YamlLimitError(
                        None,
                        None,
                        f"aliases expand to more than {ALIAS_BUDGET:,} values (the file repeats "
                        f"*{event.anchor} and the anchors it contains too often); write the values out "
                        "or use fewer aliases",
                        event.start_mark,
                    )
        return super().compose_node(parent, index)


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    yaml.Composer = _BudgetComposer
    yaml.max_depth = MAX_DEPTH
    return yaml


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _key_column(line: str) -> int:
    """The column where a line's key or value starts, after its indentation and any '- ' markers."""
    column = _indent(line)
    while line[column : column + 2] == "- ":
        column += 2
        column += _indent(line[column:])
    return column


def _previous_content_line(lines: list[str], index: int) -> int | None:
    """The index of the closest line above `index` that is neither blank nor a comment."""
    for i in range(min(index, len(lines)) - 1, -1, -1):
        stripped = lines[i].strip()
        if stripped and not stripped.startswith("#"):
            return i
    return None


def describe_yaml_error(exc: MarkedYAMLError, text: str) -> tuple[int | None, str]:
    """The line and a plain-words description of a YAML error, for `path:line: message`."""
    if isinstance(exc, YamlLimitError):
        mark = exc.problem_mark
        return (mark.line + 1 if mark else None), str(exc.problem)
    line, description = _describe_syntax(exc, text)
    return line, f"YAML syntax error: {description}"


def _describe_syntax(exc: MarkedYAMLError, text: str) -> tuple[int | None, str]:
    """What a syntax error means, in words a bot builder acts on, rather than the parser's own terms."""
    mark: StreamMark | None = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark is not None else None
    problem = str(exc.problem or exc.context or "invalid YAML")
    lines = text.splitlines()
    here = lines[mark.line] if mark is not None and mark.line < len(lines) else ""
    above_index = _previous_content_line(lines, mark.line) if mark is not None else None
    above = lines[above_index] if above_index is not None else ""
    if "'\\t'" in problem or "\t" in here[: _indent(here) + 1]:
        return line, "a tab character is used for indentation; YAML indents with spaces only"
    if problem.startswith("expected <block end>") and mark is not None and above_index is not None:
        # a line that lines up with no open block: the parser's "expected <block end>, but found ..."
        if here.lstrip().startswith("- ") and above.lstrip().startswith("- "):
            return line, (
                f"bad indentation: this list item starts at column {_indent(here) + 1}, but the item above "
                f"(line {above_index + 1}) at column {_indent(above) + 1}; items of one list must line up"
            )
        return line, (
            f"bad indentation: this line starts at column {_indent(here) + 1}, but the line above (line "
            f"{above_index + 1}) starts its key at column {_key_column(above) + 1}; the keys of one block "
            "must start at the same column (start a new list item with '- ')"
        )
    if problem == "mapping values are not allowed here":
        if above and _indent(here) > _key_column(above) and ":" in here:
            return line, (
                f"bad indentation: this line starts at column {_indent(here) + 1}, deeper than the key "
                f"above it (line {above_index + 1 if above_index is not None else '?'}, column "
                f"{_key_column(above) + 1}), so YAML reads it as more of that value; line it up with the "
                "keys above it"
            )
        return line, "a value contains ': ' (colon and space); put that value in quotes"
    if problem.startswith("could not find expected ':'"):
        return line, "a line is neither 'key: value' nor a '- ' list item (a missing ':'?)"
    if "found duplicate key" in problem or "found duplicate key" in str(exc.context or ""):
        key = problem.split('"')[1] if problem.count('"') >= 2 else "?"
        return line, f"duplicate key '{key}' in the same block"
    if problem.startswith("found undefined alias"):
        return line, f"{problem.replace('found ', '')}: define the &anchor before using it"
    if problem.startswith("maximum depth"):
        return line, f"the data is nested more than {MAX_DEPTH} levels deep"
    if "unexpected end of stream" in problem:
        return (
            line,
            "the file ends inside a quoted string or a [ ] / { } block: a closing quote or bracket is missing",
        )
    if problem.startswith("expected ',' or ']'") or problem.startswith("expected ',' or '}'"):
        return line, "a [ ] list or { } mapping is not closed, or its items are not separated by commas"
    return line, problem[:200]


def max_yaml_bytes() -> int:
    """The largest YAML file read (`BOT_MAX_YAML_BYTES`)."""
    return get_settings().max_yaml_bytes


def read_yaml(
    path: Path, error_type: type[IntentFileError] = IntentFileError, max_bytes: int | None = None
) -> Any:
    """Parse one YAML file keeping line numbers; any problem is an `error_type` located as `path:line`."""
    limit = max_bytes if max_bytes is not None else max_yaml_bytes()
    raw = b""
    try:
        with path.open("rb") as handle:
            raw = handle.read(limit + 1)
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        if isinstance(exc, UnicodeDecodeError) and len(raw) > limit:
            text = ""  # cut inside a character: the size error below is the one that matters
        else:
            raise error_type(path, None, f"cannot read file: {exc}") from None
    if len(raw) > limit:
        raise error_type(
            path,
            None,
            f"file is larger than {limit:,} bytes (BOT_MAX_YAML_BYTES); split it into several files",
        )
    try:
        return _yaml().load(text)
    except MarkedYAMLError as exc:
        line, message = describe_yaml_error(exc, text)
        raise error_type(path, line, message) from None
    except YAMLError as exc:  # refused before parsing (a NUL or C0 control character): no mark to read
        line, message = _describe_unmarked(exc, text)
        raise error_type(path, line, message) from None


def _describe_unmarked(exc: YAMLError, text: str) -> tuple[int, str]:
    """The line and words for a YAML error without a mark: the reader's refusal of a character YAML does
    not allow, located by its position in the text; line 1 when there is no position."""
    if isinstance(exc, ReaderError) and isinstance(exc.position, int) and isinstance(exc.character, int):
        line = text.count("\n", 0, exc.position) + 1
        return line, (
            f"the control character #x{exc.character:04x} is not allowed in a YAML file; remove it "
            "(it is invisible in most editors)"
        )
    return 1, f"YAML error: {str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__}"


def atomic_write(path: Path, text: str) -> None:
    """Replace `path` with `text` atomically: a reader (a server reloading the folder) sees the old file or
    the new one, never half of it."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        # mkstemp makes the file 0600: keep the replaced file's mode, or a server running as another user
        # could no longer read the intent file an operator's command rewrote
        os.chmod(temporary, stat.S_IMODE(path.stat().st_mode) if path.exists() else 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
