"""`bot check`, `bot route` and `bot shell`: validate a folder, route messages, talk to the router."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from bot.cli.app import (
    IntentsOption,
    LearnedOption,
    add_learned_examples,
    command,
    engine_for,
    err,
    out,
    settings_for,
)
from bot.config import Settings
from bot.routing.engine import Engine
from bot.routing.policy import Decision

if TYPE_CHECKING:
    from bot.content.intents import IntentSet


@command()
def check(
    intents: IntentsOption = None,
    syntax_only: Annotated[
        bool, typer.Option("--syntax-only", help="Only validate the files; do not load the model.")
    ] = False,
    pairs: Annotated[int, typer.Option("--pairs", min=0, max=100, help="Confusable pairs to list.")] = 10,
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            help="A `bot logs export` file (CSV or JSON lines): estimate the share of its messages that are "
            "off-topic and compare it with the share the operating point assumes.",
        ),
    ] = None,
    set_share: Annotated[
        bool,
        typer.Option(
            "--set-share", help="With --data: write the estimated share into the folder (off_topic_share)."
        ),
    ] = False,
) -> None:
    """Validate the intent files and knowledge base (exit 0 when valid, 2 otherwise), then say what to
    expect: the operating point the folder calibrates to, and the intents most likely to be confused;
    with --data, the off-topic share of logged traffic against the one it assumes."""
    from bot.cli.folder_check import load_checked
    from bot.content.knowledge import load_knowledge
    from bot.content.small_talk import describe as describe_small_talk
    from bot.content.small_talk import is_built_in
    from bot.content.tone import load_tone

    if set_share and data is None:
        raise typer.BadParameter(
            "needs --data LOGS (a `bot logs export` file) to estimate from", param_hint="--set-share"
        )
    if syntax_only and data is not None:
        raise typer.BadParameter("reading logs needs the model; drop --syntax-only", param_hint="--data")
    settings = settings_for(intents)
    intent_set = load_checked(settings.intents_dir)  # every error of the intent files, not the first only
    passages = load_knowledge(settings.intents_dir / "knowledge")
    load_tone(settings.intents_dir)  # validated like the intents: a bad tone.yaml fails here, not at serve
    handoff = sum(1 for i in intent_set.intents if i.spec.handoff)
    files = len({i.path for i in intent_set.intents if not is_built_in(i)})
    out.print(
        f"ok: {len(intent_set.intents)} intents in {files} file{'s' if files != 1 else ''} "
        f"({handoff} always hand off), "
        f"{len(passages)} knowledge passages; version {intent_set.version}"
    )
    # which built-in small talk the folder uses, replaces or switched off (#27 item 5)
    for line in describe_small_talk(intent_set.small_talk) if intent_set.small_talk else ():
        out.print(line, markup=False)
    if not syntax_only:
        out.print(training_plan(settings, intent_set), markup=False)
        engine = expectations(settings, pairs)
        if data is not None:
            from bot.cli.share_check import check_share

            check_share(engine, data, set_share)


def training_plan(settings: Settings, intent_set: IntentSet) -> str:
    """What self-training will do for this folder version and about how long it takes, said before
    anything heavy loads (no torch here: the cache and the calibration file only)."""
    from bot.tuning.recipe import FOLD_STEPS, MODEL_STEPS, estimate_seconds
    from bot.tuning.self_training import applies, plan

    if not settings.self_train:
        return "self-training: off (BOT_SELF_TRAIN=false); routing with the configured model"
    if not applies(settings):
        return (
            "self-training: does not apply (the model is not the bundled one, or calibration.yaml was fitted "
            "on the stock model); routing with the configured model"
        )
    found = plan(settings, intent_set)
    if found.train_into is None and found.model == settings.model:
        return "self-training: too few texts to train on (it needs two intents with two texts each)"
    if found.train_into is None:
        return f"self-training: the trained model of this folder version is in the cache ({found.model})"
    seconds = estimate_seconds(found.texts, settings.training_threads, len(intent_set.intents))
    threads = settings.training_threads
    return (
        "self-training applies: this folder version has no trained model yet; `bot serve` routes with the "
        f"stock model at once and trains in the background, about {_duration(seconds)} for {found.texts:,} "
        f"texts on {threads} thread{'s' if threads != 1 else ''} (BOT_TRAINING_THREADS; cap: {MODEL_STEPS} "
        f"steps for the model, {FOLD_STEPS} for each cross-fit model). `bot check` itself does not train."
    )


def _duration(seconds: float) -> str:
    """'70 s' or '4 min', rounded as an estimate should be."""
    return f"{round(seconds / 10) * 10:.0f} s" if seconds < 120 else f"{round(seconds / 60):.0f} min"


def expectations(settings: Settings, limit: int) -> Engine:
    """The operating point the folder routes with and the intent pairs its own texts confuse; returns the
    engine it loaded."""
    from bot.tuning.confusion import confusable_pairs

    engine = engine_for(settings)  # says when the folder's trained model is not ready yet
    result = engine.live
    state = result.state
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
        low, point = calibration.expected_precision_low, calibration.expected_precision
        # the bound is the promise (#27 item 4): a small folder's point estimate is over-sure
        precision = f"at least {low:.2f} ({point:.2f} expected)" if low is not None else f"{point:.2f}"
        clarify = calibration.expected_clarify  # None: a calibration file from before #27
        asked = f", asks which intent is meant on {clarify:.0%} of messages" if clarify else ""
        out.print(
            f"  expected: answer precision {precision}, coverage {calibration.expected_coverage or 0.0:.2f}"
            f"{share}{asked} ({calibration.data})",
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
        return engine
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
    return engine


ROUTE_BATCH = 256  # messages encoded together when reading stdin: output flows while the rest is routed


@command()
def route(
    text: Annotated[
        str,
        typer.Argument(
            help="The customer's message, or - to read messages from stdin, one per line (blank lines skipped)."
        ),
    ],
    intents: IntentsOption = None,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print each decision as one JSON object on its own line (JSON lines)."),
    ] = False,
    learned: LearnedOption = None,
) -> None:
    """Route one message, or every line of stdin (one model load), and print the decisions.

    Each line is routed on its own, without conversation context; `bot shell` keeps context.
    """
    settings = settings_for(intents)
    engine = engine_for(settings)
    add_learned_examples(engine, settings, learned)
    if text != "-":
        print_decision(engine.route(text), text, as_json)
        return
    batch: list[str] = []
    for line in sys.stdin:
        if line.strip():
            batch.append(line.strip())
        if len(batch) >= ROUTE_BATCH:
            print_many(engine, batch, as_json)
            batch = []
    print_many(engine, batch, as_json)


def print_many(engine: Engine, texts: list[str], as_json: bool) -> None:
    """Route `texts` in one encoder call; one line per message (`route intent confidence text`) or JSON."""
    if not texts:
        return
    for text, decision in zip(texts, engine.route_many(texts), strict=True):
        if as_json:
            sys.stdout.write(json.dumps({"text": text, **asdict(decision)}, ensure_ascii=False) + "\n")
        else:
            out.print(
                f"{decision.route:<8} {decision.intent or '-':<30} {decision.confidence:.2f}  {text}",
                markup=False,
                highlight=False,
            )
    sys.stdout.flush()


def print_decision(decision: Decision, text: str, as_json: bool) -> None:
    """One decision in full: route, intent, confidence, answer, reason and the candidates."""
    if as_json:
        sys.stdout.write(json.dumps({"text": text, **asdict(decision)}, ensure_ascii=False) + "\n")
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


@command()
def shell(intents: IntentsOption = None, learned: LearnedOption = None) -> None:
    """Talk to the router line by line (like `rasa shell`): the model loads once, each line is routed with
    the previous one as context and shows route, intent, confidence and answer. /help lists commands;
    /exit or Ctrl-D leaves."""
    from bot.cli.shell import run

    settings = settings_for(intents)
    engine = engine_for(settings)
    count = add_learned_examples(engine, settings, learned)
    state = engine.state
    err.print(
        f"bot shell: {len(state.intents.intents)} intents, {len(state.passages)} knowledge passages"
        + (f", {count} learned examples" if count else "")
        + f" from {settings.intents_dir}. Type a message; /help for commands, /exit or Ctrl-D to leave.",
        markup=False,
        highlight=False,
    )
    interactive = sys.stdin.isatty()
    if interactive:
        import readline  # noqa: F401  (line editing and history for input())
    run(engine, out, input, prompt="you> " if interactive else "")
