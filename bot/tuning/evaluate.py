"""Routing metrics on labelled data, shared by `bot eval`, `bot calibrate`, the report and the scripts."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from sklearn.metrics import f1_score, precision_recall_fscore_support, roc_auc_score

from bot.routing.policy import Decision
from bot.routing.scoring import decide_vectors, left_out_rows
from bot.tuning.datasets import (
    OUT_OF_SCOPE,
    DataFileError,
    Example,
    few_shot,
    normalise_label,
    read_csv,
    read_dataset,
    read_json,
)

if TYPE_CHECKING:
    from bot.routing.engine import Engine
    from bot.routing.state import RoutingState

__all__ = [
    "OUT_OF_SCOPE",
    "DataFileError",
    "Example",
    "IntentFigures",
    "Metrics",
    "accepted_intent",
    "compute_metrics",
    "confused_pairs",
    "few_shot",
    "normalise_label",
    "per_intent",
    "read_csv",
    "read_dataset",
    "read_json",
    "route_examples",
]


def accepted_intent(decision: Decision) -> str | None:
    """The intent the bot acted on: answered, or handed off as that intent."""
    return decision.intent if decision.route in ("answer", "handoff") else None


def top_intent(decision: Decision) -> str:
    """The best-scoring intent whatever the policy decided ("" when there is none)."""
    return decision.candidates[0].intent if decision.candidates else ""


@dataclass(frozen=True)
class Metrics:
    """Routing quality on a labelled set; the out-of-scope figures are None when it has no such rows."""

    n: int
    top1_accuracy: float
    macro_f1: float
    in_scope_accuracy: float
    coverage: float
    answer_precision: float | None
    oos_recall: float | None
    oos_precision: float | None
    auroc: float | None

    def as_dict(self) -> dict[str, float | int | None]:
        """Plain dict with rounded figures, for JSON."""
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def compute_metrics(examples: Sequence[Example], decisions: Sequence[Decision]) -> Metrics:
    """Top-1 accuracy and macro F1 ignore thresholds (in-scope rows); the rest judge what the bot would do."""
    if len(examples) != len(decisions) or not examples:
        raise ValueError("need one decision per example, and at least one")
    pairs = list(zip(examples, decisions, strict=True))
    in_scope = [(e, d) for e, d in pairs if e.in_scope]
    out_scope = [(e, d) for e, d in pairs if not e.in_scope]
    truth = [e.label for e, _ in in_scope]
    top1 = [top_intent(d) for _, d in in_scope]
    accepted = [accepted_intent(d) for _, d in pairs]
    n_accepted = sum(a is not None for a in accepted)
    right_accepted = sum(a is not None and a == e.label for (e, _), a in zip(pairs, accepted, strict=True))
    rejected = [e for (e, _), a in zip(pairs, accepted, strict=True) if a is None]
    oos_rejected = sum(not e.in_scope for e in rejected)
    auroc = None
    if in_scope and out_scope:
        # how well confidence alone separates messages some intent owns from those none does
        labels = [1] * len(in_scope) + [0] * len(out_scope)
        scores = [d.confidence for _, d in in_scope] + [d.confidence for _, d in out_scope]
        auroc = float(roc_auc_score(labels, scores))
    return Metrics(
        n=len(examples),
        top1_accuracy=_share(sum(p == t for p, t in zip(top1, truth, strict=True)), len(truth)),
        macro_f1=float(f1_score(truth, top1, labels=sorted(set(truth)), average="macro", zero_division=0))
        if truth
        else 0.0,
        in_scope_accuracy=_share(sum(accepted_intent(d) == e.label for e, d in in_scope), len(in_scope)),
        coverage=_share(n_accepted, len(examples)),
        answer_precision=right_accepted / n_accepted if n_accepted else None,
        oos_recall=oos_rejected / len(out_scope) if out_scope else None,
        oos_precision=oos_rejected / len(rejected) if out_scope and rejected else None,
        auroc=auroc,
    )


@dataclass(frozen=True)
class IntentFigures:
    """Top-1 precision, recall and F1 of one intent over the in-scope rows."""

    intent: str
    precision: float
    recall: float
    f1: float
    support: int


def per_intent(examples: Sequence[Example], decisions: Sequence[Decision]) -> list[IntentFigures]:
    """Figures per labelled intent, worst F1 first (where a bot builder should add examples)."""
    pairs = [(e.label, top_intent(d)) for e, d in zip(examples, decisions, strict=True) if e.in_scope]
    if not pairs:
        return []
    truth, predicted = zip(*pairs, strict=True)
    labels = sorted(set(truth))
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, predicted, labels=labels, zero_division=0
    )
    rows = [
        IntentFigures(label, float(p), float(r), float(f), int(s))
        for label, p, r, f, s in zip(labels, precision, recall, f1, support, strict=True)
    ]
    return sorted(rows, key=lambda row: (row.f1, row.intent))


def confused_pairs(
    examples: Sequence[Example], decisions: Sequence[Decision], limit: int = 10, samples: int = 3
) -> list[tuple[str, str, int, list[str]]]:
    """Most frequent (true intent, top-1 intent) mistakes with a few of their messages."""
    counts: Counter[tuple[str, str]] = Counter()
    texts: dict[tuple[str, str], list[str]] = defaultdict(list)
    for example, decision in zip(examples, decisions, strict=True):
        predicted = top_intent(decision)
        if example.in_scope and predicted != example.label:
            counts[(example.label, predicted)] += 1
            if len(texts[(example.label, predicted)]) < samples:
                texts[(example.label, predicted)].append(example.text)
    return [
        (truth, predicted, n, texts[(truth, predicted)])
        for (truth, predicted), n in counts.most_common(limit)
    ]


def route_examples(
    engine: Engine,
    examples: Sequence[Example],
    *,
    state: RoutingState | None = None,
    progress: bool = False,
    leave_one_out: bool = False,
) -> list[Decision]:
    """Decisions for labelled rows, with message vectors from the embedding cache so re-runs are quick.

    With `leave_one_out`, a row that is also one of its intent's examples does not see that example, so
    rows that feed the intents can still be judged as new messages. `state` defaults to the live one.
    """
    state = state or engine.state
    texts = [e.text for e in examples]
    vectors = engine.encoder.encode(texts, progress=progress)
    left_out = left_out_rows(state, texts, [e.label for e in examples]) if leave_one_out else None
    return decide_vectors(state, vectors, left_out)


def _share(count: int, total: int) -> float:
    return count / total if total else 0.0
