"""Drafting intents from a whole history of customer questions (`bot bootstrap`, #32).

New-intent discovery (bot/insights/discovery.py) clusters a few thousand unrouted messages with average
linkage, which needs an n x n distance matrix. A history has 100,000 messages, so here:
1. repeats are counted once (`question_key`: case, punctuation, a greeting in front and thanks at the end
   do not make a new question), and the distinct questions are encoded in batches;
2. a sample of at most `SAMPLE` distinct questions is clustered exactly as discovery does
   (`discovery.group_vectors`, tens of megabytes);
3. every question is assigned to the nearest sample centroid in chunks of `CHUNK` rows, kept when its
   cosine similarity reaches `min_similarity` (the radius discovery prunes strangers with); the centroids
   are then recomputed from all their members, and a cluster below `min_size` messages is dropped.
Memory is the vectors (distinct questions x 384 float32: 150 MB at 100,000) plus one chunk of scores.
Each cluster's name and description are written from its most central questions (bot/insights/drafts.py).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from bot.insights import discovery, drafts
from bot.insights.bootstrap_answers import Knowledge, pick_answer, pick_knowledge
from bot.insights.bootstrap_examples import pick_examples
from bot.insights.history import HistoryError

# Tighter than discovery's 0.60/0.60: a history holds every topic, neighbours included (card arrival and
# card delivery estimate), and a draft that mixes two teaches the router both, and makes the folder promise
# a precision its answers do not have (the self-calibration cannot see a draft's mix). Distance 0.30 is
# tight enough that drafts are pure enough for the precision the folder promises; five examples spread over
# a draft's messages (bootstrap_examples.py) let the self-calibration judge it on traffic like its own.
# Chosen on BANKING77 train with scripts/experiments/tune_bootstrap.py --split (labels only to score); the
# figures are in docs/evaluation.md, "Drafting a folder from history (#32)".
DISTANCE = 0.3
MIN_SIMILARITY = 0.7
SAMPLE = 5000
CHUNK = 8192
ENCODE_BATCH = 256
EXAMPLES = 5
PICKER = "spread"
TIGHT = 0.75  # a member this similar to its centroid is near the cluster's core (the purity estimate's share)
_GREETING = re.compile(r"^(?:(?:hi|hello|hey|good (?:morning|afternoon|evening)|please|ok|okay)\b[\s,!.]*)+")
_THANKS = re.compile(r"(?:[\s,.!]*\b(?:please|pls|thanks|thank you|thx|cheers)\b[\s.!]*)+$")

Progress = Callable[[int], None]
"""Called with how many more questions were encoded."""


@dataclass(frozen=True)
class Draft:
    """One drafted intent: what the folder gets, and the figures a reviewer judges it by."""

    name: str
    description: str
    examples: tuple[str, ...]
    answer: str | None  # the most representative agent answer, when the cluster's questions had answers
    size: int  # messages, repeats counted
    share: float  # of all the questions read
    mean_similarity: float  # members' mean cosine similarity to the centroid (repeats counted)
    tight_share: float  # share of members at similarity >= TIGHT
    answered: int  # members that had an agent answer
    members: tuple[int, ...]  # indexes of the distinct questions (`Result.distinct`), most central first


@dataclass(frozen=True)
class Result:
    """Drafts, knowledge entries and how much of the history they cover."""

    drafts: tuple[Draft, ...]
    knowledge: tuple[Knowledge, ...]
    messages: int
    distinct: tuple[str, ...]  # the distinct questions, as first written
    counts: tuple[int, ...]  # how often each was asked
    sampled: int  # distinct questions clustered exactly
    unassigned: int  # messages in no draft


def question_key(text: str) -> str:
    """What makes two questions the same one: lower case, words only, no greeting in front or thanks after."""
    # any script's letters and digits (\w): a question in Cyrillic, Greek, Arabic or CJK is a question too
    plain = " ".join(re.findall(r"[\w']+", text.casefold().replace("\u2019", "'")))
    core = _THANKS.sub("", _GREETING.sub("", plain)).strip()
    return core or plain


@dataclass
class _Counted:
    texts: list[str]
    counts: list[int]
    answers: list[list[str]]  # each distinct question's agent answers


def _count(questions: Sequence[str], answers: Sequence[str | None]) -> _Counted:
    index: dict[str, int] = {}
    counted = _Counted([], [], [])
    for text, answer in zip(questions, answers, strict=True):
        key = question_key(text)
        if not key:
            continue
        at = index.setdefault(key, len(counted.texts))
        if at == len(counted.texts):
            counted.texts.append(text)
            counted.counts.append(0)
            counted.answers.append([])
        counted.counts[at] += 1
        if answer:
            counted.answers[at].append(answer)
    return counted


def encode_all(
    texts: Sequence[str], encode: Callable[[list[str]], np.ndarray], progress: Progress
) -> np.ndarray:
    """Unit vectors for `texts`, encoded `ENCODE_BATCH` at a time into one preallocated float32 array."""
    vectors: np.ndarray | None = None
    for start in range(0, len(texts), ENCODE_BATCH):
        batch = np.asarray(encode(list(texts[start : start + ENCODE_BATCH])), dtype=np.float32)
        if vectors is None:
            vectors = np.empty((len(texts), batch.shape[1]), dtype=np.float32)
        vectors[start : start + len(batch)] = batch
        progress(len(batch))
    assert vectors is not None
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors /= np.maximum(norms, 1e-12)
    return vectors


def assign(
    vectors: np.ndarray, centroids: np.ndarray, min_similarity: float
) -> tuple[np.ndarray, np.ndarray]:
    """(nearest centroid or -1, its similarity) per row, `CHUNK` rows at a time to bound memory."""
    owner = np.full(len(vectors), -1, dtype=np.int64)
    similarity = np.zeros(len(vectors), dtype=np.float32)
    for start in range(0, len(vectors), CHUNK):
        scores = vectors[start : start + CHUNK] @ centroids.T
        best = scores.argmax(axis=1)
        top = scores[np.arange(len(best)), best]
        owner[start : start + CHUNK] = np.where(top >= min_similarity, best, -1)
        similarity[start : start + CHUNK] = top
    return owner, similarity


def runner_up(vectors: np.ndarray, centroids: np.ndarray, owner: np.ndarray) -> np.ndarray:
    """Per row, its similarity to the nearest centroid other than its owner's (`CHUNK` rows at a time):
    how near the row is to another draft (-1 with a single centroid)."""
    second = np.full(len(vectors), -1.0, dtype=np.float32)
    if len(centroids) < 2:
        return second
    for start in range(0, len(vectors), CHUNK):
        scores = vectors[start : start + CHUNK] @ centroids.T
        own = owner[start : start + CHUNK]
        rows = np.flatnonzero(own >= 0)
        scores[rows, own[rows]] = -np.inf
        second[start : start + CHUNK] = scores.max(axis=1)
    return second


def default_min_size(messages: int) -> int:
    """A draft needs 3 messages, or one in a thousand of a long history: a topic worth an intent recurs."""
    return max(3, math.ceil(messages / 1000))


def _sample_groups(
    vectors: np.ndarray, weights: np.ndarray, sample: int, seed: int, distance: float, min_similarity: float
) -> tuple[np.ndarray, int]:
    """Centroids of the groups found in a random sample of the distinct questions, and the sample's size."""
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(len(vectors), size=min(sample, len(vectors)), replace=False))
    groups = discovery.group_vectors(
        vectors[chosen], weights[chosen], distance_threshold=distance, min_similarity=min_similarity
    )
    groups = [g for g in groups if len(g) >= 2 or weights[chosen][g].sum() >= 2]
    if not groups:
        return np.empty((0, vectors.shape[1]), dtype=np.float32), len(chosen)
    centroids = [discovery.centre(vectors[chosen][g], weights[chosen][g]) for g in groups]
    return np.stack(centroids).astype(np.float32), len(chosen)


