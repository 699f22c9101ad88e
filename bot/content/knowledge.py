"""Knowledge base for the retrieval fallback: YAML Q&A entries and Markdown pages split at headings."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from markdown_it import MarkdownIt
from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from bot.content.intents import first_error
from bot.content.yaml_io import read_yaml
from bot.errors import KnowledgeFileError

Text = Annotated[StrictStr, Field(min_length=1)]


class FaqEntry(BaseModel):
    """One question-and-answer entry as written in YAML."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    question: Text
    answer: Text
    source: Text | None = None


FAQ_KEYS = tuple(FaqEntry.model_fields)


@dataclass(frozen=True)
class Passage:
    """A retrievable piece of knowledge: what is embedded, what is shown, and where it came from."""

    title: str
    text: str
    source: str
    path: Path
    line: int

    @property
    def embed_text(self) -> str:
        """Title and text together, so a question matches either."""
        return f"{self.title}. {self.text}"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def load_faq(path: Path) -> list[Passage]:
    """Passages from a YAML file with a list under `entries` (question, answer, source)."""
    data = read_yaml(path, KnowledgeFileError)
    if data is None:
        return []
    unknown = [k for k in data if k != "entries"] if isinstance(data, CommentedMap) else []
    if unknown:  # before the missing list: 'entires:' is a typo of 'entries', say so
        hint = " (did you mean 'entries'?)" if difflib.get_close_matches(str(unknown[0]), ["entries"]) else ""
        raise KnowledgeFileError(
            path, data.lc.key(unknown[0])[0] + 1, f"unknown key '{unknown[0]}'{hint}; allowed: entries"
        )
    if not isinstance(data, CommentedMap) or not isinstance(data.get("entries"), CommentedSeq):
        raise KnowledgeFileError(path, 1, "a knowledge file needs a list under 'entries'")
    passages = []
    entries: CommentedSeq = data["entries"]
    for position, raw in enumerate(entries):
        line = entries.lc.item(position)[0] + 1
        try:
            entry = FaqEntry.model_validate(dict(raw) if isinstance(raw, CommentedMap) else raw)
        except ValidationError as exc:
            first = first_error(exc)
            key = ".".join(str(p) for p in first["loc"]) or "entry"
            if first["type"] == "extra_forbidden":
                close = difflib.get_close_matches(key, FAQ_KEYS, n=1)  # as intents files do
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                message = f"unknown key '{key}'{hint}; allowed: {', '.join(FAQ_KEYS)}"
                if isinstance(raw, CommentedMap) and key in raw:
                    line = raw.lc.key(key)[0] + 1  # the misspelt key's own line, not the entry's
            else:
                message = f"'{key}': {first['msg'].lower()}"
            raise KnowledgeFileError(path, line, message) from None
        source = entry.source or f"{path.name}#{_slug(entry.question)}"
        passages.append(Passage(title=entry.question, text=entry.answer, source=source, path=path, line=line))
    return passages


def split_markdown(path: Path) -> list[Passage]:
    """Passages from a Markdown page: one per heading section, titled 'Page title: Section'."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise KnowledgeFileError(path, None, f"cannot read file: {exc}") from None
    lines = text.splitlines()
    tokens = MarkdownIt("commonmark").parse(text)
    headings: list[tuple[int, int, int, str]] = []  # (level, first line, line after heading, title)
    for i, token in enumerate(tokens):
        if token.type == "heading_open" and token.map is not None:
            headings.append((int(token.tag[1]), token.map[0], token.map[1], tokens[i + 1].content.strip()))
    page_title = next((title for level, _, _, title in headings if level == 1), path.stem.replace("-", " "))
    passages = []
    bounds = [*(h[1] for h in headings), len(lines)]
    if headings and bounds[0] > 0:
        headings.insert(0, (1, 0, 0, page_title))
        bounds.insert(0, 0)
    if not headings:
        headings = [(1, 0, 0, page_title)]
        bounds = [0, len(lines)]
    for (level, start, body_start, title), end in zip(headings, bounds[1:], strict=True):
        body = " ".join(line.strip() for line in lines[body_start:end] if line.strip())
        if not body:
            continue
        full_title = title if level == 1 or title == page_title else f"{page_title}: {title}"
        passages.append(
            Passage(
                title=full_title, text=body, source=f"{path.name}#{_slug(title)}", path=path, line=start + 1
            )
        )
    return passages


def load_knowledge(folder: Path) -> tuple[Passage, ...]:
    """All passages under `folder` (usually intents/knowledge); an absent folder is an empty base."""
    if not folder.is_dir():
        return ()
    passages: list[Passage] = []
    for path in sorted(folder.iterdir()):
        if path.suffix in {".yaml", ".yml"}:
            passages.extend(load_faq(path))
        elif path.suffix == ".md":
            passages.extend(split_markdown(path))
    return tuple(passages)
