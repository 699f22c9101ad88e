"""Labelled data sets and routing metrics, shared by `bot eval`, `bot calibrate` and the scripts."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sklearn.metrics import f1_score

from bot.errors import BotError
from bot.router import Decision

OUT_OF_SCOPE = "oos"


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
    """Labels compare as lowercase intent names (BANKING77 has `Refund_not_showing_up`)."""
    return label.strip().lower()


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
    if not rows:
        raise DataFileError(f"{path}: no rows")
    return rows


def read_dataset(path: Path) -> list[Example]:
    """A labelled data set from a file, by its suffix."""
    if not path.is_file():
        raise DataFileError(f"{path}: no such file")
    return read_csv(path)


def accepted_intent(decision: Decision) -> str | None:
    """The intent the bot acted on: answered, or handed off as that intent."""
    return decision.intent if decision.route in ("answer", "handoff") else None


@dataclass(frozen=True)
class Metrics:
    """Routing quality on a labelled set."""

    n: int
    top1_accuracy: float
    macro_f1: float
    in_scope_accuracy: float
    coverage: float
    answer_precision: float | None

    def as_dict(self) -> dict[str, float | int | None]:
        """Plain dict with rounded figures, for JSON."""
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def compute_metrics(examples: Sequence[Example], decisions: Sequence[Decision]) -> Metrics:
    """Top-1 accuracy and macro F1 ignore thresholds; the rest judge what the bot would really do."""
    if len(examples) != len(decisions) or not examples:
        raise ValueError("need one decision per example, and at least one")
    in_scope = [(e, d) for e, d in zip(examples, decisions, strict=True) if e.in_scope]
    top1 = [d.candidates[0].intent if d.candidates else "" for _, d in in_scope]
    truth = [e.label for e, _ in in_scope]
    accepted = [accepted_intent(d) for d in decisions]
    right_accepted = sum(1 for e, a in zip(examples, accepted, strict=True) if a is not None and a == e.label)
    n_accepted = sum(1 for a in accepted if a is not None)
    return Metrics(
        n=len(examples),
        top1_accuracy=_share(sum(p == t for p, t in zip(top1, truth, strict=True)), len(truth)),
        macro_f1=float(f1_score(truth, top1, labels=sorted(set(truth)), average="macro", zero_division=0))
        if truth
        else 0.0,
        in_scope_accuracy=_share(sum(accepted_intent(d) == e.label for e, d in in_scope), len(in_scope)),
        coverage=_share(n_accepted, len(examples)),
        answer_precision=right_accepted / n_accepted if n_accepted else None,
    )


def _share(count: int, total: int) -> float:
    return count / total if total else 0.0
