"""Writing `bot bootstrap`'s result as a draft intents folder a person reviews before anything goes live.

    DIR/drafts.yaml              one intent per draft; its size and purity estimate in a comment above it
    DIR/knowledge/drafted.yaml   one-off questions with a good agent answer (the `entries:` format)
    DIR/drafts.json              the same drafts with their figures, for scripts
    DIR/review.html              the review page: accept, rename, merge or drop each draft (bootstrap_review.py)

Strings are written as JSON strings, which YAML reads as double-quoted scalars, with any character YAML
refuses (DEL, C1 controls) escaped, so no customer text can break the file. An agent's answer holding template syntax (`{{`, `{%`, `{#`) is wrapped in `{% raw %}`, so
it is shown as written rather than run as a template.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bot.content.off_topic import OFF_TOPIC_KEY
from bot.errors import BotError
from bot.insights.bootstrap import TIGHT, Draft, Result
from bot.insights.bootstrap_review import PAGE_FILE, render

INTENTS_FILE = "drafts.yaml"
KNOWLEDGE_FILE = Path("knowledge") / "drafted.yaml"
SUMMARY_FILE = "drafts.json"
TAG = "drafted"
MAX_SHARE = 0.5  # a history mostly in no draft says little about traffic; and the key must stay under 1


@dataclass(frozen=True)
class Source:
    """Where the drafts came from, said in the files' headers and in drafts.json."""

    path: str
    read: int  # usable customer questions read
    skipped: int  # records skipped with a reason


def _quote(text: str) -> str:
    """`text` as a JSON string, which YAML reads as a double-quoted scalar; a character YAML refuses
    unescaped (DEL, C1 controls) is written as an escape, should one get past the readers' `clean_text`."""
    quoted = json.dumps(text, ensure_ascii=False)
    return "".join(ch if ch.isprintable() else _escape(ch) for ch in quoted)


def _escape(ch: str) -> str:
    return f"\\u{ord(ch):04x}" if ord(ch) <= 0xFFFF else f"\\U{ord(ch):08x}"


# where Jinja would end a raw block: `{%` then an optional whitespace-control sign, spaces and `endraw`
_ENDS_RAW = re.compile(r"\{%(?=[-+]?\s*endraw)")


def as_template(answer: str) -> str:
    """An agent's answer as an answer template that renders exactly that text: inside `{% raw %}`, with
    each `{%` that would end the raw block (`{% endraw %}`, `{%endraw%}`, `{%- endraw %}`) printed as a
    string between two raw blocks instead."""
    if any(mark in answer for mark in ("{{", "{%", "{#")):
        guarded = _ENDS_RAW.sub(lambda _: "{% endraw %}{{ '{%' }}{% raw %}", answer)
        return "{% raw %}" + guarded + "{% endraw %}"
    return answer


def purity_comment(draft: Draft) -> str:
    """The figures a reviewer judges a draft by, as one YAML comment line."""
    answered = f"; {draft.answered} with an agent answer" if draft.answered else "; no agent answers"
    return (
        f"  # {draft.size:,} messages ({draft.share:.1%} of the history); purity estimate: mean similarity "
        f"{draft.mean_similarity:.2f} to the centre, {draft.tight_share:.0%} within {TIGHT}{answered}"
    )


def intent_entry(draft: Draft) -> str:
    """One draft as an entry under `intents:`."""
    lines = [
        purity_comment(draft),
        f"  - name: {draft.name}",
        f"    description: {_quote(draft.description)}",
        "    examples:",
        *(f"      - {_quote(e)}" for e in draft.examples),
    ]
    if draft.answer:
        lines.append(f"    answer: {_quote(as_template(draft.answer))}")
    else:
        lines.append(
            "    # no agent answer in the history: without an answer the intent hands off to a person"
        )
    lines.append(f"    tags: [{TAG}]")
    return "\n".join(lines) + "\n"


