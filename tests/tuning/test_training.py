"""`bot train`: a tiny real fine-tuning run yields a model folder the engine loads, under a new model id."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import Settings
from bot.content.intents import load_intents
from bot.tuning.training import TrainingConfig, contrastive_loss, fine_tune, margin_loss, reviewed_examples
from tests.conftest import write
from tests.tuning.test_evaluate import bot

TINY = """\
small_talk: false  # the test pins its intents: no built-in small talk (#27 item 5)
intents:
  - name: card_arrival
    description: The customer ordered a card and wants to know when it arrives.
    examples: ["Where is my new card?", "My card has not come yet"]
    answer: Cards arrive in 3-5 working days.
  - name: exchange_rate
    description: The customer asks which exchange rate we use.
    examples: ["What rate do you use for euros?", "How do you convert currencies?"]
    answer: We use the interbank rate.
  - name: lost_card
    description: The customer lost their card or it was stolen.
    examples: ["I lost my card", "Someone stole my card"]
    answer: We froze it.
"""


def test_contrastive_loss_prefers_grouped_embeddings() -> None:
    import torch

    labels = torch.tensor([0, 0, 1, 1])
    grouped = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    mixed = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.9, 0.1], [0.1, 0.9]])
    assert contrastive_loss(grouped, labels, 20.0) < contrastive_loss(mixed, labels, 20.0)


def test_margin_loss_asks_for_a_lead_not_just_the_top_place() -> None:
    import math

    import torch

    intents = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    labels = torch.tensor([0])
    # the text is nearer its own intent either way; the loss falls as that lead grows
    narrow = torch.tensor([[math.cos(0.70), math.sin(0.70)]])  # cosines 0.76 vs 0.64
    wide = torch.tensor([[math.cos(0.20), math.sin(0.20)]])  # cosines 0.98 vs 0.20
    assert margin_loss(wide, labels, intents, 30.0, 0.35) < margin_loss(narrow, labels, intents, 30.0, 0.35)
    # with a margin, a narrow lead still costs about as much as losing without one
    without = margin_loss(narrow, labels, intents, 30.0, 0.0)
    assert margin_loss(narrow, labels, intents, 30.0, 0.35) > without + 5.0


@pytest.mark.slow
def test_tiny_training_run_gives_a_loadable_model_with_a_new_id(tmp_path: Path, bundled_encoder) -> None:
    from bot.routing.encoders.torch_backend import SentenceTransformerEncoder

    folder = write(tmp_path / "intents" / "bank.yaml", TINY).parent
    result = fine_tune(
        "bundled", load_intents(folder), tmp_path / "model", TrainingConfig(epochs=1, progress=False)
    )
    assert result.steps >= 1 and result.texts == 12  # 3 x (name, description, 2 examples)
    tuned = SentenceTransformerEncoder(str(result.path))
    assert tuned.model_id == result.model_id != bundled_encoder.model_id
    vectors = tuned.encode(["where is my card", "what rate for dollars"])
    assert vectors.shape == (2, bundled_encoder.dim)


@pytest.mark.slow
def test_train_command_from_a_csv(tmp_path: Path) -> None:
    folder = write(tmp_path / "intents" / "bank.yaml", TINY).parent
    data = write(
        tmp_path / "more.csv", "text,category\nmy card is late,card_arrival\ncard got stolen,lost_card\n"
    )
    result = bot(
        "train", "--intents", str(folder), "--data", str(data), "--out", str(tmp_path / "m"), "--epochs", "1",
        cache=tmp_path / "cache",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "BOT_MODEL=" in result.stdout and (tmp_path / "m" / "modules.json").is_file()
    assert "training" in result.stderr  # the progress bar goes to stderr
    from bot.store import db  # type: ignore[attr-defined,unused-ignore]

    if not hasattr(db, "reviewed_examples"):  # until the review store serves them: one line, exit 2
        missing = bot("train", "--intents", str(folder), "--data", "reviewed", cache=tmp_path / "cache")
        assert missing.returncode == 2 and missing.stderr.count("\n") == 1


def test_reviewed_examples_come_from_the_review_store(tmp_path: Path) -> None:
    from bot.store.db import make_engine, session_scope, upgrade
    from bot.store.examples import remember
    from bot.tuning.training import TrainingError

    settings = Settings(database_url=f"sqlite:///{tmp_path / 'r.db'}")
    database = make_engine(settings.database_url)
    upgrade(database)
    with pytest.raises(TrainingError, match="no reviewed examples yet"):
        reviewed_examples(settings)
    with session_scope(database) as session:
        remember(session, intent="card_arrival", text="where is the plastic", source="review")
        remember(session, intent="card_arrival", text="card not here", source="ticket")
    assert reviewed_examples(settings) == {"card_arrival": ["where is the plastic", "card not here"]}
