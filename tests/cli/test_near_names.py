"""A wrong intent name is reported with the names near it (#27 item 11): `bot eval`'s and `bot calibrate`'s
labels that are not intents, training labels skipped, learned examples `bot review export` cannot place,
and the API's message for an unknown intent."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from bot.config import Settings
from bot.content.suggest import did_you_mean, near_names, unknown_intent
from bot.routing.engine import Engine
from tests.conftest import FakeEncoder, write

FOLDER = """intents:
  - name: topping_up_by_card
    description: Adding money to the account with a card.
    examples: ["top up with my card", "add money by card"]
  - name: top_up_by_card_charge
    description: A fee for topping up by card.
    examples: ["fee for a card top up", "does a card top up cost"]
  - name: card_arrival
    description: A new card has not arrived.
    examples: ["my card has not come", "where is my new card"]
"""
NAMES = ("topping_up_by_card", "top_up_by_card_charge", "card_arrival", "lost_or_stolen_card")


@pytest.mark.parametrize(
    ("name", "near"),
    [
        ("top_up_by_card", ["topping_up_by_card", "top_up_by_card_charge"]),  # BANKING77's spelling
        ("card_arival", ["card_arrival"]),
        ("Card Arrival", ["card_arrival"]),  # only written differently: that one, alone
        ("lost_card", ["lost_or_stolen_card"]),
        ("exchange_rate", []),
    ],
)
def test_near_names(name: str, near: list[str]) -> None:
    assert near_names(name, NAMES) == near


def test_the_messages_name_what_was_meant() -> None:
    assert did_you_mean("card_arival", NAMES) == " (did you mean 'card_arrival'?)"
    assert did_you_mean("exchange_rate", NAMES) == ""
    assert unknown_intent("card_arival", NAMES) == (
        "unknown intent 'card_arival' (did you mean 'card_arrival'?); see GET /v1/intents"
    )


def test_eval_suggests_the_intent_a_label_may_mean(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "intents"
    write(folder / "a.yaml", FOLDER)
    data = write(
        tmp_path / "rows.csv",
        "text,category\nI want to top up by card,top_up_by_card\nstill no card,card_arrival\n"
        "what rate for euros,exchange_rate\n",
    )

    def fake_engine(intents: Path | None, extra: dict[str, list[str]]) -> Engine:  # no model to load
        engine = Engine(Settings(intents_dir=folder, cache_dir=tmp_path / "cache"), encoder=FakeEncoder())
        engine.load(extra_examples=extra)
        return engine

    monkeypatch.setattr("bot.cli.tuning.load_engine", fake_engine)
    result = CliRunner().invoke(app, ["eval", "--data", str(data), "--intents", str(folder), "--json"])
    assert result.exit_code == 0, result.output
    (warning,) = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert "2 labels in rows.csv are not intents of this folder" in warning
    assert (
        "exchange_rate, top_up_by_card (did you mean 'topping_up_by_card' or 'top_up_by_card_charge'?)"
        in (warning)
    )


def test_review_export_names_the_intent_a_learned_example_may_belong_to(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.cli.review import _warn_unknown

    write(tmp_path / "a.yaml", FOLDER)
    _warn_unknown({"card_arival": 2}, tmp_path)
    assert capsys.readouterr().err.strip() == (
        "warning: 2 learned example(s) of 'card_arival' not exported: no intent file defines it "
        "(did you mean 'card_arrival'?)"
    )
