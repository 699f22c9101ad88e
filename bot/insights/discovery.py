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

from bot.insights import drafts

if TYPE_CHECKING:
    from bot.routing.encoders import Encoder

# Average cosine distance under which messages count as one topic, and the similarity to its centre a
# message needs to stay in the topic. Chosen with scripts/bench/bench_discovery.py on BANKING77 train (10 intents
# removed from the demo folder, their messages fed as unmatched traffic): purity 0.70-0.73 at 0.60/0.60,
# which still keeps 15 of 20 paraphrases of one broad topic (tests/insights/test_discovery.py) in one
# draft; tighter splits such a topic into several drafts. Figures: docs/evaluation.md#discovery.
DEFAULT_DISTANCE = 0.6
DEFAULT_MIN_SIMILARITY = 0.6
DEFAULT_MIN_SIZE = 3
MAX_MESSAGES = 3000  # average linkage needs an n x n distance matrix: keep it in tens of megabytes
REPRESENTATIVES = 5
_CHAT_WORDS = frozenset({"hi", "hello", "thanks", "thank", "please", "just", "im", "ive", "dont", "cant"})

Nearest = Callable[[np.ndarray], list[tuple[str, float]]]
"""Maps unit vectors (rows) to the nearest existing intent and its score, one pair per row."""


@dataclass(frozen=True)
class Cluster:
    """A group of similar messages, with a drafted intent for it."""

    size: int  # messages, counting repeats of the same text: always sum(counts)
    messages: tuple[str, ...]  # distinct texts, most central first
    counts: tuple[int, ...]  # how often each of `messages` was sent, in the same order
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


def _centre(vectors: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The unit-length mean of `vectors`, each counted as often as its text was sent."""
    centre: np.ndarray = (vectors * weights[:, None]).sum(axis=0)
    return centre / max(float(np.linalg.norm(centre)), 1e-12)


def _core(group: np.ndarray, vectors: np.ndarray, weights: np.ndarray, min_similarity: float) -> np.ndarray:
    """`group` without the members farther than `min_similarity` from its centre, the centre recomputed
    without them until nobody else drops out (a stranger pulls the centre towards itself)."""
    while len(group) > 1 and min_similarity > 0:
        similarity = vectors[group] @ _centre(vectors[group], weights[group])
        kept = group[similarity >= min_similarity]
        if len(kept) == len(group):
            break
        group = kept
    return group


def cluster_messages(
    texts: Sequence[str],
    encoder: Encoder,
    *,
    nearest: Nearest | None = None,
    distance_threshold: float = DEFAULT_DISTANCE,
    min_size: int = DEFAULT_MIN_SIZE,
    min_similarity: float = DEFAULT_MIN_SIMILARITY,
) -> list[Cluster]:
    """Clusters of at least `min_size` messages, largest first; repeats of a text count towards the size.

    A message less than `min_similarity` (cosine) from its group's centre is left out of the group: average
    linkage lets a cluster keep a stranger as long as the average stays under the threshold, and a drafted
    intent with a stranger among its examples teaches the router the wrong thing. 0 keeps everyone.
    """
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
    labels = _labels(vectors, distance_threshold)
    weights = np.asarray([counts[k] for k in keys], dtype=np.float32)
    groups = [
        _core(np.flatnonzero(labels == label), vectors, weights, min_similarity)
        for label in np.unique(labels)
    ]
    groups = [g for g in groups if weights[g].sum() >= min_size]
    if not groups:
        return []
    centroids = np.stack([_centre(vectors[g], weights[g]) for g in groups])
    near: list[tuple[str | None, float | None]] = (
        list(nearest(centroids)) if nearest is not None else [(None, None)] * len(groups)
    )

    clusters = []
    for group, centroid, (intent, score) in zip(groups, centroids, near, strict=True):
        order = group[np.argsort(-(vectors[group] @ centroid))]
        members, sizes = [distinct[i] for i in order], [counts[keys[i]] for i in order]
        clusters.append(
            _draft(members, sizes, distinct, intent, None if score is None else round(float(score), 4))
        )
    return sorted(clusters, key=lambda c: (-c.size, c.name))


def _labels(vectors: np.ndarray, distance_threshold: float) -> np.ndarray:
    """A cluster label per distinct message: average-linkage clustering on cosine distance."""
    if len(vectors) == 1:  # everyone asked the very same thing: one group, nothing to cluster
        return np.zeros(1, dtype=int)
    from sklearn.cluster import AgglomerativeClustering  # heavy: only when someone asks for clusters

    labels: np.ndarray = AgglomerativeClustering(
        n_clusters=None, metric="cosine", linkage="average", distance_threshold=distance_threshold
    ).fit_predict(vectors)
    return labels


def _draft(
    members: list[str], counts: list[int], distinct: list[str], intent: str | None, score: float | None
) -> Cluster:
    """A cluster of `members` (closest to its centre first) with a drafted intent: name, description, YAML;
    `intent` and `score`: the existing intent nearest to it."""
    # the name and description come from the most central messages themselves (bot.insights.drafts); the
    # keywords only name a cluster whose central messages hold no telling phrase
    drafted = drafts.draft(members, distinct, fallback=keywords(members, distinct))
    name, description = drafted.name, drafted.description
    return Cluster(
        size=sum(counts),
        messages=tuple(members),
        counts=tuple(counts),
        nearest_intent=intent,
        nearest_score=score,
        name=name,
        description=description,
        yaml=draft_yaml(name, description, members[:REPRESENTATIVES]),
    )


def group_vectors(
    vectors: np.ndarray,
    weights: np.ndarray,
    *,
    distance_threshold: float = DEFAULT_DISTANCE,
    min_similarity: float = DEFAULT_MIN_SIMILARITY,
) -> list[np.ndarray]:
    """The groups `cluster_messages` forms (row indexes of `vectors`, strangers pruned), for a caller that
    encoded and counted the texts itself: `bot bootstrap` clusters a sample this way and assigns the rest."""
    labels = _labels(vectors, distance_threshold)
    return [
        _core(np.flatnonzero(labels == label), vectors, weights, min_similarity)
        for label in np.unique(labels)
    ]


def centre(vectors: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The unit-length mean of `vectors`, each counted `weights` times (a group's centroid)."""
    return _centre(vectors, weights)
