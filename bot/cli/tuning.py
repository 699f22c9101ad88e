"""`bot eval`, `bot calibrate` and `bot train`: measuring and improving routing."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from bot.cli.app import IntentsOption, JsonOption, command, err, out, settings_for

if TYPE_CHECKING:
    from collections.abc import Sequence

    from bot.routing.calibration import CalibrationSource
    from bot.routing.engine import Engine
    from bot.tuning.calibrate import PolicyFit
    from bot.tuning.datasets import Example

DataOption = Annotated[
    Path,
    typer.Option("--data", help="CSV (text, category|label; 'oos' = out of scope) or CLINC150-style JSON."),
]
SplitOption = Annotated[str, typer.Option("--split", help="Split of a JSON data set (plus its oos_ rows).")]
TrainOption = Annotated[
    Path | None, typer.Option("--train", help="Labelled file to draw few-shot examples from (with --shots).")
]
ShotsOption = Annotated[
    int | None, typer.Option("--shots", min=1, help="Examples per intent drawn from --train (default: all).")
]
SeedOption = Annotated[int, typer.Option("--seed", help="Seed of the few-shot draw.")]


def few_shot_examples(train: Path | None, shots: int | None, seed: int, split: str) -> dict[str, list[str]]:
    """The few-shot sample `--train/--shots/--seed` ask for (empty without `--train`)."""
    from bot.tuning.datasets import DataFileError, few_shot, group_by_label, read_dataset

    if train is None:
        if shots is not None:
            raise DataFileError("--shots needs --train FILE to draw the examples from")
        return {}
    rows = read_dataset(train, "train" if train.suffix.lower() == ".json" else split)
    return few_shot(rows, shots, seed) if shots is not None else group_by_label(rows)


def load_engine(intents: Path | None, extra: dict[str, list[str]]) -> Engine:
    """An engine on the folder's intents plus `extra` examples (in memory), with progress on stderr."""
    from bot.routing.engine import Engine
    from bot.tuning.self_training import ensure_self_trained

    settings = settings_for(intents, torch_threads=os.cpu_count() or 1)  # batch work: use every core
    engine = Engine(ensure_self_trained(settings), progress=True)
    engine.load(extra_examples=extra)
    note_skipped_labels(extra, engine.intents.names)
    return engine


def note_skipped_labels(extra: dict[str, list[str]], known: Sequence[str]) -> None:
    """Name the training labels that are not intents (their examples are left out), with near names."""
    unknown = sorted(set(extra) - set(known))
    if unknown:
        err.print(
            f"note: {len(unknown)} training labels have no intent and were skipped: "
            f"{named_with_near(unknown, known)}",
            markup=False,
        )


def named_with_near(unknown: list[str], known: Sequence[str], shown: int = 8) -> str:
    """The first `shown` unknown labels, each with the intent names near it, and how many more there are:
    a label that is a near miss of an intent (BANKING77's `top_up_by_card` for `topping_up_by_card`) is
    fixed by renaming it, which the bare list did not say."""
    from bot.content.suggest import did_you_mean

    listed = ", ".join(label + did_you_mean(label, known) for label in unknown[:shown])
    return listed + (f" and {len(unknown) - shown} more" if len(unknown) > shown else "")


def warn_unknown_labels(examples: list[Example], known: Sequence[str], data: Path) -> None:
    """Say which in-scope labels of a labelled file are not intents of the folder, with near names: such
    rows can never be right, so they would silently lower every figure."""
    unknown = sorted({e.label for e in examples if e.in_scope} - set(known))
    if unknown:
        err.print(
            f"warning: {len(unknown)} labels in {data.name} are not intents of this folder and count as wrong: "
            f"{named_with_near(unknown, known)} (rename them, or label such rows 'oos' if no intent should "
            "take them)",
            markup=False,
        )


def held_out(
    examples: list[Example],
    train: Path | None,
    data: Path,
    extra: dict[str, list[str]],
    leave_one_out: bool = False,
) -> list[Example]:
    """Rows to judge on: when they come from the training file, not those drawn as examples (unless each
    row is to be judged leave-one-out, which keeps them all)."""
    from bot.tuning.datasets import without_texts

    same = train is not None and train.resolve() == data.resolve()
    return without_texts(examples, extra) if same and not leave_one_out else examples


