"""Conversation rules and follow-ups as plain code: no database, no encoder (a table of cases)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from bot.chat.rules import (
    ANGRY_HANDOFF_MESSAGE,
    NONE_OF_THESE,
    PERSON_ON_THE_WAY,
    PERSON_WILL_REPLY,
    ConversationRules,
    check_choice,
)
from bot.config import Settings
from bot.content.tone import GENERIC_ANGRY, load_tone
from bot.errors import IntentFileError, InvalidInputError
from bot.routing.context import RouteContext, read_together, wants_context
from bot.routing.policy import Decision
from bot.store.models import Conversation
from tests.conftest import ROOT, write

PASSAGE_READING = "A knowledge passage matches with 0.80, 0.20 closer than the best intent, so the passage is the better match."
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
        # an agent claimed the conversation: the bot is quiet
        ("agent", 0, decision("answer", "card_arrival"), "handoff", "with_agent", ""),
        ("agent", 0, decision("retrieve", passage=2), "handoff", "with_agent", ""),
        # an angry customer hears an apology, not the everyday handoff line
        ("bot", 0, decision("answer", "card_arrival", anger=0.3), "handoff", "angry", ANGRY_HANDOFF_MESSAGE),
        ("bot", 0, decision("retrieve"), "retrieve", None, "retrieve answer"),
        # a second message nothing answered (no passage, as "none of these") goes to a person ...
        ("bot", 1, decision("retrieve"), "handoff", "repeated_fallback", "A person will reply."),
        # ... but a knowledge passage that answered is not a fallback (#27 item 1)
        ("bot", 1, decision("retrieve", passage=2), "retrieve", None, "retrieve answer"),
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


@pytest.mark.parametrize(
    ("routed", "expected_route", "answer"),
    [
        # what the bot answers confidently it still answers, and says a person is on the way
        (decision("answer", "card_arrival"), "answer", f"answer answer\n\n{PERSON_ON_THE_WAY}"),
        (decision("retrieve", passage=0), "retrieve", f"retrieve answer\n\n{PERSON_ON_THE_WAY}"),
        # anything else gets the short line, never silence, and stays on the ticket (route handoff)
        (decision("clarify", options=("a", "b")), "handoff", PERSON_WILL_REPLY),
        (decision("retrieve"), "handoff", PERSON_WILL_REPLY),
        (decision("handoff"), "handoff", PERSON_WILL_REPLY),
        (decision("handoff", "human_agent"), "handoff", PERSON_WILL_REPLY),
        (decision("answer", "card_arrival", anger=0.3), "handoff", PERSON_WILL_REPLY),
    ],
)
def test_while_a_ticket_waits_the_bot_answers_what_it_is_sure_of(
    routed: Decision, expected_route: str, answer: str
) -> None:
    """#27 item 1: a ticket no agent has claimed yet (status 'handoff') never leaves the customer in silence."""
    conversation = Conversation(id="c" * 32, channel="web", meta={}, status="handoff", fallback_streak=1)
    final, escalation = RULES.apply(conversation, routed, "is my money safe?", chosen=False)
    assert (final.route, escalation, final.answer, final.options) == (
        expected_route,
        "awaiting_agent",
        answer,
        (),
    )
    assert conversation.status == "handoff"  # the writer, not the rules, opens tickets; none is opened here


def test_two_knowledge_answers_in_a_row_are_not_two_fallbacks() -> None:
    conversation = Conversation(id="c" * 32, channel="web", meta={})
    for text in ("How do I switch my current account?", "Do you have branches?"):
        final, escalation = RULES.apply(conversation, decision("retrieve", passage=1), text, chosen=False)
        assert (final.route, escalation, conversation.fallback_streak) == ("retrieve", None, 0)
    RULES.apply(conversation, decision("retrieve"), "none of these", chosen=True)  # nothing answered
    assert conversation.fallback_streak == 1
    # a clarify question between two "none of these" neither counts nor breaks the streak
    RULES.apply(conversation, decision("clarify", options=("a", "b")), "top up?", chosen=False)
    final, escalation = RULES.apply(conversation, decision("retrieve"), "none of these", chosen=True)
    assert (final.route, escalation) == ("handoff", "repeated_fallback")


def test_a_handoff_reason_says_what_happened_before_what_routing_read() -> None:
    """#27 item 8: the ticket header of an escalated knowledge hit does not say the passage answered."""
    conversation = Conversation(id="c" * 32, channel="web", meta={})
    routed = dataclasses.replace(decision("retrieve", passage=1, anger=0.4), reason=PASSAGE_READING)
    final, escalation = RULES.apply(
        conversation, routed, "useless bank, where are your branches?!", chosen=False
    )
    assert (final.route, escalation) == ("handoff", "angry")
    assert final.reason == (
        f"Handed to a person: the message reads as an angry complaint (anger 0.40). Routing alone read: {PASSAGE_READING}"
    )


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
