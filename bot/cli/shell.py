"""`bot shell`: talk to the router line by line, as a customer would, with the model loaded once.

Like `rasa shell`: each line is routed with the previous line as conversation context (a short follow-up
borrows it, as in a chat), and the reply shows the route, intent, confidence and the answer a customer
would read. Slash commands explain the last decision or start a new conversation.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from bot.routing.context import RouteContext
from bot.routing.engine import Engine
from bot.routing.policy import Decision

HELP = """commands:
  /why     why the last message was routed so, with the intents' scores
  /reset   start a new conversation (the next message has no previous one)
  /help    this list
  /exit    leave (also /quit, Ctrl-D)
after a clarify question, type the number of an option to pick it"""


@dataclass
class Conversation:
    """What the shell remembers between lines: the previous message and the last decision."""

    previous_text: str | None = None
    last: Decision | None = None


def show(decision: Decision, out: Console, anger_threshold: float) -> None:
    """The route, intent and confidence on one line, then what the customer would read."""
    intent = decision.intent or "no intent"
    notes = []
    if decision.context_used:
        notes.append("read together with the previous message")
    if decision.route == "retrieve" and decision.source:
        notes.append(f"from {decision.source}")
    if decision.anger > anger_threshold:  # the chat rule (bot/chat/rules.py) escalates above it
        notes.append(f"angry ({decision.anger:.2f}): in a chat a person takes over")
    extra = f"  ({'; '.join(notes)})" if notes else ""
    out.print(
        f"[bold]{decision.route}[/bold]  {intent}  confidence {decision.confidence:.2f}{extra}",
        highlight=False,
    )
    out.print(f"bot: {decision.answer}", markup=False, highlight=False)
    if decision.route == "clarify":
        for number, option in enumerate(decision.options, start=1):
            out.print(f"  {number}. {option}", markup=False, highlight=False)


def explain(decision: Decision | None, out: Console) -> None:
    """The last decision's reason and candidates."""
    if decision is None:
        out.print("nothing routed yet", highlight=False)
        return
    out.print(f"reason: {decision.reason}", markup=False, highlight=False)
    table = Table("intent", "score", "confidence", title="candidates")
    for candidate in decision.candidates:
        table.add_row(candidate.intent, f"{candidate.score:.3f}", f"{candidate.confidence:.3f}")
    out.print(table)
    if decision.retrieval_score is not None:
        out.print(f"best knowledge passage: {decision.retrieval_score:.2f}", highlight=False)


def reply(engine: Engine, state: Conversation, text: str) -> Decision:
    """Route one customer line (or a clarify pick by number) and remember it for the next."""
    last = state.last
    if (
        last is not None
        and last.route == "clarify"
        and text.isdigit()
        and 1 <= int(text) <= len(last.options)
    ):
        # the customer picked an option: answered as the chat does, for the question that was asked
        question = state.previous_text or text
        decision = engine.answer_choice(last.options[int(text) - 1], question)
        state.last = decision
        return decision
    decision = engine.route(text, RouteContext(previous_user_text=state.previous_text))
    state.previous_text = text
    state.last = decision
    return decision


def run(engine: Engine, out: Console, read: Callable[[str], str], *, prompt: str) -> None:
    """Read lines with `read` until Ctrl-D or /exit; route each and print the reply on `out`."""
    state = Conversation()
    anger_threshold = engine.settings.anger_threshold
    while True:
        try:
            line = read(prompt).strip()
        except (EOFError, KeyboardInterrupt):
            if prompt:
                sys.stdout.write("\n")
            return
        if not line:
            continue
        command = line.casefold()
        if command in ("/exit", "/quit"):
            return
        if command == "/help":
            out.print(HELP, markup=False, highlight=False)
        elif command == "/why":
            explain(state.last, out)
        elif command == "/reset":
            state = Conversation()
            out.print("new conversation", highlight=False)
        elif line.startswith("/") and " " not in line:
            out.print(f"unknown command {line}; /help lists them", markup=False, highlight=False)
        else:
            show(reply(engine, state, line), out, anger_threshold)
