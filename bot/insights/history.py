"""Reading past conversations for `bot bootstrap`: one `Turn` per customer question, its agent's answer if any.

Input is untrusted (an export from another system), so every reader is bounded: the file's size
(`MAX_BYTES`), the number of records (`MAX_RECORDS`) and a question's or answer's length (`MAX_CHARS`).
A record that cannot be used is skipped with a `Problem` naming the file, the row or line and the field;
the others are kept. Only when nothing at all is usable does reading fail (`HistoryError`).

Formats: CSV and JSON lines here, with the column names in `COLUMNS`; Chatwoot's and Zendesk's exports in
`bot.insights.history_exports` (docs/bootstrap.md says which of their fields are read and where they are
documented).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from bot.errors import BotError

MAX_BYTES = 512 * 1024 * 1024  # half a gigabyte of export: far above 100,000 chats, far below the RAM
MAX_RECORDS = 1_000_000
MAX_CHARS = 2000  # a longer "question" is an e-mail thread or a paste, not something to route
FORMATS = ("auto", "csv", "jsonl", "chatwoot", "zendesk")
Format = Literal["auto", "csv", "jsonl", "chatwoot", "zendesk"]

# accepted column (CSV) or key (JSON lines) names, first match wins; compared case-insensitively
COLUMNS: dict[str, tuple[str, ...]] = {
    "text": ("text", "question", "customer_text", "customer_message", "message", "utterance", "body"),
    "answer": ("answer", "agent_answer", "agent_reply", "reply", "response"),
    "timestamp": ("timestamp", "created_at", "time", "date"),
    "tags": ("tags", "labels", "tag", "label"),
}


class HistoryError(BotError):
    """The history file cannot be used at all (unreadable, too large, no usable record)."""


@dataclass(frozen=True)
class Turn:
    """One customer question from the history, with the agent's answer to it when the export has one."""

    text: str
    answer: str | None = None
    timestamp: datetime | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Problem:
    """A record that was skipped, or a field of a kept record that was ignored (`kept`): where and why."""

    path: Path
    where: str  # "row 12", "line 3", "conversation 7, message 2"
    field: str
    reason: str
    kept: bool = False  # an optional field (timestamp, tags) was unusable; the question itself was kept

    def __str__(self) -> str:
        return f"{self.path}: {self.where}: '{self.field}': {self.reason}"


@dataclass
class History:
    """What a file yielded: the usable turns and the skipped records."""

    turns: list[Turn] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    records: int = 0  # records read by the flat readers, usable or not (the MAX_RECORDS bound)

    @property
    def skipped(self) -> int:
        """Records lost: problems that cost their record, not only an optional field."""
        return sum(not p.kept for p in self.problems)


class Skip(Exception):
    """Raised by a record parser: this record is unusable because of `field_name`."""

    def __init__(self, field_name: str, reason: str) -> None:
        self.field_name = field_name
        self.reason = reason
        super().__init__(reason)


def clean_text(value: Any, field_name: str, *, required: bool) -> str | None:
    """A question or answer as a stripped string; None when absent and optional; `Skip` when unusable."""
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise Skip(field_name, "missing or empty")
        return None
    if not isinstance(value, str):
        raise Skip(field_name, f"must be text, got {type(value).__name__}")
    # no control characters (DEL, C1, ...): YAML refuses them, so a drafted folder holding one would not load
    text = "".join(ch for ch in " ".join(value.split()) if ch.isprintable())
    if not text:
        if required:
            raise Skip(field_name, "only control characters")
        return None
    if len(text) > MAX_CHARS:
        raise Skip(field_name, f"{len(text)} characters, at most {MAX_CHARS} are read")
    return text