def cluster_history(
    questions: Sequence[str],
    answers: Sequence[str | None],
    encode: Callable[[list[str]], np.ndarray],
    *,
    progress: Progress = lambda _: None,
    sample: int = SAMPLE,
    seed: int = 0,
    min_size: int | None = None,
    distance: float = DISTANCE,
    min_similarity: float = MIN_SIMILARITY,
    examples: int = EXAMPLES,
    picker: str = PICKER,
) -> Result:
    """Draft intents and knowledge entries from `questions` (redacted) and their agents' `answers`.

    `encode` maps a list of texts to vectors (the engine's encoder); `progress` hears each encoded batch.
    """
    counted = _count(questions, answers)
    if not counted.texts:
        raise HistoryError(
            f"none of the {len(questions):,} questions has a word in it (only punctuation or symbols); "
            "nothing to draft from"
        )
    messages = sum(counted.counts)
    size_needed = min_size if min_size is not None else default_min_size(messages)
    vectors = encode_all(counted.texts, encode, progress)
    weights = np.asarray(counted.counts, dtype=np.float32)
    centroids, sampled = _sample_groups(vectors, weights, sample, seed, distance, min_similarity)
    owner = np.full(len(vectors), -1, dtype=np.int64)
    closeness = np.zeros(len(vectors), dtype=np.float32)
    if len(centroids):
        owner, closeness = assign(vectors, centroids, min_similarity)
    kept = [label for label in range(len(centroids)) if weights[owner == label].sum() >= size_needed]
    lead = None  # how much nearer each question is to its own draft than to the next one: only `boundary`
    if picker == "boundary":  # reads it, and it costs a pass over every question and draft
        lead = closeness - runner_up(vectors, centroids[kept], _renumber(owner, kept))
    shared = (vectors, weights, counted, encode, messages)
    made = [
        _draft(np.flatnonzero(owner == label), *shared, wanted=examples, picker=picker, lead=lead)
        for label in kept
    ]
    made = _unique_names(sorted(made, key=lambda d: (-d.size, d.name)))
    covered = {i for d in made for i in d.members}
    drafted_answers = {d.answer for d in made if d.answer}  # a straggler of a draft: its answer is there
    knowledge = pick_knowledge(
        [(counted.texts[i], counted.answers[i]) for i in range(len(counted.texts)) if i not in covered],
        drafted_answers,
    )
    return Result(
        drafts=tuple(made),
        knowledge=tuple(knowledge),
        messages=messages,
        distinct=tuple(counted.texts),
        counts=tuple(counted.counts),
        sampled=sampled,
        unassigned=messages - sum(d.size for d in made),
    )


