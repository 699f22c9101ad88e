"""New-intent discovery: cluster messages no intent took, and draft an intent for each cluster.

Pure numpy/scikit-learn on vectors from an encoder passed in, so it is testable without a database or an
engine. Agglomerative clustering with average linkage on cosine distance needs no cluster count: a group
forms when its messages are, on average, closer than `distance_threshold` to each other.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from bot.routing.encoder import Encoder

# Average cosine distance under which messages count as one topic. On the bundled MiniLM, 20 paraphrases
# of one question sit 0.58 apart on average, unrelated customer questions 0.87: 0.75 keeps such a topic
# whole without pulling strangers in (tests/test_review_discovery.py plants one).
DEFAULT_DISTANCE = 0.75
DEFAULT_MIN_SIZE = 3
MAX_MESSAGES = 3000  # average linkage needs an n x n distance matrix: keep it in tens of megabytes
REPRESENTATIVES = 5
_CHAT_WORDS = frozenset({"hi", "hello", "thanks", "thank", "please", "just", "im", "ive", "dont", "cant"})

Nearest = Callable[[np.ndarray], list[tuple[str, float]]]
"""Maps unit vectors (rows) to the nearest existing intent and its score, one pair per row."""


@dataclass(frozen=True)
class Cluster:
    """A group of similar messages, with a drafted intent for it."""

    size: int  # messages, counting repeats of the same text
    messages: tuple[str, ...]  # distinct texts, most central first
    nearest_intent: str | None
    nearest_score: float | None
    name: str
    description: str
    yaml: str


def _normalise(text: str) -> str:
    return " ".join(text.casefold().split())


def keywords(texts: Sequence[str], background: Sequence[str], n: int = 3) -> list[str]:
    """Words frequent in `texts` and rarer in `background` (document frequencies, add-one smoothed)."""

    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    def words(text: str) -> set[str]:
        found = re.findall(r"[a-z0-9]+", text.casefold().replace("'", ""))
        return {w for w in found if len(w) > 2 and w not in ENGLISH_STOP_WORDS and w not in _CHAT_WORDS}

    inside = Counter(w for t in texts for w in words(t))
    outside = Counter(w for t in background for w in words(t))
    scored = {
        w: (count / len(texts)) * np.log((len(background) + 1) / (outside[w] + 1))
        for w, count in inside.items()
    }
    return [w for w, _ in sorted(scored.items(), key=lambda item: (-item[1], item[0]))[:n]]


def draft_yaml(name: str, description: str, examples: Sequence[str]) -> str:
    """An intent entry to paste under `intents:` (JSON strings are valid YAML double-quoted scalars)."""
    lines = [f"  - name: {name}", f"    description: {json.dumps(description, ensure_ascii=False)}"]
    lines.append("    examples:")
    lines.extend(f"      - {json.dumps(e, ensure_ascii=False)}" for e in examples)
    lines.append('    # answer: "..."   (without an answer the intent hands off to a person)')
    return "\n".join(lines) + "\n"


def cluster_messages(
    texts: Sequence[str],
    encoder: Encoder,
    *,
    nearest: Nearest | None = None,
    distance_threshold: float = DEFAULT_DISTANCE,
    min_size: int = DEFAULT_MIN_SIZE,
) -> list[Cluster]:
    """Clusters of at least `min_size` messages, largest first; repeats of a text count towards the size."""
    from sklearn.cluster import AgglomerativeClustering  # heavy: only when someone asks for clusters

    counts: Counter[str] = Counter()
    first_seen: dict[str, str] = {}
    for text in texts[:MAX_MESSAGES]:
        key = _normalise(text)
        if key:
            counts[key] += 1
            first_seen.setdefault(key, text.strip())
    keys = list(counts)
    if sum(counts.values()) < min_size:
        return []
    distinct = [first_seen[k] for k in keys]
    vectors = np.asarray(encoder.encode(distinct), dtype=np.float32)
    if len(keys) == 1:  # everyone asked the very same thing: one group, nothing to cluster
        labels = np.zeros(1, dtype=int)
    else:
        labels = AgglomerativeClustering(
            n_clusters=None, metric="cosine", linkage="average", distance_threshold=distance_threshold
        ).fit_predict(vectors)

    groups = [np.flatnonzero(labels == label) for label in np.unique(labels)]
    groups = [g for g in groups if sum(counts[keys[i]] for i in g) >= min_size]
    if not groups:
        return []
    centroids = np.stack([vectors[g].mean(axis=0) for g in groups])
    centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
    near: list[tuple[str | None, float | None]] = (
        list(nearest(centroids)) if nearest is not None else [(None, None)] * len(groups)
    )

    clusters = []
    for group, centroid, (intent, score) in zip(groups, centroids, near, strict=True):
        order = group[np.argsort(-(vectors[group] @ centroid))]
        members = [distinct[i] for i in order]
        words = keywords(members, distinct)
        name = "_".join(words[:3]) or "new_intent"
        description = (
            f"The customer asks about {', '.join(words) or 'this topic'}, "
            f"for example: {members[0].rstrip('?.!')}."
        )
        clusters.append(
            Cluster(
                size=sum(counts[keys[i]] for i in group),
                messages=tuple(members),
                nearest_intent=intent,
                nearest_score=None if score is None else round(float(score), 4),
                name=name,
                description=description,
                yaml=draft_yaml(name, description, members[:REPRESENTATIVES]),
            )
        )
    return sorted(clusters, key=lambda c: (-c.size, c.name))
