"""Discovery drafts (#27 item 10): a name from the central message's key phrase and a description a person
could have written, from the messages themselves (they were keywords: "insurance_dog_offer", "asks about
insurance, dog, offer")."""

from __future__ import annotations

import pytest

from bot.insights.drafts import describe, draft, key_phrase, reported

PETS = [
    "do you offer pet insurance for my dog",
    "is there insurance for dogs and cats",
    "does my insurance cover the vet for my dog",
    "can I insure my dog with you",
    "how much is pet insurance",
]
BACKGROUND = [
    *PETS,
    "my card hasn't arrived",
    "what is the exchange rate",
    "I lost my card",
    "insurance for my car",
]


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("can I buy bitcoin in the app", "asking whether they can buy bitcoin in the app"),
        ("Hi, can I get a mortgage with you?", "asking whether they can get a mortgage with us"),
        ("do you offer pet insurance for my dog", "asking whether we offer pet insurance for their dog"),
        (
            "does the bank let me trade cryptocurrencies",
            "asking whether the bank lets them trade cryptocurrencies",
        ),
        ("is there a mortgage calculator", "asking whether there is a mortgage calculator"),
        ("is it possible to buy ethereum here", "asking whether they can buy ethereum here"),
        ("am I eligible for an overdraft", "asking whether they are eligible for an overdraft"),
        ("how do I apply for a home loan", "asking how to apply for a home loan"),
        ("what are your opening hours", "asking what our opening hours are"),
        ("what is the exchange rate for euros", "asking what the exchange rate for euros is"),
        ("why was my transfer declined", "asking why their transfer was declined"),
        ("how long does it take to get a card", "asking how long it takes to get a card"),
        ("what mortgage rates do you have", "asking what mortgage rates we have"),
        ("I was charged twice for one coffee", "saying they were charged twice for one coffee"),
        ("my card hasn't arrived yet", "saying their card hasn't arrived yet"),
        ("I want to invest in bitcoin through Larkspur", "who want to invest in bitcoin through Larkspur"),
        ("please update my address", "asking us to update their address"),
    ],
)
def test_a_message_in_reported_speech(message: str, expected: str) -> None:
    found = reported(message)
    assert found is not None and " ".join(found) == expected


def test_the_description_reads_like_a_person_wrote_it_from_the_central_messages() -> None:
    assert describe(PETS) == (
        "Customers asking whether we offer pet insurance for their dog, or whether there is insurance for "
        "dogs and cats."
    )
    # a fragment at the centre gives way to the next message; nothing that reads as a sentence is quoted
    assert describe(["crypto trading available?", "can I buy bitcoin"]).startswith(
        "Customers asking whether they can buy bitcoin"
    )
    assert describe(["crypto?", "bitcoin!!"]) == "Customers writing things like “crypto” or “bitcoin”."
    # of a message's sentences, the one that holds a word telling the cluster apart (BANKING77 train)
    atm = describe(
        ["What do I do?  The ATM took my card.", "my card is stuck", "the ATM kept my card"], ["atm"]
    )
    assert atm == "Customers saying the ATM took their card, or the ATM kept their card."


def test_the_name_is_the_central_messages_key_phrase() -> None:
    # "offer" and "my" name nothing; "insurance for my car" elsewhere makes "insurance" alone less telling
    assert key_phrase(PETS[0], PETS, BACKGROUND) == ["pet", "insurance", "for", "dog"]
    drafted = draft(PETS, BACKGROUND, fallback=["insurance", "dog", "offer"])
    assert drafted.name == "pet_insurance_for_dog"
    # a central message without a telling word: the next one, else the keywords
    assert (
        draft(["hello there", "hello again"], ["hello there", "hello again", "x"], ["greeting"]).name
        == "greeting"
    )