def uncovered_share(result: Result) -> float:
    """The share of the history's messages in no draft, two decimals (at most `MAX_SHARE`)."""
    return share_of(result.unassigned, result.messages)


def share_of(uncovered: int, messages: int) -> float:
    """`uncovered` of `messages` as the folder's `off_topic_share`: two decimals, at most `MAX_SHARE`."""
    return min(MAX_SHARE, round(uncovered / messages, 2)) if messages else 0.0


def uncovered_line(uncovered: int, messages: int, where: str) -> str:
    """The `off_topic_share` line with the comment that says where its share comes from: the history's
    messages `where` (in no draft) stand for the traffic no draft covers, so the folder's self-calibration
    plans for that share of out-of-scope messages rather than BOT_OOS_RATE's 3% (docs/bootstrap.md, "What
    the drafted folder promises")."""
    return (
        f"# {uncovered:,} of the {messages:,} messages in the history are {where}: "
        "as much of the traffic is likely not covered\n"
        f"{OFF_TOPIC_KEY}: {share_of(uncovered, messages):g}\n"
    )


def _header(source: Source, what: str) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"# {what}, drafted by `bot bootstrap` from {source.path} on {when}\n"
        f"# ({source.read:,} customer questions read, {source.skipped:,} records skipped).\n"
        "# A DRAFT: read, rename, merge or drop each entry before this folder serves anyone.\n"
    )


def prepare(out: Path, force: bool) -> None:
    """Make `out`, refusing one that exists with files in it unless `force`."""
    if out.exists() and not out.is_dir():
        raise BotError(f"--out {out}: is a file; give a folder to write the drafts into")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise BotError(f"--out {out}: the folder is not empty; choose a new one or pass --force to overwrite")
    out.mkdir(parents=True, exist_ok=True)


def write_folder(result: Result, out: Path, source: Source) -> list[Path]:
    """Write the draft folder into `out` (already prepared); the files written."""
    written = [out / INTENTS_FILE, out / SUMMARY_FILE]
    body = "".join(intent_entry(d) + "\n" for d in result.drafts)
    (out / INTENTS_FILE).write_text(
        _header(source, "Intents")
        + uncovered_line(result.unassigned, result.messages, "in no draft")
        + "intents:\n"
        + body,
        encoding="utf-8",
    )
    knowledge = out / KNOWLEDGE_FILE
    if result.knowledge:
        knowledge.parent.mkdir(exist_ok=True)
        entries = "".join(
            f"  - question: {_quote(k.question)}\n    answer: {_quote(k.answer)}\n    source: history\n"
            for k in result.knowledge
        )
        knowledge.write_text(_header(source, "Knowledge entries") + "entries:\n" + entries, encoding="utf-8")
        written.append(knowledge)
    elif knowledge.is_file():
        knowledge.unlink()  # --force over an older run: its entries are not this run's
    figures = summary(result, source)
    (out / SUMMARY_FILE).write_text(
        json.dumps(figures, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    (out / PAGE_FILE).write_text(render(figures, out), encoding="utf-8")
    return [*written, out / PAGE_FILE]


def summary(result: Result, source: Source) -> dict[str, object]:
    """drafts.json: the run's figures and every draft with its own."""
    return {
        "source": source.path,
        "read": source.read,
        "skipped": source.skipped,
        "messages": result.messages,
        "distinct": len(result.distinct),
        "sampled": result.sampled,
        "unassigned": result.unassigned,
        "off_topic_share": uncovered_share(result),
        "tight": TIGHT,
        "knowledge_entries": len(result.knowledge),
        "drafts": [
            {
                "name": d.name,
                "description": d.description,
                "examples": list(d.examples),
                "answer": d.answer,
                "answer_template": as_template(d.answer) if d.answer else None,
                "size": d.size,
                "share": d.share,
                "mean_similarity": d.mean_similarity,
                "tight_share": d.tight_share,
                "answered": d.answered,
            }
            for d in result.drafts
        ],
    }
