"""Conversation rules and follow-ups as plain code: no database, no encoder (a table of cases)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.chat.rules import ANGRY_HANDOFF_MESSAGE, NONE_OF_THESE, ConversationRules, check_choice
from bot.config import Settings
from bot.content.tone import GENERIC_ANGRY, load_tone
from bot.errors import IntentFileError, InvalidInputError
from bot.routing.context import RouteContext, read_together, wants_context
from bot.routing.policy import Decision
from bot.store.models import Conversation
from tests.conftest import ROOT, write

RULES = ConversationRules(Settings(anger_threshold=0.1, handoff_message="A person will reply."))


def decision(route: str, intent: str | None = None, anger: float = 0.0, **extra: object) -> Decision:
    return Decision(
        route=route,  # type: ignore[arg-type]
        intent=intent,
        confidence=0.9,
        candidates=(),
        reason="why.",
        threshold=0.75,
        margin=0.025,
        anger=anger,
        answer=f"{route} answer",
        **extra,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("status", "streak", "routed", "expected_route", "expected_escalation", "answer"),
    [
        ("bot", 0, decision("answer", "card_arrival"), "answer", None, "answer answer"),
        ("handoff", 0, decision("answer", "card_arrival"), "handoff", "with_agent", ""),
        # an angry customer hears an apology, not the everyday handoff line
        ("bot", 0, decision("answer", "card_arrival", anger=0.3), "handoff", "angry", ANGRY_HANDOFF_MESSAGE),
        ("bot", 0, decision("retrieve"), "retrieve", None, "retrieve answer"),
        ("bot", 1, decision("retrieve"), "handoff", "repeated_fallback", "A person will reply."),
        ("bot", 1, decision("handoff", anger=0.5), "handoff", "angry", ANGRY_HANDOFF_MESSAGE),
        # a handoff intent's own answer (e.g. a complaint's) was written for this: it is kept
        ("bot", 0, decision("handoff", "complaint", anger=0.5), "handoff", "angry", "handoff answer"),
    ],
)
def test_conversation_rules(
    status: str,
    streak: int,
    routed: Decision,
    expected_route: str,
    expected_escalation: str | None,
    answer: str,
) -> None:
    conversation = Conversation(id="c" * 32, channel="web", meta={}, status=status, fallback_streak=streak)
    final, escalation = RULES.apply(conversation, routed, "my card?", chosen=False)
    assert (final.route, escalation, final.answer) == (expected_route, expected_escalation, answer)
    assert conversation.last_user_text == "my card?"


def test_rules_remember_clarify_options_and_fallback_streak() -> None:
    conversation = Conversation(id="c" * 32, channel="web", meta={})
    RULES.apply(conversation, decision("clarify", options=("a", "b")), "top up?", chosen=False)
    assert (conversation.pending_options, conversation.pending_text) == (["a", "b"], "top up?")
    RULES.apply(conversation, decision("handoff"), "blah", chosen=False)
    assert (conversation.pending_options, conversation.fallback_streak) == ([], 1)
    RULES.apply(conversation, decision("answer", "a"), "a", chosen=True)
    assert conversation.fallback_streak == 0 and conversation.last_user_text == "blah"  # a pick keeps context


def test_a_clarify_pick_must_be_offered() -> None:
    check_choice("a", ["a", "b"])
    with pytest.raises(InvalidInputError, match="'c' was not offered; allowed: a, b"):
        check_choice("c", ["a", "b"])
    with pytest.raises(InvalidInputError, match="there is no open clarify question"):
        check_choice("c", [])


def test_something_else_is_a_choice_only_while_a_question_is_open() -> None:
    check_choice(NONE_OF_THESE, ["a", "b"])
    with pytest.raises(InvalidInputError, match="there is no open clarify question"):
        check_choice(NONE_OF_THESE, [])


@pytest.mark.parametrize(
    ("routed", "text", "previous", "expected"),
    [
        (decision("handoff"), "and when will it arrive?", "I ordered a card", True),
        (decision("answer", "card_arrival"), "and when will it arrive?", "I ordered a card", False),
        (decision("handoff", "human_agent"), "a person please", "I ordered a card", False),
        (decision("handoff"), "and when will it arrive?", None, False),
        (decision("handoff"), "one two three four five six seven eight nine", "I ordered a card", False),
        (decision("clarify"), "how do I top up", "My new card still hasn't arrived", False),  # a reading
        (decision("retrieve"), "is there a chequebook?", "how do I top up", False),  # the knowledge base's
    ],
)
def test_follow_ups_lean_on_the_previous_message(
    routed: Decision, text: str, previous: str | None, expected: bool
) -> None:
    assert wants_context(routed, text, RouteContext(previous_user_text=previous)) is expected


def test_a_follow_up_reads_together_only_when_that_answers() -> None:
    alone = decision("handoff")
    assert read_together(alone, decision("clarify")) is alone
    together = read_together(alone, decision("answer", "card_arrival"))
    assert together.context_used and together.intent == "card_arrival"
    assert together.reason.endswith("(read together with the previous message)")


def test_tone_phrases_come_from_the_folder(tmp_path: Path) -> None:
    assert load_tone(tmp_path).angry == GENERIC_ANGRY and load_tone(tmp_path).source == "generic"
    write(tmp_path / "tone.yaml", "angry: [This is outrageous]\ncalm: [Just asking]\n")
    assert load_tone(tmp_path).angry == ("This is outrageous",)
    write(tmp_path / "tone.yaml", "angry: [This is outrageous]\ncalm: [Just asking]\nangri: [x]\n")
    with pytest.raises(IntentFileError, match=r"tone.yaml:3: unknown key 'angri'; allowed: angry, calm"):
        load_tone(tmp_path)
    write(tmp_path / "tone.yaml", "angry: [This is outrageous]\n")
    with pytest.raises(IntentFileError, match=r"tone.yaml:1: missing required key 'calm'"):
        load_tone(tmp_path)


def test_the_demo_bank_keeps_its_own_tone() -> None:
    tone = load_tone(ROOT / "intents")
    assert tone.source.endswith("tone.yaml") and any("bank" in phrase for phrase in tone.angry)
