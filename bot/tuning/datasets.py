"""Labelled data sets (CSV and CLINC150-style JSON) and the few-shot sample drawn from them."""

from __future__ import annotations

import csv
import json
import random
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bot.errors import BotError

OUT_OF_SCOPE = "oos"
JSON_SPLITS = ("train", "val", "test")


class DataFileError(BotError):
    """A data set that cannot be read."""


@dataclass(frozen=True)
class Example:
    """One labelled message; `label == "oos"` means no intent should take it."""

    text: str
    label: str

    @property
    def in_scope(self) -> bool:
        """Whether some intent should take this message."""
        return self.label != OUT_OF_SCOPE


def normalise_label(label: str) -> str:
    """Labels compare as intent names: lowercase, other characters `_` (BANKING77: `reverted_card_payment?`)."""
    return re.sub(r"[^a-z0-9_]+", "_", label.strip().lower()).strip("_") or label.strip().lower()


def read_csv(path: Path) -> list[Example]:
    """Rows of a CSV with a `text` column and a `category` or `label` column."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            fields = reader.fieldnames or []
            label_field = "category" if "category" in fields else "label" if "label" in fields else None
            if "text" not in fields or label_field is None:
                raise DataFileError(
                    f"{path}: needs columns 'text' and 'category' (or 'label'); found {', '.join(fields)}"
                )
            rows = [Example(r["text"], normalise_label(r[label_field])) for r in reader if r["text"].strip()]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataFileError(f"{path}: cannot read CSV: {exc}") from None
    return rows


def read_json(path: Path, split: str) -> list[Example]:
    """One split of a CLINC150-style file; `split` reads `split` plus `oos_<split>`, whose rows are out of scope."""
    if split not in JSON_SPLITS:
        raise DataFileError(f"{path}: unknown split '{split}'; choose one of {', '.join(JSON_SPLITS)}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise DataFileError(f"{path}: cannot read JSON: {exc}") from None
    if not isinstance(data, dict) or split not in data:
        found = ", ".join(data) if isinstance(data, dict) else type(data).__name__
        raise DataFileError(f"{path}: no '{split}' split; found {found}")
    rows: list[Example] = []
    for key in (split, f"oos_{split}"):
        for number, pair in enumerate(data.get(key, [])):
            if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(p, str) for p in pair)):
                raise DataFileError(f"{path}: {key}[{number}] must be [text, label]; got {pair!r}")
            label = OUT_OF_SCOPE if key.startswith("oos_") else normalise_label(pair[1])
            if pair[0].strip():
                rows.append(Example(pair[0], label))
    return rows


def read_dataset(path: Path, split: str = "test") -> list[Example]:
    """A labelled data set by its suffix: `.json` is CLINC150-style (`split` chooses), anything else CSV."""
    if not path.is_file():
        raise DataFileError(f"{path}: no such file")
    rows = read_json(path, split) if path.suffix.lower() == ".json" else read_csv(path)
    if not rows:
        raise DataFileError(f"{path}: no rows")
    return rows


def few_shot(examples: Sequence[Example], shots: int, seed: int) -> dict[str, list[str]]:
    """`shots` texts per in-scope label drawn with `seed` (all of a label's texts if it has fewer)."""
    if shots < 1:
        raise DataFileError(f"--shots must be at least 1; got {shots}")
    by_label = group_by_label(examples)
    rng = random.Random(seed)
    return {label: rng.sample(texts, min(shots, len(texts))) for label, texts in sorted(by_label.items())}


def without_texts(examples: Sequence[Example], texts: dict[str, list[str]]) -> list[Example]:
    """`examples` minus those whose text was drawn into `texts` (evaluate on what was not learned from)."""
    used = {t for group in texts.values() for t in group}
    return [e for e in examples if e.text not in used]


def group_by_label(examples: Sequence[Example]) -> dict[str, list[str]]:
    """In-scope texts per label, in file order, without duplicates."""
    by_label: dict[str, list[str]] = defaultdict(list)
    for example in examples:
        if example.in_scope and example.text not in by_label[example.label]:
            by_label[example.label].append(example.text)
    return dict(by_label)
