"""`bot check` reports every error of the intent files in one run (#27 item 11), not the first one only:
each answer template's mistakes, each intent's schema error, names defined twice; exit code 2."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from bot.cli import app
from tests.conftest import write

CARDS = """intents:
  - name: card_arrival
    description: A new card has not arrived.
    answer: "Hi {{ metadata.first_name }}! It comes in {{ days | shout }} days."
  - name: card_fees
    description: What a card costs.
    answer: "It is free, {{ mesage | uper }}."
  - name: card_ok
    description: A valid one between them.
    answer: "Fine."
  - name: card_pin
    description: The PIN.
    answr: "In the app."
"""
MORE = """intents:
  - name: card_ok
    description: The same name again.
  - name: top_up
    description: Adding money.
    answer: "{% if message %}Top up in the app"
"""


def test_check_lists_every_template_and_answer_error_of_the_folder(tmp_path: Path) -> None:
    write(tmp_path / "cards.yaml", CARDS)
    write(tmp_path / "more.yaml", MORE)
    result = CliRunner().invoke(app, ["check", "--syntax-only", "--intents", str(tmp_path)])
    assert result.exit_code == 2 and result.stdout == ""
    cards, more = tmp_path / "cards.yaml", tmp_path / "more.yaml"
    assert result.stderr.splitlines() == [
        f"error: {cards}:4: answer of 'card_arrival': unknown filter 'shout' (did you mean 'sort' or "
        "'count'?); see Jinja2's built-in filters and tests",
        f"error: {cards}:4: answer of 'card_arrival': unknown name 'days'; templates may use message, "
        "intent, metadata",
        f"error: {cards}:4: answer of 'card_arrival': metadata.first_name may be missing: write "
        "{% if metadata.first_name %}...{% endif %} or {{ metadata.first_name | default('...') }}",
        f"error: {cards}:7: answer of 'card_fees': unknown filter 'uper' (did you mean 'upper'?); see "
        "Jinja2's built-in filters and tests",
        f"error: {cards}:7: answer of 'card_fees': unknown name 'mesage' (did you mean 'message'?); "
        "templates may use message, intent, metadata",
        f"error: {cards}:13: unknown key 'answr' (did you mean 'answer'?); allowed: name, description, "
        "title, examples, answer, threshold, handoff, tags",
        f"error: {more}:2: duplicate intent name 'card_ok'; first defined at {cards}:8",
        f"error: {more}:6: answer of 'top_up': template syntax error: Unexpected end of template. Jinja "
        "was looking for the following tags: 'elif' or 'else' or 'endif'. The innermost block that needs "
        "to be closed is 'if'.",
        f"8 errors in 2 files of {tmp_path}",
    ]
