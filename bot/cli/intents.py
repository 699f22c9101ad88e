"""`bot check` and `bot route`: validate a folder, route one message."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated

import typer
from rich.table import Table

from bot.cli.app import IntentsOption, JsonOption, command, engine_for, err, out, settings_for
from bot.config import Settings
from bot.routing.engine import Engine


@command()
def check(
    intents: IntentsOption = None,
    syntax_only: Annotated[
        bool, typer.Option("--syntax-only", help="Only validate the files; do not load the model.")
    ] = False,
    pairs: Annotated[int, typer.Option("--pairs", min=0, max=100, help="Confusable pairs to list.")] = 10,
) -> None:
    """Validate the intent files and knowledge base (exit 0 when valid, 2 otherwise), then say what to
    expect: the operating point the folder calibrates to, and the intents most likely to be confused."""
    from bot.content.intents import load_intents
    from bot.content.knowledge import load_knowledge
    from bot.content.tone import load_tone

    settings = settings_for(intents)
    intent_set = load_intents(settings.intents_dir)
    passages = load_knowledge(settings.intents_dir / "knowledge")
    load_tone(settings.intents_dir)  # validated like the intents: a bad tone.yaml fails here, not at serve
    handoff = sum(1 for i in intent_set.intents if i.spec.handoff)
    files = len({i.path for i in intent_set.intents})
    out.print(
        f"ok: {len(intent_set.intents)} intents in {files} file{'s' if files != 1 else ''} "
        f"({handoff} always hand off), "
        f"{len(passages)} knowledge passages; version {intent_set.version}"
    )
    if not syntax_only:
        expectations(settings, pairs)


def expectations(settings: Settings, limit: int) -> None:
    """The operating point the folder routes with and the intent pairs its own texts confuse."""
    from bot.tuning.confusion import confusable_pairs
    from bot.tuning.self_training import ensure_self_trained

    engine = Engine(ensure_self_trained(settings), progress=False)
    result = engine.load()
    state = engine.state
    calibration = state.calibration
    out.print(
        f"operating point ({result.operating_point}): answer when confidence >= {state.policy.threshold:.2f} "
        f"and {state.policy.margin:.2f} ahead of the runner-up"
    )
    if calibration is not None and calibration.expected_precision is not None:
        share = (
            f" with {calibration.oos_rate:.0%} of traffic out of scope"
            if calibration.oos_rate is not None
            else ""
        )
        out.print(
            f"  expected: answer precision {calibration.expected_precision:.2f}, coverage "
            f"{calibration.expected_coverage or 0.0:.2f}{share} ({calibration.data})",
            markup=False,
        )
    elif calibration is None:
        out.print("  expected: unknown (the settings' defaults, fitted on BANKING77; see `bot calibrate`)")
        if result.operating_point.startswith("defaults ("):
            err.print(
                "warning: self-calibration needs at least 3 intents and 6 examples in all; add examples "
                "so the router can fit a threshold to these intents"
            )
    found = confusable_pairs(state, limit=limit)
    if not found:
        out.print("no confusable intents: every text ranks its own intent first, clearly ahead")
        return
    out.print(
        f"intents most likely to be confused ({len(found)}; each text scored as a message, leave-one-out):"
    )
    for pair in found:
        out.print(
            f"  {pair.intent} -> {pair.other}: {pair.wrong} texts rank '{pair.other}' first, {pair.close} "
            "within the margin",
            markup=False,
        )
        for collision in pair.collisions:
            out.print(
                f"      '{collision.text}' ({collision.own_confidence:.2f} own, {collision.other_confidence:.2f} "
                f"other) ~ '{collision.nearest_text}'",
                markup=False,
            )
    out.print("Rewrite one of each pair's descriptions or examples so they say what differs.")


@command()
def route(
    text: Annotated[str, typer.Argument(help="The customer's message.")],
    intents: IntentsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Route one message and print the decision."""
    engine = engine_for(settings_for(intents))
    decision = engine.route(text)
    if as_json:
        out.print_json(json.dumps(asdict(decision)), indent=None)
        return
    out.print(
        f"[bold]{decision.route}[/bold]  intent={decision.intent}  confidence={decision.confidence:.2f}"
    )
    out.print(f"answer: {decision.answer}", markup=False)
    out.print(f"reason: {decision.reason}", markup=False)
    table = Table("intent", "score", "confidence", title="candidates")
    for candidate in decision.candidates:
        table.add_row(candidate.intent, f"{candidate.score:.3f}", f"{candidate.confidence:.3f}")
    out.print(table)
