"""Anger detection (#27 item 2): jokes and everyday requests are not angry, real complaints still are, with
the demo bank's tone.yaml and with the generic phrases of a folder that has none (the shop)."""

from __future__ import annotations

import numpy as np
import pytest

from bot.routing.tone import ToneDetector
from tests.shop_support import shop_engine

NOT_ANGRY = (
    "tell me a joke",  # read as an angry complaint before #27 (anger 0.12 over a threshold of 0.10)
    "Tell me a joke please",
    "Do you know any funny jokes?",
    "Make me laugh",
    "What can you do?",
    "Thanks, that's all I needed",
    "Where is my order?",
    "my card didn't work, what do I do",
)
COMPLAINTS = (
    "This is absolutely ridiculous, you are the worst company ever, I am furious!!!",
    "Three weeks of waiting and nobody has bothered to reply. Disgraceful service!",
    "You charged me twice and now you ignore me. I'm sick of this, useless!",
    "I am fed up with your excuses, I'm reporting you to the ombudsman",
)


@pytest.mark.parametrize("folder", ["demo bank (tone.yaml)", "shop (generic phrases)"])
def test_jokes_and_requests_are_calm_and_complaints_angry(
    folder: str, request, bundled_encoder, cache_dir
) -> None:
    engine = (
        request.getfixturevalue("demo_engine")
        if folder.startswith("demo")
        else shop_engine(bundled_encoder, cache_dir)
    )
    assert (engine.state.tone_phrases.source == "generic") == folder.startswith("shop")
    threshold = engine.settings.anger_threshold
    texts = [*NOT_ANGRY, *COMPLAINTS]
    anger = {text: d.anger for text, d in zip(texts, engine.route_many(texts), strict=True)}
    assert {text: anger[text] for text in NOT_ANGRY if anger[text] > threshold} == {}
    assert {text: anger[text] for text in COMPLAINTS if anger[text] <= threshold} == {}


def test_identical_calm_and_angry_phrases_give_a_finite_zero() -> None:
    phrases = np.eye(3, dtype=np.float32)[:2]
    assert np.allclose(ToneDetector(phrases, phrases).anger(np.eye(3, dtype=np.float32)), 0.0)