def parse_timestamp(value: Any, field_name: str = "timestamp") -> datetime | None:
    """ISO 8601 (a trailing Z allowed) or Unix seconds; None when absent; `Skip` when malformed."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise Skip(field_name, "must be ISO 8601 or Unix seconds, got a boolean")
    if isinstance(value, int | float) or (isinstance(value, str) and value.strip().isdigit()):
        try:
            return datetime.fromtimestamp(float(value), tz=UTC)
        except (OverflowError, OSError, ValueError):
            raise Skip(field_name, f"{value!r} is not a Unix time in seconds") from None
    if isinstance(value, str):
        try:
            found = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise Skip(
                field_name, f"{value!r} is not ISO 8601 (2024-05-01T09:30:00Z) or Unix seconds"
            ) from None
        return found if found.tzinfo else found.replace(tzinfo=UTC)
    raise Skip(field_name, f"must be ISO 8601 or Unix seconds, got {type(value).__name__}")


def parse_tags(value: Any, field_name: str = "tags") -> tuple[str, ...]:
    """A list of strings, or one string split at commas, semicolons or bars."""
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        parts = value.replace(";", ",").replace("|", ",").split(",")
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        parts = value
    else:
        raise Skip(field_name, "must be a list of strings or one string split by commas")
    return tuple(p.strip() for p in parts if p.strip())


def _pick(record: Mapping[str, Any], names: Mapping[str, str], key: str) -> Any:
    column = names.get(key)
    return record.get(column) if column is not None else None


def _columns(found: list[str]) -> dict[str, str]:
    """Which of `found` (a header or a record's keys) holds each of `COLUMNS`."""
    lower = {name.strip().lower(): name for name in found}
    names: dict[str, str] = {}
    for key, aliases in COLUMNS.items():
        match = next((lower[a] for a in aliases if a in lower), None)
        if match is not None:
            names[key] = match
    return names


def turn_of(record: Mapping[str, Any], names: Mapping[str, str]) -> tuple[Turn, list[Skip]]:
    """A `Turn` from one flat record (a CSV row or a JSON line), and the optional fields it was read
    without: a malformed timestamp or tags cost only that field (a US-style date column would otherwise
    drop every question), not the question."""
    if "text" not in names:
        raise Skip("text", f"no question column; accepted names: {', '.join(COLUMNS['text'])}")
    text = clean_text(_pick(record, names, "text"), names["text"], required=True)
    assert text is not None
    ignored: list[Skip] = []
    timestamp: datetime | None = None
    tags: tuple[str, ...] = ()
    try:
        timestamp = parse_timestamp(_pick(record, names, "timestamp"), names.get("timestamp", "timestamp"))
    except Skip as skip:
        ignored.append(skip)
    try:
        tags = parse_tags(_pick(record, names, "tags"), names.get("tags", "tags"))
    except Skip as skip:
        ignored.append(skip)
    answer = clean_text(_pick(record, names, "answer"), names.get("answer", "answer"), required=False)
    return Turn(text=text, answer=answer, timestamp=timestamp, tags=tags), ignored


def _csv_rows(reader: csv.DictReader[str]) -> Iterator[dict[str, Any] | Problem]:
    """The reader's rows; a row the csv module cannot parse (a field over its limit, a NUL byte) is
    yielded as a `Problem` with a placeholder path, and reading goes on with the next row."""
    rows = iter(reader)
    while True:
        try:
            yield next(rows)
        except StopIteration:
            return
        except csv.Error as exc:
            where = f"row {reader.reader.line_num}"  # DictReader.line_num is set only after a good row
            yield Problem(Path(), where, "row", f"cannot be read as CSV: {exc}")


def read_csv(path: Path, content: str, history: History) -> None:
    """Rows of a CSV file with a header (tab-separated for .tsv); row numbers count the header as row 1, as
    a spreadsheet shows."""
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    reader = csv.DictReader(io.StringIO(content, newline=""), delimiter=delimiter)
    try:
        header = list(reader.fieldnames or [])
    except csv.Error as exc:
        raise HistoryError(f"{path}: row 1: the header cannot be read as CSV: {exc}") from None
    names = _columns(header)
    if "text" not in names:
        raise HistoryError(
            f"{path}: row 1: no question column in the header {reader.fieldnames}; "
            f"accepted names: {', '.join(COLUMNS['text'])}"
        )
    for row in _csv_rows(reader):
        if isinstance(row, Problem):
            history.records += 1
            history.problems.append(Problem(path, row.where, row.field, row.reason))
            continue
        where = f"row {reader.line_num}"
        if None in row:  # more cells than the header names
            history.records += 1
            history.problems.append(Problem(path, where, "row", "more cells than the header has columns"))
            continue
        _keep(history, path, where, row, names)


def json_problem(exc: ValueError | RecursionError) -> str:
    """Why a line or document is not usable JSON, in words a person exporting the file can act on."""
    if isinstance(exc, json.JSONDecodeError):
        return f"not JSON: {exc.msg} at column {exc.colno}"
    if isinstance(exc, RecursionError):
        return "not readable JSON: nested too deeply"
    return "not readable JSON: a number with more than 4300 digits"  # Python's int conversion limit


def read_jsonl(path: Path, content: str, history: History) -> None:
    """One JSON object per line, keys as `COLUMNS` names them (each line may use its own aliases)."""
    for number, line in enumerate(content.splitlines(), 1):
        if not line.strip():
            continue
        where = f"line {number}"
        try:
            record = json.loads(line)
        except (ValueError, RecursionError) as exc:
            history.records += 1
            history.problems.append(Problem(path, where, "line", json_problem(exc)))
            continue
        if not isinstance(record, dict):
            history.records += 1
            history.problems.append(Problem(path, where, "line", "must be a JSON object"))
            continue
        _keep(history, path, where, record, _columns(list(record)))


def _keep(
    history: History, path: Path, where: str, record: Mapping[str, Any], names: Mapping[str, str]
) -> None:
    """Append the record's turn, or the reason it is unusable to the problems; stop past MAX_RECORDS."""
    history.records += 1
    if history.records > MAX_RECORDS:
        raise HistoryError(f"{path}: {where}: more than {MAX_RECORDS:,} records; split the file")
    try:
        turn, ignored = turn_of(record, names)
        history.turns.append(turn)
        history.problems.extend(Problem(path, where, s.field_name, s.reason, kept=True) for s in ignored)
    except Skip as skip:
        history.problems.append(Problem(path, where, skip.field_name, skip.reason))
    except (ValueError, RecursionError, TypeError) as exc:  # untrusted input: a record costs only itself
        history.problems.append(Problem(path, where, "record", f"cannot be read: {exc}"))


def detect(path: Path, content: str) -> Format:
    """The format of a file from its name and its first records: .csv, a Chatwoot export (messages with
    `message_type`), a Zendesk one (`tickets`, or tickets with `requester_id`), else JSON lines."""
    if path.suffix.lower() in {".csv", ".tsv"}:
        return "csv"
    head = content.lstrip()[:8192]
    if '"message_type"' in head:
        return "chatwoot"
    if '"tickets"' in head or '"requester_id"' in head:
        return "zendesk"
    if head.startswith("[") and path.suffix.lower() == ".json":
        raise HistoryError(
            f"{path}: a JSON array that is neither a Chatwoot export (messages with 'message_type') nor a "
            "Zendesk one (tickets with 'requester_id'); pass --format, or write one JSON object per line"
        )
    return "jsonl" if head.startswith("{") else "csv"


def read_text(path: Path) -> str:
    """The file's text, refusing one larger than MAX_BYTES before reading it."""
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise HistoryError(f"{path}: {size:,} bytes, at most {MAX_BYTES:,} are read; split the file")
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise HistoryError(f"{path}: not UTF-8 text (byte {exc.start}); re-export it as UTF-8") from None
    except OSError as exc:
        raise HistoryError(f"{path}: cannot read: {exc.strerror or exc}") from None


def read_history(path: Path, fmt: Format = "auto") -> History:
    """Every usable turn of `path` and every skipped record; `HistoryError` when none is usable."""
    from bot.insights import history_exports

    content = read_text(path)
    chosen = detect(path, content) if fmt == "auto" else fmt
    history = History()
    readers = {
        "csv": read_csv,
        "jsonl": read_jsonl,
        "chatwoot": history_exports.read_chatwoot,
        "zendesk": history_exports.read_zendesk,
    }
    readers[chosen](path, content, history)
    if not history.turns:
        reasons = "; ".join(str(p) for p in history.problems[:3]) or "the file holds no record"
        raise HistoryError(f"{path}: no usable customer question ({chosen} format): {reasons}")
    return history


def each_problem(history: History, limit: int) -> Iterator[str]:
    """The first `limit` problems as lines ("skipped: ..." or "field ignored: ..." for a kept record's
    unusable optional field), then how many more there were."""
    for problem in history.problems[:limit]:
        yield f"{'field ignored' if problem.kept else 'skipped'}: {problem}"
    if len(history.problems) > limit:
        yield f"... and {len(history.problems) - limit:,} more problems"
