"""Scoring as functions over an immutable `RoutingState`: per-intent scores, candidates, decisions.

Routing, calibration, evaluation and the benchmark scripts all call these directly, with any state
(the live one or one built for an experiment) and any `Scoring`, so none of them reaches into the engine.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bot.routing.policy import Candidate, Decision, decide
from bot.routing.state import RoutingState, Scoring, intent_texts

_SEARCH_K = 512  # nearest intent vectors looked at per message; far more than any intent needs


@dataclass(frozen=True)
class LeftOut:
    """Intent vectors to ignore while scoring some queries: query `rows[k]` does not see vector `vectors[k]`.

    Calibrating or evaluating on messages that are also intent examples must not let a message find itself
    (a cosine of 1.0 would promise confidence the router never has on a new message): each such message is
    scored leave-one-out, as if its own example had not been added.
    """

    rows: np.ndarray
    vectors: np.ndarray


def intent_scores(
    state: RoutingState,
    queries: np.ndarray,
    scoring: Scoring | None = None,
    left_out: LeftOut | None = None,
) -> np.ndarray:
    """Aggregated score of every intent for each query row (`-inf` where no vector was near)."""
    scoring = scoring or state.scoring
    hits = state.intent_index.search(queries, _SEARCH_K)
    sims = np.full((len(queries), state.intent_index.size + 1), -np.inf, dtype=np.float32)
    rows = np.arange(len(queries))[:, None]
    sims[rows, np.where(hits.ids >= 0, hits.ids, state.intent_index.size)] = hits.scores
    sims[:, -1] = -np.inf  # padding column for `gather == -1`
    if left_out is not None:
        sims[left_out.rows, left_out.vectors] = -np.inf
    per_intent = sims[:, state.gather]  # (queries, intents, vectors of that intent)
    best = per_intent.max(axis=2)
    weight, depth = scoring.aggregation_weight, scoring.aggregation_depth
    scores: np.ndarray = best
    if weight > 0.0 and depth > 1:
        top = -np.sort(-per_intent, axis=2)[:, :, :depth]
        finite = np.isfinite(top)
        mean_top = np.where(finite, top, 0.0).sum(axis=2) / np.maximum(finite.sum(axis=2), 1)
        scores = np.where(np.isfinite(best), (1 - weight) * best + weight * mean_top, -np.inf)
    if scoring.prototype_weight > 0.0 and len(queries):
        # the prototype pools every example, so one stray example near the message weighs less
        prototype = np.asarray(queries, dtype=np.float32) @ state.prototype_sums[1].T
        if left_out is not None and len(left_out.rows):
            prototype = _prototype_without(prototype, queries, state, left_out)
        scores = np.where(
            np.isfinite(best),
            (1 - scoring.prototype_weight) * scores + scoring.prototype_weight * prototype,
            -np.inf,
        )
    return scores


def _prototype_without(
    prototype: np.ndarray, queries: np.ndarray, state: RoutingState, left_out: LeftOut
) -> np.ndarray:
    """Prototype cosines where each left-out vector is taken back out of its intent's mean."""
    sums, _ = state.prototype_sums
    owners = state.owners[left_out.vectors]
    rest = sums[owners] - state.intent_index.vectors(left_out.vectors)
    norms = np.linalg.norm(rest, axis=1)
    cosines = np.einsum("ij,ij->i", np.asarray(queries, dtype=np.float32)[left_out.rows], rest)
    prototype = prototype.copy()
    prototype[left_out.rows, owners] = np.where(norms > 1e-6, cosines / np.maximum(norms, 1e-6), -np.inf)
    return prototype


def left_out_rows(state: RoutingState, texts: Sequence[str], labels: Sequence[str]) -> LeftOut:
    """The intent vectors each labelled message must not see: its own text among its intent's texts."""
    vector_ids: dict[tuple[int, str], int] = {}
    all_texts, owners = intent_texts(state.intents)
    for vector_id, (text, owner) in enumerate(zip(all_texts, owners, strict=True)):
        vector_ids[(owner, text)] = vector_id
    positions = {name: position for position, name in enumerate(state.intents.names)}
    pairs = [
        (row, vector_ids[(positions[label], text)])
        for row, (text, label) in enumerate(zip(texts, labels, strict=True))
        if label in positions and (positions[label], text) in vector_ids
    ]
    found = np.array(pairs, dtype=np.int64).reshape(-1, 2)
    return LeftOut(rows=found[:, 0], vectors=found[:, 1])


def top_two(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row of a (messages, intents) score matrix: the best intent's position, its score, the runner-up's
    score (`-inf` when there is a single intent)."""
    rows = np.arange(len(scores))
    order = np.argsort(-scores, axis=1)
    second = scores[rows, order[:, 1]] if scores.shape[1] > 1 else np.full(len(rows), -np.inf)
    return order[:, 0], scores[rows, order[:, 0]], second


def candidates(state: RoutingState, scores: np.ndarray) -> tuple[Candidate, ...]:
    """The `top_k` intents of one message's score row, best first, with their confidences."""
    confidences = state.scoring.confidence(scores)
    k = min(state.top_k, len(scores))
    order = np.argsort(-scores)[:k]
    names = state.intents.names
    return tuple(
        Candidate(
            intent=names[i], score=round(float(scores[i]), 4), confidence=round(float(confidences[i]), 4)
        )
        for i in order
        if math.isfinite(float(scores[i]))
    )


def decide_vectors(
    state: RoutingState, queries: np.ndarray, left_out: LeftOut | None = None
) -> list[Decision]:
    """Decisions (answers not rendered) for already-encoded messages against `state`."""
    scores = intent_scores(state, queries, left_out=left_out)
    knowledge = state.knowledge_index.search(queries, 1)
    anger = state.tone.anger(queries)
    decisions = []
    for row in range(len(queries)):
        retrieval_score: float | None = None
        passage: int | None = None
        if state.knowledge_index.size:
            retrieval_score = round(float(knowledge.scores[row, 0]), 4)
            passage = int(state.knowledge_owners[knowledge.ids[row, 0]])
        decision = decide(candidates(state, scores[row]), state.rules, state.policy, retrieval_score)
        retrieved = decision.route == "retrieve" and passage is not None
        decisions.append(
            dataclasses.replace(
                decision,
                source=state.passages[passage].source if retrieved and passage is not None else None,
                passage=passage if decision.route == "retrieve" else None,
                anger=round(float(anger[row]), 4),
                model_id=state.model_id,
                intents_version=state.version,
                calibration_id=state.calibration_id,
            )
        )
    return decisions