@command(name="eval")
def evaluate(
    data: DataOption,
    intents: IntentsOption = None,
    split: SplitOption = "test",
    train: TrainOption = None,
    shots: ShotsOption = None,
    seed: SeedOption = 0,
    report: Annotated[
        Path | None, typer.Option("--report", help="Write report.md and PNG plots into this folder.")
    ] = None,
    leave_one_out: Annotated[
        bool,
        typer.Option(
            "--leave-one-out",
            help="Judge a row that is also one of its intent's examples (YAML, reviewed or drawn with "
            "--train) as if that example were absent: cross-validation without a held-out set. "
            "Not valid for a model fine-tuned on those rows.",
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Route every row of a labelled data set and print accuracy, F1, coverage and out-of-scope figures."""
    from bot.tuning.datasets import read_dataset
    from bot.tuning.evaluate import compute_metrics, route_examples

    extra = few_shot_examples(train, shots, seed, split)
    engine = load_engine(intents, extra)
    examples = held_out(read_dataset(data, split), train, data, extra, leave_one_out)
    warn_unknown_labels(examples, engine.intents.names, data)
    decisions = route_examples(engine, examples, progress=True, leave_one_out=leave_one_out)
    metrics = compute_metrics(examples, decisions)
    if report is not None:
        from bot.tuning.report import write_report

        title = f"{data.name}" + (
            f", {shots}-shot from {train.name} (seed {seed})" if train and shots else ""
        )
        path = write_report(
            report, title, examples, decisions, metrics, engine.model_id, engine.intents.version
        )
        err.print(f"report: {path}")
    values = metrics.as_dict()
    if as_json:
        sys.stdout.write(json.dumps(values) + "\n")
        return
    table = Table("metric", "value", title=f"{data} ({len(examples)} rows)")
    for key, value in values.items():
        table.add_row(
            key, "n/a" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)
        )
    out.print(table)


ReviewedData = "reviewed"


def reviewed_labelled_rows(intents: Path | None) -> list[Example]:
    """Analysts' verdicts and resolved tickets from the review store, as labelled rows."""
    from sqlalchemy.exc import SQLAlchemyError

    from bot.store.db import make_engine, url_without_password
    from bot.store.reviews import reviewed_rows
    from bot.tuning.datasets import OUT_OF_SCOPE, DataFileError, Example

    settings = settings_for(intents)
    database = make_engine(settings.database_url)
    try:
        rows = reviewed_rows(database)
    except SQLAlchemyError as exc:
        where = url_without_password(settings.database_url)
        raise DataFileError(f"cannot read reviews from {where}: {str(exc).splitlines()[0]}") from None
    finally:
        database.dispose()
    if not rows:
        raise DataFileError(
            "the review store has no reviewed messages yet: review some at /review, or pass --data FILE.csv"
        )
    return [Example(text, label if label is not None else OUT_OF_SCOPE) for text, label in rows]


@command()
def calibrate(
    data: Annotated[
        str,
        typer.Option(
            "--data",
            help="'reviewed' (analysts' verdicts and resolved tickets in the review store), or a CSV "
            "(text, category|label; 'oos' = out of scope) or CLINC150-style JSON.",
        ),
    ],
    intents: IntentsOption = None,
    split: Annotated[
        str, typer.Option("--split", help="Split of a JSON data set (plus its oos_ rows).")
    ] = "val",
    target_precision: Annotated[
        float,
        typer.Option("--target-precision", min=0.01, max=1.0, help="Share of answers that must be right."),
    ] = 0.95,
    oos_rate: Annotated[
        float | None,
        typer.Option(
            "--oos-rate",
            min=0.0,
            max=0.95,
            help="Share of live traffic expected to be out of scope; the promised precision holds at that "
            "share, whatever the labelled set's own (default: the set's own share).",
        ),
    ] = None,
    train: TrainOption = None,
    shots: ShotsOption = None,
    seed: SeedOption = 0,
    as_json: JsonOption = False,
) -> None:
    """Fit confidence, thresholds and aggregation on labelled data; write calibration.yaml to the intents folder."""
    from bot.routing.calibration import save_calibration
    from bot.tuning.calibrate import calibrate as fit

    extra = few_shot_examples(train, shots, seed, split)
    engine, examples, source, label = _calibration_rows(data, intents, split, train, extra)
    calibration, policy = fit(
        engine, examples, target_precision, data=label, oos_rate=oos_rate, source=source, progress=True
    )
    path = save_calibration(engine.intents_dir, calibration)
    own_share = sum(not e.in_scope for e in examples) / len(examples)
    if as_json:
        summary = _calibration_summary(path, len(examples), own_share, oos_rate, policy)
        sys.stdout.write(json.dumps(summary) + "\n")
        return
    _print_calibration(path, policy, target_precision, oos_rate, own_share)


def _calibration_rows(
    data: str, intents: Path | None, split: str, train: Path | None, extra: dict[str, list[str]]
) -> tuple[Engine, list[Example], CalibrationSource, str]:
    """The engine to fit for and the rows to fit on: the review store's, or a labelled file's held-out rows
    (never a test set); with the calibration's source and the label naming its data."""
    from bot.tuning.datasets import DataFileError, group_by_label, read_dataset

    if data == ReviewedData:
        examples = reviewed_labelled_rows(intents)
        # the learned examples (the in-scope rows) are live intent examples too: the fit scores them
        # leave-one-out; taken from the same read of the review store
        engine = load_engine(intents, _merge(extra, group_by_label(examples)))
        return engine, examples, "reviews", "reviewed messages"
    path = Path(data)
    if "test" in path.stem.lower() or split == "test":
        raise DataFileError(f"{path}: refusing to calibrate on a test set; use training or validation data")
    engine = load_engine(intents, extra)
    examples = held_out(read_dataset(path, split), train, path, extra)
    warn_unknown_labels(examples, engine.intents.names, path)
    label = f"{path.name}:{split}" if path.suffix.lower() == ".json" else path.name
    return engine, examples, "labelled", label


def _calibration_summary(
    path: Path, rows: int, own_share: float, oos_rate: float | None, policy: PolicyFit
) -> dict[str, object]:
    """What `bot calibrate --json` prints: the file written and what the fitted policy promises."""
    return {
        "file": str(path),
        "rows": rows,
        "oos_share_in_data": round(own_share, 4),
        "oos_rate": oos_rate,
        "expected_precision": round(policy.precision, 4),
        "expected_coverage": round(policy.coverage, 4),
        "target_reached": policy.reached,
        "threshold": policy.threshold,
        "margin": policy.margin,
        "intent_thresholds": len(policy.intent_thresholds),
        "expected_by_oos_rate": {
            str(r): {"precision": p, "coverage": c} for r, (p, c) in policy.by_oos_rate.items()
        },
    }


def _print_calibration(
    path: Path, policy: PolicyFit, target_precision: float, oos_rate: float | None, own_share: float
) -> None:
    """The fitted operating point for a reader, and what it would be if traffic's out-of-scope share differs."""
    if not policy.reached:
        err.print(f"warning: no threshold reaches precision {target_precision}; kept the most precise one")
    share = (
        f"at {oos_rate:.0%} out-of-scope traffic"
        if oos_rate is not None
        else f"on this data ({own_share:.0%} out of scope)"
    )
    out.print(
        f"wrote {path}: expected precision {policy.precision:.3f} at coverage {policy.coverage:.3f} {share} "
        f"(threshold {policy.threshold:.2f}, margin {policy.margin:.2f}, "
        f"{len(policy.intent_thresholds)} intent thresholds)"
    )
    if policy.by_oos_rate:
        table = Table(
            "out-of-scope share", "expected precision", "expected coverage", title="if traffic differs"
        )
        for rate, (precision, coverage) in policy.by_oos_rate.items():
            table.add_row(f"{rate:.0%}", f"{precision:.3f}", f"{coverage:.3f}")
        out.print(table)
    else:
        err.print("note: the data has no out-of-scope rows; pass --oos-rate R to plan for them")


@command()
def train(
    intents: IntentsOption = None,
    data: Annotated[
        str | None, typer.Option("--data", help="'reviewed' (the review store) or a CSV of text,category.")
    ] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Folder of the fine-tuned model.")] = Path(
        "models/tuned"
    ),
    train_file: TrainOption = None,
    shots: ShotsOption = None,
    seed: SeedOption = 0,
    epochs: Annotated[int, typer.Option("--epochs", min=1, help="Passes over the training texts.")] = 4,
) -> None:
    """Fine-tune the encoder contrastively on intents, examples and messages; then set BOT_MODEL to --out."""
    from bot.content.intents import load_intents
    from bot.tuning.datasets import group_by_label, read_dataset
    from bot.tuning.training import TrainingConfig, fine_tune, reviewed_examples

    settings = settings_for(intents, torch_threads=os.cpu_count() or 1)
    extra = few_shot_examples(train_file, shots, seed, "train")
    if data == "reviewed":
        extra = _merge(extra, reviewed_examples(settings))
    elif data is not None:
        extra = _merge(extra, group_by_label(read_dataset(Path(data), "train")))
    folder = load_intents(settings.intents_dir)
    note_skipped_labels(extra, folder.names)  # with_extra_examples drops them silently
    intent_set = folder.with_extra_examples(extra)
    result = fine_tune(
        settings.model,
        intent_set,
        out_dir,
        TrainingConfig(epochs=epochs, seed=seed, threads=settings.torch_threads),
    )
    out.print(
        f"wrote {result.path} ({result.texts} texts, {result.steps} steps, {result.seconds:.0f}s); "
        f"model id {result.model_id}. Use it with: BOT_MODEL={result.path}"
    )


def _merge(first: dict[str, list[str]], second: dict[str, list[str]]) -> dict[str, list[str]]:
    merged = {k: list(v) for k, v in first.items()}
    for label, texts in second.items():
        merged.setdefault(label, []).extend(t for t in texts if t not in merged[label])
    return merged
