"""New-intent discovery on the real encoder: a planted topic no intent covers comes out as one cluster."""

from __future__ import annotations

import numpy as np
import yaml

from bot.insights.discovery import cluster_messages, keywords

CRYPTO = [
    "can I buy bitcoin in the app",
    "do you support cryptocurrency trading",
    "how do I purchase crypto with my account",
    "is it possible to buy ethereum here",
    "I want to invest in bitcoin through Larkspur",
    "can I hold crypto in my wallet",
    "does the bank let me trade cryptocurrencies",
    "where can I buy bitcoin with my balance",
    "can I sell my bitcoin in the app",
    "do you offer a crypto wallet",
    "how to buy btc using my card",
    "crypto trading available?",
    "can I transfer bitcoin to my account",
    "I'd like to buy some ethereum",
    "is there a way to invest in crypto",
    "when will you add cryptocurrency",
    "can I convert my pounds into bitcoin",
    "buy dogecoin in app?",
    "does larkspur support bitcoin",
    "how can I start trading crypto",
]
OTHER = [
    "my card hasn't arrived yet",
    "what is the exchange rate for euros",
    "I was charged twice for one coffee",
    "how do I change my PIN",
    "can I get a refund for this purchase",
    "why was my transfer declined",
    "I lost my phone, what do I do",
    "what are your opening hours",
    "the app keeps crashing on login",
    "how do I close my account",
    "can I order a second card for my partner",
    "is there a fee for ATM withdrawals abroad",
    "I forgot my password",
    "how long do international transfers take",
    "can I get a mortgage with you",
    "what's the weather like tomorrow",
    "do you have a branch in Leeds",
    "please update my address",
    "I want to speak to a manager",
    "my salary has not shown up",
]


def test_a_planted_topic_is_one_cluster_with_its_paraphrases(bundled_encoder) -> None:
    traffic = [text for pair in zip(CRYPTO, OTHER, strict=True) for text in pair]
    traffic += CRYPTO[:3]  # repeats count towards the size, not as separate messages
    calls: list[int] = []

    def nearest(vectors: np.ndarray) -> list[tuple[str, float]]:
        calls.append(len(vectors))
        return [("exchange_rate", 0.42)] * len(vectors)

    clusters = cluster_messages(traffic, bundled_encoder, nearest=nearest)

    crypto = [c for c in clusters if set(c.messages) & set(CRYPTO)]
    assert len(crypto) == 1, [c.messages for c in crypto]
    (cluster,) = crypto
    assert set(cluster.messages) == set(CRYPTO)
    assert cluster.size == len(CRYPTO) + 3 and clusters[0] is cluster  # the largest comes first
    assert calls == [len(clusters)]
    assert (cluster.nearest_intent, cluster.nearest_score) == ("exchange_rate", 0.42)

    assert any(word in cluster.name for word in ("bitcoin", "crypto")), cluster.name
    drafted = yaml.safe_load("intents:\n" + cluster.yaml)["intents"][0]
    assert drafted["name"] == cluster.name and drafted["description"] == cluster.description
    assert drafted["examples"] == list(cluster.messages[:5])


def test_too_little_traffic_gives_no_clusters(bundled_encoder) -> None:
    assert cluster_messages([], bundled_encoder) == []
    assert cluster_messages(["hello", "hello"], bundled_encoder) == []


def test_keywords_prefer_words_that_set_a_group_apart() -> None:
    group = ["buy bitcoin now", "bitcoin price", "sell bitcoin"]
    background = [*group, "card price", "card arrived", "card now"]
    assert keywords(group, background, n=1) == ["bitcoin"]
