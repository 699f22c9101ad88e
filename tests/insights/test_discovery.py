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
    # one draft for the topic, no stranger in it; a paraphrase far from the centre may be left out
    assert set(cluster.messages) <= set(CRYPTO) and len(cluster.messages) >= 14, cluster.messages
    assert clusters[0] is cluster  # the largest comes first
    # the size is what the card lists: every distinct text with how often it was sent
    repeated = {
        text: count for text, count in zip(cluster.messages, cluster.counts, strict=True) if count > 1
    }
    assert repeated == {text: 2 for text in CRYPTO[:3] if text in cluster.messages}
    assert cluster.size == sum(cluster.counts) == len(cluster.messages) + len(repeated)
    assert calls == [len(clusters)]
    assert (cluster.nearest_intent, cluster.nearest_score) == ("exchange_rate", 0.42)

    assert any(word in cluster.name for word in ("bitcoin", "crypto")), cluster.name
    # drafted from the central messages, not listed keywords (#27 item 10: "asks about bitcoin, buy, crypto")
    assert cluster.description.startswith("Customers asking "), cluster.description
    drafted = yaml.safe_load("intents:\n" + cluster.yaml)["intents"][0]
    assert drafted["name"] == cluster.name and drafted["description"] == cluster.description
    assert drafted["examples"] == list(cluster.messages[:5])


MORTGAGE = [
    "can I get a mortgage with you",
    "do you offer mortgages",
    "how do I apply for a home loan",
    "what mortgage rates do you have",
    "I want to buy a house, can you lend me the money",
    "is there a mortgage calculator",
    "can I remortgage my flat with Larkspur",
    "do you do buy to let mortgages",
    "how much can I borrow for a house",
    "mortgage options for first time buyers",
]


def test_a_nearby_question_does_not_join_a_topic(bundled_encoder) -> None:
    """#18: the mortgage cluster drafted 'Do you pay any interest on savings?' as a mortgage example."""
    savings = "Do you pay any interest on savings?"
    clusters = cluster_messages([*MORTGAGE, savings, *OTHER], bundled_encoder)
    mortgage = [c for c in clusters if set(c.messages) & set(MORTGAGE)]
    assert len(mortgage) == 1 and len(mortgage[0].messages) >= 8
    assert set(mortgage[0].messages) <= set(MORTGAGE), mortgage[0].messages
    # and unrelated leftovers (a password, a PIN, an address) no longer make a "topic" of their own
    assert all(set(c.messages) <= set(MORTGAGE) for c in clusters), [c.messages for c in clusters]


class FixedVectors:
    """An encoder with hand-placed vectors, to test the clustering rule itself."""

    def __init__(self, vectors: dict[str, list[float]]) -> None:
        self.vectors = {k: np.asarray(v, dtype=np.float32) / np.linalg.norm(v) for k, v in vectors.items()}

    def encode(self, texts: list[str], progress: bool = False) -> np.ndarray:
        return np.stack([self.vectors[t] for t in texts])


def test_a_stranger_that_average_linkage_keeps_is_left_out() -> None:
    # five messages on one axis and one at cosine 0.45 to them: 0.55 apart on average, under the 0.6 linkage
    # threshold, so average linkage alone puts it in the group; its similarity to the centre is under 0.6
    topic = {f"topic {i}": [1.0, 0.01 * i, 0.0] for i in range(5)}
    stranger = {"stranger": [0.45, 0.0, float(np.sqrt(1 - 0.45**2))]}
    encoder = FixedVectors({**topic, **stranger})
    texts = [*topic, "stranger"]

    (kept,) = cluster_messages(texts, encoder, min_similarity=0.0)  # type: ignore[arg-type]
    assert "stranger" in kept.messages  # what discovery drafted before #18

    (pruned,) = cluster_messages(texts, encoder)  # type: ignore[arg-type]
    assert set(pruned.messages) == set(topic) and pruned.size == 5 and pruned.counts == (1,) * 5


def test_too_little_traffic_gives_no_clusters(bundled_encoder) -> None:
    assert cluster_messages([], bundled_encoder) == []
    assert cluster_messages(["hello", "hello"], bundled_encoder) == []


def test_keywords_prefer_words_that_set_a_group_apart() -> None:
    group = ["buy bitcoin now", "bitcoin price", "sell bitcoin"]
    background = [*group, "card price", "card arrived", "card now"]
    assert keywords(group, background, n=1) == ["bitcoin"]
