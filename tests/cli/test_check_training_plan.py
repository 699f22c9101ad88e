"""`bot check` says, before anything heavy loads, what self-training will do and about how long (#26)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli.intents import training_plan
from bot.config import Settings
from bot.content.intents import load_intents
from bot.routing.pseudo_queries import SELF_TRAINING_FILE
from bot.routing.state import intent_texts
from bot.tuning.recipe import estimate_seconds
from bot.tuning.self_training import self_trained_path
from tests.cli.test_commands import bot
from tests.conftest import INTENTS, write

FOLDER = "intents:\n" + "".join(
    f"  - name: topic_{i}\n    description: Questions about topic {i}.\n    examples: [first {i}, second {i}]\n"
    for i in range(3)
)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    write(tmp_path / "intents" / "a.yaml", FOLDER)
    return Settings(
        intents_dir=tmp_path / "intents", cache_dir=tmp_path / "cache", torch_threads=1, self_train=True
    )


def test_a_new_folder_version_says_it_trains_in_the_background_and_how_long(settings: Settings) -> None:
    intents = load_intents(settings.intents_dir)
    texts = len(intent_texts(intents)[0])
    expected = estimate_seconds(texts, settings.training_threads, len(intents.intents))
    threads = f"{settings.training_threads} thread{'s' if settings.training_threads != 1 else ''}"
    line = training_plan(settings, intents)
    assert line.startswith(
        "self-training applies: this folder version has no trained model yet; `bot serve` routes with the "
        "stock model at once and trains in the background, about "
    )
    assert (
        f"about {round(expected / 10) * 10} s for {texts} texts on {threads} (BOT_TRAINING_THREADS; cap: "
        in line
    )


def test_a_trained_model_in_the_cache_is_named(settings: Settings) -> None:
    intents = load_intents(settings.intents_dir)
    path = self_trained_path(settings, intents)
    write(path / SELF_TRAINING_FILE, "{}")
    assert training_plan(settings, intents) == (
        f"self-training: the trained model of this folder version is in the cache ({path})"
    )


def test_off_too_small_and_not_applying(settings: Settings, tmp_path: Path) -> None:
    intents = load_intents(settings.intents_dir)
    off = settings.with_overrides(self_train=False)
    assert training_plan(off, intents).startswith("self-training: off (BOT_SELF_TRAIN=false)")
    small_folder = "small_talk: false\nintents:\n  - name: a\n    description: d\n    examples: [x]\n"
    write(tmp_path / "small" / "a.yaml", small_folder)  # no built-in small talk: one intent, one example
    small = settings.with_overrides(intents_dir=tmp_path / "small")
    assert training_plan(small, load_intents(small.intents_dir)).startswith("self-training: too few texts")
    shipped = settings.with_overrides(intents_dir=INTENTS)  # its calibration.yaml pins the stock model
    assert training_plan(shipped, load_intents(INTENTS)).startswith("self-training: does not apply")


def test_the_estimate_grows_with_the_folder_and_stays_bounded() -> None:
    """The largest folder the limits allow (2,000 intents, 10,000 examples) within 5 minutes on 2 cores."""
    demo, f150, largest = (
        estimate_seconds(410, 2, 82),
        estimate_seconds(1394, 2, 150),
        estimate_seconds(14_000, 2, 2000),
    )
    assert demo < f150 < largest
    assert largest <= 300
    assert estimate_seconds(410, 1, 82) > demo


def test_bot_check_says_it_before_the_operating_point() -> None:
    result = bot("check", "--intents", str(INTENTS), "--pairs", "0")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    plan = next(n for n, line in enumerate(lines) if line.startswith("self-training: "))
    assert lines[plan + 1].startswith("operating point")  # said before the engine loads
