"""`bot check` and `bot route`: validate a folder, route one message."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated

import typer
from rich.table import Table

from bot.cli.app import IntentsOption, JsonOption, command, engine_for, out, settings_for


@command()
def check(intents: IntentsOption = None) -> None:
    """Validate the intent files and knowledge base; exit 0 when valid, 2 otherwise."""
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
        f"ok: {len(intent_set.intents)} intents in {files} files ({handoff} always hand off), "
        f"{len(passages)} knowledge passages; version {intent_set.version}"
    )


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
