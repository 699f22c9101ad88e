"""`bot eval --report DIR`: a Markdown report with per-intent figures, confusions and PNG plots."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from bot.errors import BotError
from bot.routing.policy import Decision
from bot.tuning.evaluate import Example, Metrics, confused_pairs, per_intent, top_intent


def precision_coverage_curve(
    confidence: np.ndarray, right: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Coverage and answer precision if every message at or above each confidence were answered."""
    order = np.argsort(-confidence, kind="stable")
    hits = np.cumsum(right[order])
    taken = np.arange(1, len(order) + 1)
    return taken / max(len(order), 1), hits / taken, confidence[order]


def _plots(folder: Path, examples: Sequence[Example], decisions: Sequence[Decision]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on servers and CI
    import matplotlib.pyplot as plt

    confidence = np.array([d.confidence for d in decisions])
    in_scope = np.array([e.in_scope for e in examples])
    right = np.array([top_intent(d) == e.label for e, d in zip(examples, decisions, strict=True)])
    coverage, precision, _ = precision_coverage_curve(confidence, right)
    figure, axis = plt.subplots(figsize=(6, 4))
    axis.plot(coverage, precision)
    axis.set(xlabel="coverage (share of messages answered)", ylabel="answer precision", ylim=(0, 1.01))
    axis.set_title("Answer precision vs coverage, thresholding the top confidence")
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(folder / "precision_coverage.png", dpi=100)
    plt.close(figure)

    figure, axis = plt.subplots(figsize=(6, 4))
    groups = {
        "right": confidence[in_scope & right],
        "wrong": confidence[in_scope & ~right],
        "out of scope": confidence[~in_scope],
    }
    for label, values in groups.items():
        if len(values):
            axis.hist(
                values, bins=40, range=(0.0, 1.0), alpha=0.5, label=f"{label} ({len(values)})", density=True
            )
    axis.set(xlabel="top confidence", ylabel="density")
    axis.set_title("Confidence of right, wrong and out-of-scope messages")
    axis.legend()
    figure.tight_layout()
    figure.savefig(folder / "confidence_histogram.png", dpi=100)
    plt.close(figure)
    return ["precision_coverage.png", "confidence_histogram.png"]


def _figure(value: float | int | None) -> str:
    return "n/a" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)


def write_report(
    folder: Path,
    title: str,
    examples: Sequence[Example],
    decisions: Sequence[Decision],
    metrics: Metrics,
    model_id: str,
    intents_version: str,
) -> Path:
    """Write `report.md` and its plots into `folder`; returns the Markdown file's path."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BotError(f"cannot create report folder '{folder}': {exc}") from None
    plots = _plots(folder, examples, decisions)
    lines = [
        f"# Evaluation: {title}",
        "",
        f"Model `{model_id}`, intents version `{intents_version}`, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.",
        "",
        "| metric | value |",
        "|---|---|",
        *(f"| {key} | {_figure(value)} |" for key, value in metrics.as_dict().items()),
        "",
        "## Plots",
        "",
        *(f"![{name}]({name})" for name in plots),
        "",
        "## Per intent (top-1, in-scope rows; worst F1 first)",
        "",
        "| intent | precision | recall | F1 | rows |",
        "|---|---|---|---|---|",
        *(
            f"| {row.intent} | {row.precision:.3f} | {row.recall:.3f} | {row.f1:.3f} | {row.support} |"
            for row in per_intent(examples, decisions)
        ),
        "",
        "## Most confused pairs",
        "",
        "| true intent | taken for | count | example messages |",
        "|---|---|---|---|",
        *(
            f"| {truth} | {predicted or '(none)'} | {count} | "
            + " / ".join(t.replace("|", "\\|") for t in texts)
            + " |"
            for truth, predicted, count, texts in confused_pairs(examples, decisions)
        ),
        "",
    ]
    path = folder / "report.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
