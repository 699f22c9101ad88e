"""The engine with the real bundled encoder and real FAISS: routing, reload, cache, saved indexes."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from bot.config import Settings
from bot.errors import IntentFileError
from bot.routing.engine import Engine, RouteContext
from tests.conftest import FakeEncoder, write

SMALL = """\
small_talk: false  # the test pins its intents: no built-in small talk (#27 item 5)
intents:
  - name: card_arrival
    description: The customer ordered a card and wants to know when it arrives or where it is.
    examples: ["Where is my new card?"]
    answer: "Cards arrive in 3-5 working days{% if metadata.first_name %}, {{ metadata.first_name }}{% endif %}."
  - name: lost_or_stolen_card
    description: The customer lost their card or it was stolen.
    answer: "We have frozen your card; a colleague will call you."
    handoff: true
  - name: exchange_rate
    description: The customer asks which exchange rate we use for foreign currency.
    answer: "We use the interbank rate."
"""
FAQ = """\
entries:
  - question: Do you pay interest on savings?
    answer: Savings Pots earn 2% a year, paid monthly.
    source: https://larkspur.example/help/savings
"""


@pytest.fixture()
def small_engine(tmp_path: Path, bundled_encoder) -> Engine:
    write(tmp_path / "intents" / "bank.yaml", SMALL)
    write(tmp_path / "intents" / "knowledge" / "faq.yaml", FAQ)
    engine = Engine(
        Settings(intents_dir=tmp_path / "intents", cache_dir=tmp_path / "cache", threshold=0.5, margin=0.1),
        encoder=bundled_encoder,
    )
    engine.load()
    return engine


def test_routes_to_each_route_with_rendered_answers(small_engine: Engine) -> None:
    answer = small_engine.route("my new card still hasn't come", RouteContext(metadata={"first_name": "Ann"}))
    assert (answer.route, answer.intent) == ("answer", "card_arrival")
    assert answer.answer == "Cards arrive in 3-5 working days, Ann."
    assert (
        answer.model_id.startswith("all-MiniLM-L6-v2@")
        and answer.intents_version == small_engine.intents.version
    )

    handoff = small_engine.route("someone stole my card")
    assert (handoff.route, handoff.intent) == ("handoff", "lost_or_stolen_card")
    assert handoff.answer.startswith("We have frozen your card")

    retrieve = small_engine.route("what interest rate do I get on my savings?")
    assert retrieve.route == "retrieve" and retrieve.source == "https://larkspur.example/help/savings"
    assert retrieve.answer == "Savings Pots earn 2% a year, paid monthly."

    nothing = small_engine.route("how do I bake sourdough bread")
    assert (nothing.route, nothing.intent) == ("handoff", None)
    assert nothing.answer == small_engine.settings.handoff_message
    assert [c.confidence for c in nothing.candidates] == sorted(
        (c.confidence for c in nothing.candidates), reverse=True
    )


def test_short_follow_up_leans_on_the_previous_turn(small_engine: Engine) -> None:
    alone = small_engine.route("and when will it get here?")
    assert alone.route != "answer"
    followed = small_engine.route(
        "and when will it get here?", RouteContext(previous_user_text="I ordered a new card")
    )
    assert (followed.route, followed.intent, followed.context_used) == ("answer", "card_arrival", True)


def test_clarify_offers_the_close_intents(tmp_path: Path, bundled_encoder) -> None:
    write(
        tmp_path / "i" / "a.yaml",
        SMALL
        + "  - name: card_delivery_estimate\n    description: The customer wants to know how long card delivery takes.\n"
        "    answer: Delivery takes 3-5 working days.\n",
    )
    engine = Engine(
        Settings(intents_dir=tmp_path / "i", cache_dir=tmp_path / "c", margin=0.3), encoder=bundled_encoder
    )
    engine.load()
    decision = engine.route("when does my card arrive")
    assert decision.route == "clarify"
    assert set(decision.options) >= {"card_arrival", "card_delivery_estimate"}
    assert decision.answer.startswith("Did you mean: ")
    chosen = engine.answer_choice("card_delivery_estimate", "when does my card arrive")
    assert (chosen.route, chosen.intent, chosen.answer) == (
        "answer",
        "card_delivery_estimate",
        "Delivery takes 3-5 working days.",
    )


def test_bad_reload_keeps_the_live_set(small_engine: Engine) -> None:
    before = small_engine.intents.version
    path = small_engine.intents_dir / "bank.yaml"
    path.write_text(SMALL.replace("examples:", "exampels:"))
    with pytest.raises(IntentFileError, match=r"bank\.yaml:5: unknown key 'exampels'"):
        small_engine.load()
    assert small_engine.intents.version == before
    assert small_engine.route("my new card still hasn't come").intent == "card_arrival"


def test_reload_embeds_only_changed_texts(small_engine: Engine) -> None:
    path = small_engine.intents_dir / "bank.yaml"
    path.write_text(SMALL.replace("which exchange rate we use", "what exchange rate applies"))
    result = small_engine.load()
    assert result.embedded_texts == 1  # the one changed description; everything else came from the cache
    # a fresh engine on the same cache (a restart) embeds nothing
    restarted = Engine(small_engine.settings, encoder=small_engine.query_encoder)
    assert restarted.load().embedded_texts == 0


def test_extra_examples_route_without_touching_yaml(small_engine: Engine) -> None:
    text = "the plastic thingy from you guys, any news?"
    yaml_before = (small_engine.intents_dir / "bank.yaml").read_text()
    before = small_engine.route(text)
    assert before.route != "answer"
    small_engine.load(extra_examples={"card_arrival": [text]})
    after = small_engine.route(text)
    assert (after.route, after.intent) == ("answer", "card_arrival")
    assert after.candidates[0].score > before.candidates[0].score
    assert (small_engine.intents_dir / "bank.yaml").read_text() == yaml_before


def test_an_example_learned_during_a_reload_survives_it(small_engine: Engine) -> None:
    """The reload reads the learned examples under its lock: a teach that lands meanwhile is not undone."""
    learner: list[threading.Thread] = []

    def stored_examples() -> dict[str, list[str]]:
        # a reviewer teaches an example while this reload is reading the database
        thread = threading.Thread(target=small_engine.learn, args=("card_arrival", "where is my plastic"))
        thread.start()
        learner.append(thread)
        return {}  # the read was taken before that example was committed

    small_engine.load(extra_examples=stored_examples)
    learner[0].join(timeout=60)
    assert small_engine.extra_examples == {"card_arrival": ["where is my plastic"]}


def test_demo_bank_routes_the_quick_start_message(demo_engine: Engine) -> None:
    decision = demo_engine.route("my new card still hasn't come")
    assert (decision.route, decision.intent) == ("answer", "card_arrival")
    assert decision.answer == demo_engine.intents.get("card_arrival").template.render(  # type: ignore[union-attr]
        message="my new card still hasn't come", intent="card_arrival"
    )


def test_context_never_overrides_an_accepted_intent(small_engine: Engine) -> None:
    context = RouteContext(previous_user_text="my new card still hasn't come")
    decision = small_engine.route("someone stole my card", context)
    assert (decision.route, decision.intent, decision.context_used) == (
        "handoff",
        "lost_or_stolen_card",
        False,
    )


def test_retrieval_serves_the_matching_passage_even_when_sources_repeat(
    tmp_path: Path, bundled_encoder
) -> None:
    write(tmp_path / "i" / "bank.yaml", SMALL)
    write(
        tmp_path / "i" / "knowledge" / "faq.yaml",
        "entries:\n"
        "  - question: Do you pay interest on savings?\n    answer: Savings Pots earn 2% a year.\n"
        "    source: https://larkspur.example/help\n"
        "  - question: What does an arranged overdraft cost?\n    answer: Overdrafts cost 19.9% EAR.\n"
        "    source: https://larkspur.example/help\n",
    )
    engine = Engine(Settings(intents_dir=tmp_path / "i", cache_dir=tmp_path / "c"), encoder=bundled_encoder)
    engine.load()
    decision = engine.route("what does an arranged overdraft cost")
    assert (decision.route, decision.answer) == ("retrieve", "Overdrafts cost 19.9% EAR.")


def test_a_template_that_fails_on_odd_metadata_hands_off(tmp_path: Path, bundled_encoder) -> None:
    write(
        tmp_path / "i" / "bank.yaml",
        SMALL.replace(
            'answer: "We use the interbank rate."',
            'answer: "{% for t in metadata.tags %}{{ t }}{% endfor %} rate"',
        ),
    )
    engine = Engine(Settings(intents_dir=tmp_path / "i", cache_dir=tmp_path / "c"), encoder=bundled_encoder)
    engine.load()
    decision = engine.route("which exchange rate do you use", RouteContext(metadata={"tags": 5}))
    assert decision.route == "handoff" and "template" in decision.reason
    assert decision.answer == engine.settings.handoff_message


def test_a_left_out_example_scores_as_if_it_had_never_been_added(tmp_path: Path) -> None:
    from bot.content.intents import load_intents
    from bot.routing.scoring import intent_scores, left_out_rows
    from bot.routing.state import Scoring

    folder = write(tmp_path / "intents" / "bank.yaml", SMALL).parent
    engine = Engine(Settings(intents_dir=folder, cache_dir=tmp_path / "cache"), encoder=FakeEncoder())
    engine.load()
    base = load_intents(folder)
    extra = {
        "card_arrival": ["my card has still not come"],
        "lost_or_stolen_card": ["card stolen from my bag"],
    }
    texts = ["my card has still not come", "card stolen from my bag", "what rate for my card in euros"]
    labels = ["card_arrival", "lost_or_stolen_card", "exchange_rate"]
    queries = FakeEncoder().encode(texts)
    scoring = Scoring(1.0, 0.0, aggregation_weight=0.3, aggregation_depth=3, prototype_weight=0.3)
    full = engine.with_intents(base.with_extra_examples(extra), None)
    left_out = left_out_rows(full, texts, labels)
    assert left_out.rows.tolist() == [0, 1]  # the third message is no example
    got = intent_scores(full, queries, scoring, left_out)
    for row, (label, own) in enumerate(extra.items()):
        without = engine.with_intents(
            base.with_extra_examples({k: v for k, v in extra.items() if k != label}), None
        )
        expected = intent_scores(without, queries[row : row + 1], scoring)[0]
        np.testing.assert_allclose(got[row], expected, atol=1e-5)
        assert texts[row] == own[0]
    np.testing.assert_allclose(got[2], intent_scores(full, queries[2:], scoring)[0], atol=1e-6)
    seen = intent_scores(full, queries[:1], scoring)[0]
    assert seen[0] > got[0][0] + 0.1  # finding itself would have inflated its own intent's score


def test_calibration_id_names_the_scoring_in_effect(small_engine: Engine) -> None:
    """Without a calibration, the id follows the settings' scoring, so a changed setting shows in the log."""
    import dataclasses

    state = small_engine.state
    assert state.calibration is None and state.calibration_id.startswith("settings-")
    assert small_engine.route("where is my card").calibration_id == state.calibration_id
    moved = dataclasses.replace(state, scoring=dataclasses.replace(state.scoring, prototype_weight=0.5))
    assert moved.calibration_id.startswith("settings-") and moved.calibration_id != state.calibration_id