def _renumber(owner: np.ndarray, kept: list[int]) -> np.ndarray:
    """`owner` with the kept labels numbered 0.. in order, the others -1."""
    mapping = np.full(int(owner.max(initial=-1)) + 2, -1, dtype=np.int64)
    mapping[np.asarray(kept, dtype=np.int64)] = np.arange(len(kept))
    renumbered: np.ndarray = mapping[owner]  # owner -1 reads the last slot, which stays -1
    return renumbered


def _draft(
    members: np.ndarray,
    vectors: np.ndarray,
    weights: np.ndarray,
    counted: _Counted,
    encode: Callable[[list[str]], np.ndarray],
    messages: int,
    *,
    wanted: int,
    picker: str,
    lead: np.ndarray | None,
) -> Draft:
    """A draft for the distinct questions `members`: centroid from all of them, central ones first."""
    centroid = discovery.centre(vectors[members], weights[members])
    similarity = vectors[members] @ centroid
    order = members[np.argsort(-similarity)]
    sims = np.sort(similarity)[::-1]
    w = weights[order]
    texts = [counted.texts[i] for i in order]
    background = texts[:200] + counted.texts[:: max(1, len(counted.texts) // 2000)]
    drafted = drafts.draft(texts[:200], background, fallback=discovery.keywords(texts[:200], background))
    answered = [a for i in order for a in counted.answers[i]]
    return Draft(
        name=drafted.name,
        description=drafted.description,
        examples=tuple(
            texts[p]
            for p in pick_examples(order, w, vectors, wanted, picker, None if lead is None else lead[order])
        ),
        answer=pick_answer(answered, encode),
        size=int(w.sum()),
        share=round(float(w.sum()) / messages, 4),
        mean_similarity=round(float((sims * w).sum() / w.sum()), 3),
        tight_share=round(float(w[sims >= TIGHT].sum() / w.sum()), 3),
        answered=len(answered),
        members=tuple(int(i) for i in order),
    )


def _unique_names(found: list[Draft]) -> list[Draft]:
    """Drafts named apart: a second "card_arrival" becomes "card_arrival_2" (a reviewer merges or renames),
    or "_3" and on when a draft is itself called "card_arrival_2"."""
    used: set[str] = set()
    out = []
    for draft in found:
        base = re.sub(r"[^a-z0-9_]", "_", draft.name.lower()).strip("_")[:60] or "topic"
        if not base[0].isalpha():
            base = f"topic_{base}"
        name, number = base, 1
        while name in used:
            number += 1
            name = f"{base}_{number}"
        used.add(name)
        out.append(Draft(**{**draft.__dict__, "name": name}))
    return out
