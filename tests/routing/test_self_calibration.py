"""Self-calibration from the intents folder alone: refit on change, reuse when unchanged, fall back on
folders too small to fit, and `bot check`'s report of confusable intents. Real encoder, real FAISS."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bot.config import Settings
from bot.routing.engine import Engine
from bot.tuning.confusion import confusable_pairs
from tests.conftest import write
from tests.tuning.test_evaluate import bot

HOME = """\
small_talk: false  # the test pins its intents: no built-in small talk (#27 item 5)
intents:
  - name: lights_on
    description: The user wants a light in the house switched on.
    examples: ["turn on the kitchen light", "switch the lamp on please", "lights on in the bedroom"]
  - name: lights_off
    description: The user wants a light in the house switched off.
    examples: ["turn off the hall light", "switch off all the lamps", "kill the lights in the study"]
  - name: weather
    description: The user asks what the weather will be like.
    examples: ["will it rain tomorrow", "how hot is it going to be today", "is it sunny this weekend"]
  - name: alarm_set
    description: The user wants an alarm set for a time.
    examples: ["wake me up at seven", "set an alarm for 6 30 am", "alarm for tomorrow at eight please"]
  - name: play_music
    description: The user wants some music played.
    examples: ["play some jazz", "put on my running playlist", "I want to hear the beatles"]
"""


def engine_on(folder: Path, cache: Path, encoder: object, **settings: object) -> Engine:
    return Engine(Settings(intents_dir=folder, cache_dir=cache, **settings), encoder=encoder)  # type: ignore[arg-type]


def test_self_calibration_is_refitted_on_change_and_reused_otherwise(tmp_path: Path, bundled_encoder) -> None:
    folder, cache = tmp_path / "intents", tmp_path / "cache"
    write(folder / "home.yaml", HOME)
    first = engine_on(folder, cache, bundled_encoder)
    assert first.load().operating_point == "self-calibration (fitted)"
    fitted = first.state.calibration
    assert fitted is not None and fitted.source == "self" and fitted.oos_rate == Settings().oos_rate
    assert first.state.policy.threshold == fitted.threshold  # it is what decides
    assert fitted.expected_precision is not None and fitted.intents_version == first.state.version

    again = engine_on(folder, cache, bundled_encoder)  # a restart: same folder, same model
    assert again.load().operating_point == "self-calibration (cached)"
    assert again.state.calibration == fitted

    write(folder / "home.yaml", HOME.replace("switched on.", "switched on, or brighter."))
    assert again.load().operating_point == "self-calibration (fitted)"  # a reload of a changed folder
    assert (
        again.state.calibration is not None
        and again.state.calibration.intents_version != fitted.intents_version
    )


def test_a_calibration_file_wins_and_self_calibration_can_be_turned_off(
    tmp_path: Path, bundled_encoder
) -> None:
    folder, cache = tmp_path / "intents", tmp_path / "cache"
    write(folder / "home.yaml", HOME)
    off = engine_on(folder, cache, bundled_encoder, self_calibrate=False)
    assert off.load().operating_point == "defaults" and off.state.calibration is None
    assert off.state.policy.threshold == Settings().threshold
    write(
        folder / "calibration.yaml",
        f"model_id: {off.model_id}\nslope: 10.0\ncenter: 0.5\nthreshold: 0.6\nmargin: 0.05\n",
    )
    labelled = engine_on(folder, cache, bundled_encoder)
    assert labelled.load().operating_point == "calibration.yaml"
    assert labelled.state.policy.threshold == 0.6


@pytest.mark.parametrize("count", [1, 2])
def test_a_folder_too_small_to_fit_keeps_the_stated_defaults(
    tmp_path: Path, bundled_encoder, caplog: pytest.LogCaptureFixture, count: int
) -> None:
    folder, cache = tmp_path / "intents", tmp_path / "cache"
    text = HOME.split("  - name: weather")[0] if count == 2 else HOME.split("  - name: lights_off")[0]
    write(folder / "home.yaml", text)
    engine = engine_on(folder, cache, bundled_encoder)
    with caplog.at_level(logging.INFO, logger="bot.routing.self_calibration"):
        result = engine.load()
    assert result.operating_point.startswith("defaults (too few") and engine.state.calibration is None
    assert engine.state.policy.threshold == Settings().threshold
    assert "self-calibration skipped" in caplog.text and f"{count} intents" in caplog.text
    assert engine.route("turn on the kitchen light").candidates[0].intent == "lights_on"


OVERLAP = """\
small_talk: false  # the test pins its intents: no built-in small talk (#27 item 5)
intents:
  - name: card_delivery
    description: The customer wants to know when their new card will arrive.
    examples: ["when will my card arrive", "my card has not come yet"]
  - name: card_tracking
    description: The customer wants to know when their new card arrives and where it is now.
    examples: ["where is my card right now", "when does my card arrive"]
  - name: exchange_rate
    description: The customer asks which exchange rate is used for foreign currency.
    examples: ["what rate do you use for euros"]
"""


def test_confusable_pairs_name_the_overlapping_intents(tmp_path: Path, bundled_encoder) -> None:
    write(tmp_path / "intents" / "cards.yaml", OVERLAP)
    engine = engine_on(tmp_path / "intents", tmp_path / "cache", bundled_encoder)
    engine.load()
    pairs = confusable_pairs(engine.state)
    assert pairs, "two intents with the same description must collide"
    assert {pairs[0].intent, pairs[0].other} == {"card_delivery", "card_tracking"}
    assert all("exchange_rate" not in (p.intent, p.other) for p in pairs)
    assert pairs[0].collisions and pairs[0].collisions[0].text in OVERLAP


@pytest.mark.slow
def test_bot_check_reports_the_operating_point_and_the_colliding_texts(tmp_path: Path) -> None:
    write(tmp_path / "intents" / "cards.yaml", OVERLAP)
    done = bot("check", "--intents", str(tmp_path / "intents"), cache=tmp_path / "cache")
    assert done.returncode == 0, done.stderr
    assert "ok: 3 intents in 1 file (" in done.stdout
    assert "operating point (" in done.stdout and "answer when confidence >=" in done.stdout
    assert "card_delivery -> card_tracking" in done.stdout or "card_tracking -> card_delivery" in done.stdout
    quick = bot("check", "--syntax-only", "--intents", str(tmp_path / "intents"), cache=tmp_path / "cache")
    assert quick.returncode == 0 and "operating point" not in quick.stdout
