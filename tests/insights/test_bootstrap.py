"""Drafting a folder from past conversations: clusters, answers, knowledge entries, and a folder that loads
and routes its own questions (the real encoder)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bot.config import Settings
from bot.content.intents import load_intents
from bot.content.knowledge import load_knowledge
from bot.errors import BotError
from bot.insights import bootstrap
from bot.insights.bootstrap import assign, cluster_history, question_key
from bot.insights.bootstrap_answers import good_answer, pick_answer
from bot.insights.bootstrap_folder import Source, as_template, intent_entry, prepare, write_folder
from bot.insights.history import HistoryError
from tests.insights import bootstrap_fixtures as fx


@pytest.fixture(scope="module")
def drafted(bundled_encoder):
    """The fixture history (every question asked twice, the one-off once) drafted with the real encoder."""
    pairs = [pair for pair in fx.rows()[:-1] for _ in range(2)] + [fx.ONE_OFF]
    return cluster_history([q for q, _ in pairs], [a for _, a in pairs], bundled_encoder.encode, min_size=3)


def topic_of(text: str) -> str:
    return next(name for name, (questions, _) in fx.TOPICS.items() if text in questions)


def test_each_topic_is_one_draft_with_its_answer(drafted) -> None:
    assert len(drafted.drafts) == len(fx.TOPICS)
    for draft in drafted.drafts:
        topics = {topic_of(drafted.distinct[i]) for i in draft.members}
        assert len(topics) == 1, (draft.name, topics)
        [topic] = topics
        assert draft.answer == fx.TOPICS[topic][1]
        assert draft.size == 2 * len(draft.members)
        # six questions a topic: the examples are EXAMPLES of them, less any near-copy of one taken
        assert 3 <= len(draft.examples) <= bootstrap.EXAMPLES
        assert set(draft.examples) <= {drafted.distinct[i] for i in draft.members}
        assert 0.6 <= draft.mean_similarity <= 1 and 0 <= draft.tight_share <= 1
    assert drafted.messages == 2 * (len(fx.rows()) - 1) + 1
    assert sum(d.size for d in drafted.drafts) + drafted.unassigned == drafted.messages


def test_a_one_off_question_with_a_good_answer_becomes_knowledge(drafted) -> None:
    assert [(k.question, k.answer) for k in drafted.knowledge] == [fx.ONE_OFF]


def test_the_folder_loads_and_routes_its_own_questions(
    drafted, bundled_encoder, tmp_path: Path, cache_dir
) -> None:
    from bot.routing.engine import Engine

    folder = tmp_path / "drafts"
    prepare(folder, force=False)
    write_folder(drafted, folder, Source("history.csv", 37, 0))
    intents = load_intents(folder)  # what `bot check` validates: names, templates, limits
    assert {d.name for d in drafted.drafts} <= set(intents.names)
    [passage] = load_knowledge(folder / "knowledge")
    assert passage.title == fx.ONE_OFF[0]
    text = (folder / "drafts.yaml").read_text()
    assert "purity estimate: mean similarity" in text and "of the history" in text
    # the history's messages in no draft: the share of traffic the folder plans to leave unanswered
    assert intents.off_topic_share == round(drafted.unassigned / drafted.messages, 2)
    engine = Engine(
        Settings(intents_dir=folder, cache_dir=cache_dir, self_calibrate=False), encoder=bundled_encoder
    )
    engine.load()
    name_of = {topic_of(drafted.distinct[d.members[0]]): d.name for d in drafted.drafts}
    for topic, (questions, _) in fx.TOPICS.items():
        for question in questions:
            assert engine.route(question).candidates[0].intent == name_of[topic], question


def test_prepare_refuses_a_folder_with_files_unless_forced(tmp_path: Path) -> None:
    (tmp_path / "old.yaml").write_text("intents: []\n")
    with pytest.raises(BotError, match="not empty; choose a new one or pass --force"):
        prepare(tmp_path, force=False)
    prepare(tmp_path, force=True)


def test_question_key_ignores_case_punctuation_greetings_and_thanks() -> None:
    assert (
        question_key("Hi, where is my card?? Thanks!")
        == question_key("where is my CARD")
        == "where is my card"
    )
    assert question_key("thanks") == "thanks"  # a message that is only thanks stays itself


def test_assignment_in_chunks_matches_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(50, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    centroids = vectors[:3]
    whole = assign(vectors, centroids, 0.2)
    monkeypatch.setattr(bootstrap, "CHUNK", 7)
    chunked = assign(vectors, centroids, 0.2)
    assert np.array_equal(whole[0], chunked[0]) and np.allclose(whole[1], chunked[1])
    assert whole[0][0] == 0 and (whole[0] == -1).any()  # a centroid owns itself; far rows stay out


def test_the_representative_answer_is_nearest_the_answers_centre() -> None:
    vectors = {"a": [1.0, 0.0], "b": [0.8, 0.6], "c": [0.6, 0.8], "d": [0.0, 1.0]}

    def encode(texts: list[str]) -> np.ndarray:
        return np.asarray([vectors[t] for t in texts], dtype=np.float32)

    assert pick_answer(["a", "b", "c", "d"], encode) in {"b", "c"}
    assert pick_answer(["a", "d", "d", "d"], encode) == "d"  # repeats weigh
    assert pick_answer(["only"], encode) == "only" and pick_answer([], encode) is None


@pytest.mark.parametrize(
    ("answer", "good"),
    [
        ("Cards arrive within five working days of your order, anywhere in the UK.", True),
        ("Done!", False),
        ("Let me check that for you and I will come back in a minute or two.", False),
        ("Could you tell me which card it is and when you ordered it please?", False),
    ],
)
def test_good_answer(answer: str, good: bool) -> None:
    assert good_answer(answer) is good


def test_an_answer_with_template_syntax_is_shown_as_written(tmp_path: Path) -> None:
    answer = "Type {{ code }} in the app, or {% if %} nothing {# at all"
    draft = bootstrap.Draft(
        "pin", "Customers asking about a PIN.", ("pin?",), answer, 3, 0.5, 0.8, 0.5, 3, (0,)
    )
    (tmp_path / "a.yaml").write_text("intents:\n" + intent_entry(draft))
    [intent] = [i for i in load_intents(tmp_path).intents if i.name == "pin"]
    assert as_template(answer).startswith("{% raw %}")
    assert intent.spec.answer == as_template(answer)


def test_customer_text_cannot_close_the_review_pages_script(tmp_path: Path) -> None:
    from bot.insights.bootstrap_review import render

    hostile = "</SCRIPT><img src=x onerror=alert(1)> & </sCrIpT >"
    summary = {
        "source": "h.csv",
        "messages": 3,
        "unassigned": 0,
        "knowledge_entries": 0,
        "skipped": 0,
        "drafts": [{"name": "card", "examples": [hostile], "answer": hostile}],
    }
    page = render(summary, tmp_path)
    # only the page's own two script elements close; the JSON still holds the text exactly
    assert page.lower().count("</script") == 2 and "<img" not in page.lower()
    data = page.split('id="drafts-data">', 1)[1].split("</script>", 1)[0]
    assert json.loads(data)["drafts"][0]["examples"] == [hostile]


def test_question_key_keeps_words_of_every_script() -> None:
    assert question_key("Где моя карта?") == "где моя карта"
    assert question_key("我的卡在哪里") == "我的卡在哪里"
    assert question_key("أين بطاقتي") != question_key("Πού είναι η κάρτα μου;") != ""
    assert question_key("Hi, I haven\u2019t got my card") == "i haven't got my card"


def test_a_history_without_a_word_is_a_user_error() -> None:
    def encode(texts: list[str]) -> np.ndarray:
        return np.ones((len(texts), 4), dtype=np.float32)

    with pytest.raises(HistoryError, match="none of the 2 questions has a word in it"):
        cluster_history(["?!", "..."], [None, None], encode)
    found = cluster_history(["Где моя карта?"] * 3, [None] * 3, encode, min_size=3)
    assert found.messages == 3 and [d.size for d in found.drafts] == [3]


def test_control_characters_never_reach_the_yaml(tmp_path: Path) -> None:
    from bot.insights.history import clean_text

    assert clean_text("where\x7f is my\x85 card\x9f", "text", required=True) == "where is my card"
    assert clean_text("\x7f\x80", "answer", required=False) is None
    draft = bootstrap.Draft("card", "Customers\x7f asking.", ("card\x9f?",), None, 3, 0.5, 0.8, 0.5, 0, (0,))
    (tmp_path / "a.yaml").write_text("intents:\n" + intent_entry(draft))
    [intent] = [i for i in load_intents(tmp_path).intents if i.name == "card"]
    assert intent.spec.examples[0] == "card\x9f?"


@pytest.mark.parametrize(
    "answer",
    [
        "Type {{ code }} then {% endraw %} {{ 7 * 7 }}",
        "Type {%endraw%}{{ 7 * 7 }} or {%- endraw %} {{ 1 }} or {%+  endraw -%}",
    ],
)
def test_an_answer_that_ends_raw_still_renders_as_written(tmp_path: Path, answer: str) -> None:
    from bot.content.answers import compile_template

    assert compile_template(as_template(answer)).render(message="", intent="pin") == answer
    draft = bootstrap.Draft(
        "pin", "Customers asking about a PIN.", ("pin?",), answer, 3, 0.5, 0.8, 0.5, 3, (0,)
    )
    (tmp_path / "a.yaml").write_text("intents:\n" + intent_entry(draft))
    [intent] = [i for i in load_intents(tmp_path).intents if i.name == "pin"]  # what `bot check` loads
    assert intent.spec.answer == as_template(answer)


def test_draft_names_are_unique_even_against_a_numbered_one() -> None:
    def named(name: str) -> bootstrap.Draft:
        return bootstrap.Draft(name, "d", ("q",), None, 3, 0.5, 0.8, 0.5, 0, (0,))

    names = [d.name for d in bootstrap._unique_names([named(n) for n in ("card", "card", "card_2", "Card!")])]
    assert names == ["card", "card_2", "card_2_2", "card_3"]
