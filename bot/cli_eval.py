"""`bot eval` (and, as they arrive, `bot calibrate` and `bot train`): measuring and improving routing."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from bot.cli import IntentsOption, JsonOption, command, engine_for, out, settings_for


@command(name="eval")
def evaluate(
    data: Annotated[Path, typer.Option("--data", help="CSV with columns text and category (or label).")],
    intents: IntentsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Route every row of a labelled data set and print accuracy, F1 and coverage."""
    from bot.evaluate import compute_metrics, read_dataset

    examples = read_dataset(data)
    settings = settings_for(intents, torch_threads=os.cpu_count() or 1)  # batch work: use every core
    engine = engine_for(settings, progress=True)
    decisions = engine.route_many([e.text for e in examples], progress=True)
    metrics = compute_metrics(examples, decisions).as_dict()
    if as_json:
        sys.stdout.write(json.dumps(metrics) + "\n")
        return
    table = Table("metric", "value", title=f"{data} ({len(examples)} rows)")
    for key, value in metrics.items():
        table.add_row(
            key, "n/a" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)
        )
    out.print(table)
