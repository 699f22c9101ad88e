"""`bot bootstrap --from FILE --out DIR`: draft an intents folder from past conversations (#32).

Reads the history (bot/insights/history.py), redacts every question and answer before anything else
sees it (bot/chat/redact.py, as a live chat turn is), clusters the questions (bot/insights/bootstrap.py)
and writes a draft folder to --out only (bot/insights/bootstrap_folder.py). Nothing is loaded or served:
a person reviews the drafts first (docs/bootstrap.md).
"""

from __future__ import annotations

import time
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bot.cli.app import command, err, out
from bot.config import get_settings
from bot.errors import BotError
from bot.insights.history import History

if TYPE_CHECKING:
    from bot.insights.bootstrap import Result

SHOWN_PROBLEMS = 20


class HistoryFormat(StrEnum):
    """--format's choices, `history.FORMATS` (Typer validates an Enum and lists it in --help)."""

    auto = "auto"
    csv = "csv"
    jsonl = "jsonl"
    chatwoot = "chatwoot"
    zendesk = "zendesk"


@command("bootstrap")
def bootstrap(
    source: Annotated[
        Path,
        typer.Option(
            "--from",
            help="Past conversations: CSV or JSON lines (columns: text/question/message, answer/reply, "
            "timestamp/created_at, tags/labels), or a Chatwoot or Zendesk JSON export.",
        ),
    ],
    out_dir: Annotated[Path, typer.Option("--out", help="A new, empty folder for the drafts.")],
    fmt: Annotated[
        HistoryFormat, typer.Option("--format", help="auto: from the file's name and first records.")
    ] = HistoryFormat.auto,
    force: Annotated[bool, typer.Option("--force", help="Write into a non-empty --out.")] = False,
    sample: Annotated[
        int, typer.Option("--sample", min=100, max=8000, help="Distinct questions clustered exactly.")
    ] = 5000,
    min_size: Annotated[
        int | None,
        typer.Option(
            "--min-size", min=2, help="Messages a draft needs (default: 3, or 1 in 1,000 messages)."
        ),
    ] = None,
    examples: Annotated[
        int | None, typer.Option("--examples", min=1, max=20, help="Examples per draft (default: 5).")
    ] = None,
    threads: Annotated[int, typer.Option("--threads", min=1, max=64, help="Encoder threads.")] = 2,
) -> None:
    """Draft an intents folder from past conversations: a draft intent per recurring question (name,
    description, examples, the most representative agent answer), knowledge entries from one-off questions
    with good answers, and drafts.json. Writes to --out only; nothing goes live without a person."""
    from bot.insights.bootstrap_folder import Source, prepare, write_folder
    from bot.insights.history import each_problem, read_history

    prepare(out_dir, force)  # before the long part: a wrong --out fails at once
    started = time.perf_counter()
    history = read_history(source, fmt.value)
    for line in each_problem(history, SHOWN_PROBLEMS):
        err.print(line, markup=False)
    questions, answers = _redacted(history)
    result = _cluster(
        questions, answers, sample=sample, min_size=min_size, examples=examples, threads=threads
    )
    if not result.drafts:
        raise BotError(
            f"{source}: no question recurs often enough to draft an intent ({result.messages:,} questions, "
            f"{len(result.distinct):,} distinct); lower --min-size or give a longer history"
        )
    files = write_folder(result, out_dir, Source(str(source), len(history.turns), history.skipped))
    _report(result, history.skipped, files, out_dir, time.perf_counter() - started)


def _report(result: Result, skipped: int, files: list[Path], out_dir: Path, seconds: float) -> None:
    """What was drafted and written, and what the person does next (stdout)."""
    from bot.insights.bootstrap_folder import uncovered_share

    covered = 1 - result.unassigned / result.messages
    out.print(
        f"{len(result.drafts)} draft intents covering {covered:.0%} of {result.messages:,} questions, "
        f"{len(result.knowledge)} knowledge entries, {skipped:,} records skipped, in {seconds:.0f} s",
        markup=False,
    )
    for path in files:
        out.print(f"  wrote {path}", markup=False)
    share = uncovered_share(result)
    out.print(
        f"nothing is live: open {out_dir / 'review.html'} to accept, rename, merge or drop each draft (or "
        f"/review/bootstrap of `bot serve --drafts {out_dir}`), save the reviewed drafts.yaml "
        f"into {out_dir}, then run: bot check --intents {out_dir}. The folder plans for {share:.0%} of messages "
        "no draft covers (off_topic_share: the history's share in no draft)",
        markup=False,
    )


def _redacted(history: History) -> tuple[list[str], list[str | None]]:
    """Every question and answer redacted (the project's rules, BOT_REDACT_REGION) before clustering."""
    from bot.chat.redact import redact

    region = get_settings().redact_region
    questions = [redact(t.text, region) for t in history.turns]
    answers = [redact(t.answer, region) if t.answer else None for t in history.turns]
    return questions, answers


def _cluster(
    questions: list[str],
    answers: list[str | None],
    *,
    sample: int,
    min_size: int | None,
    examples: int | None,
    threads: int,
) -> Result:
    """Encode with the configured model (a Rich progress bar on stderr) and draft."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from bot.insights.bootstrap import EXAMPLES, cluster_history, question_key
    from bot.routing.encoders import make_encoder
    from bot.routing.index import limit_native_threads

    settings = get_settings()
    encoder = make_encoder(
        settings.model, backend=settings.encoder_backend, threads=threads, cache_dir=settings.cache_dir
    )
    distinct = len({key for q in questions if (key := question_key(q))})
    columns = (TextColumn("encoding questions"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    limit_native_threads(threads)  # numpy's and FAISS's pools: this command's cores, no more
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task("encode", total=distinct)
        return cluster_history(
            questions,
            answers,
            lambda texts: encoder.encode(texts),
            progress=lambda n: bar.advance(task, n),
            sample=sample,
            min_size=min_size,
            examples=examples if examples is not None else EXAMPLES,
        )
