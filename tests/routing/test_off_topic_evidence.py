"""General off-topic evidence (#31 item 1): the shipped off-topic messages count as off-topic only where the
folder does not cover them, and the promise mixes them with the sibling evidence at `BOT_OOS_SIBLINGS`.
Real encoder, real FAISS; the arithmetic on synthetic outcomes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bot.config import Settings
from bot.content.off_topic_set import off_topic_texts
from bot.routing.promise import Outcome
from bot.routing.pseudo_queries import FROZEN_BIAS, Evidence, covered, covered_cut, raw_pseudo_scores
from bot.routing.scoring import intent_scores, top_two
from bot.routing.self_calibration import cache_key
from bot.routing.state import Scoring
from tests.conftest import write
from tests.routing.test_self_calibration import engine_on

# An assistant whose topics the shipped set also holds (weather, jokes, recipes): those lines are not off-topic
# for it. Our own examples; built-in small talk off, so only these texts count.
ASSISTANT = """\
small_talk: false
intents:
  - name: weather_forecast
    description: The user asks what the weather will be like, whether it will rain or be sunny somewhere.
    examples: ["what's the weather going to be today", "is it going to rain tomorrow in paris", "weather forecast for the weekend", "will it be sunny in berlin on friday"]
  - name: tell_joke
    description: The user wants to hear a joke or something funny.
    examples: ["tell me something funny", "do you know a joke", "make me laugh with a joke", "say a funny joke"]
  - name: find_recipe
    description: The user wants a recipe or asks how to cook a dish.
    examples: ["how do I make pancakes", "recipe for chicken curry", "give me a recipe for soup", "how do you cook risotto"]
  - name: set_alarm
    description: The user wants an alarm set for a time.
    examples: ["wake me up at 7", "set an alarm for 6 am", "alarm for half past eight tomorrow", "set my alarm for 5:30"]
  - name: play_music
    description: The user wants a song, artist or playlist played.
    examples: ["play some jazz", "put on my workout playlist", "play the latest taylor swift song", "I want to hear some rock music"]
"""
# lines of the shipped set this assistant answers
ITS_OWN = (
    "tell me a joke",
    "tell me another joke",
    "what's the weather like tomorrow",
    "will it rain this weekend in london",
    "weather in Chicago today",
    "give me a recipe for lasagna",
)


def covered_lines(engine) -> dict[str, bool]:
    """Each shipped line, and whether the folder's fit would leave it out as covered."""
    state, settings = engine.with_intents(engine.intents, calibration=None), engine.settings
    raw = Scoring(
        1.0, 0.0, settings.aggregation_weight, settings.aggregation_depth, settings.prototype_weight
    )
    evidence = Evidence.of(settings.model, state.intents)
    scored = raw_pseudo_scores(state, raw, evidence.query_rows(state))
    texts = list(off_topic_texts())
    _, top, _ = top_two(intent_scores(state, engine.encoder.encode(texts), raw))
    cut = covered_cut(scored.score_in[scored.right])
    return dict(zip(texts, covered(top, cut).tolist(), strict=True))


def test_what_the_folder_covers_is_not_counted_as_off_topic(tmp_path: Path, bundled_encoder) -> None:
    folder = write(tmp_path / "intents" / "assistant.yaml", ASSISTANT).parent
    engine = engine_on(folder, tmp_path / "cache", bundled_encoder)
    engine.load()
    lines = covered_lines(engine)
    assert all(lines[line] for line in ITS_OWN), [line for line in ITS_OWN if not lines[line]]
    # the rest of the set stays off-topic evidence: other industries, abuse, nonsense
    others = [covered for line, covered in lines.items() if line not in ITS_OWN]
    assert np.mean(others) < 0.1
    # and the fit used exactly the lines the filter kept
    state, settings = engine.with_intents(engine.intents, calibration=None), engine.settings
    pseudo = Evidence.of(settings.model, state.intents, engine.encoder).pseudo_queries(state, settings)
    assert pseudo.general_covered == sum(lines.values())
    assert len(pseudo.conf_general) == len(lines) - sum(lines.values())


def test_a_bank_keeps_nearly_all_of_the_shipped_set_as_off_topic(demo_engine) -> None:
    lines = covered_lines(demo_engine)
    assert np.mean(list(lines.values())) < 0.05


def test_the_promise_mixes_siblings_and_general_messages_at_the_stated_weight() -> None:
    bias = FROZEN_BIAS
    siblings_only = Outcome(0.6, 0.05, 0.2)
    mixed = Outcome(0.6, 0.05, 0.2, accepted_general=0.02, siblings=0.7)
    assert siblings_only.accepted(bias) == pytest.approx(bias.accepted_out * 0.2)
    assert mixed.accepted(bias) == pytest.approx(0.7 * bias.accepted_out * 0.2 + 0.3 * 0.02)
    rate = 0.2
    right = (1 - rate) * bias.right_in * 0.6
    answered = right + (1 - rate) * bias.wrong_in * 0.05 + rate * mixed.accepted(bias)
    assert mixed.precision(rate, bias) == pytest.approx(right / answered)
    # general messages refused more than siblings: the mixed promise is the higher, its bound below it
    assert mixed.precision(rate, bias) > siblings_only.precision(rate, bias)
    low = mixed.precision_low(200, rate, bias, general_count=400)
    assert 0.0 < low < mixed.precision(rate, bias)
    # weight 1 on siblings is the promise before #31, whatever the general messages did
    assert Outcome(0.6, 0.05, 0.2, accepted_general=0.5, siblings=1.0).precision(rate, bias) == pytest.approx(
        siblings_only.precision(rate, bias)
    )


def test_a_changed_sibling_weight_or_off_topic_set_refits(demo_engine) -> None:
    state, settings = demo_engine.state, demo_engine.settings
    plain = Evidence.of(settings.model, state.intents)
    general = Evidence.of(settings.model, state.intents, demo_engine.encoder)
    keys = {
        cache_key(state, settings, plain),
        cache_key(state, settings, general),
        cache_key(state, settings.with_overrides(oos_siblings=1.0), general),
    }
    assert len(keys) == 3
    assert Settings().oos_siblings == 0.7
