"""The decision policy: ranked intent candidates (and the best knowledge hit) in, one `Decision` out.

Pure and cheap: numpy-free even, so it can be tested as tables and imported without torch or FAISS.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

Route = Literal["answer", "clarify", "retrieve", "handoff"]
ROUTES: tuple[Route, ...] = ("answer", "clarify", "retrieve", "handoff")


@dataclass(frozen=True, slots=True)
class Candidate:
    """An intent the message may mean: raw similarity `score` and calibrated `confidence` (0..1)."""

    intent: str
    score: float
    confidence: float


@dataclass(frozen=True, slots=True)
class IntentRule:
    """What the policy needs to know about one intent."""

    threshold: float | None = None
    handoff: bool = False
    has_answer: bool = True


@dataclass(frozen=True, slots=True)
class Policy:
    """Global thresholds: `threshold` and `margin` in confidence, `retrieval_threshold` in cosine."""

    threshold: float = 0.5
    margin: float = 0.1
    retrieval_threshold: float = 0.5
    max_clarify_options: int = 3


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with one message, and why. `intent` is set on answer, and on handoff of a known intent."""

    route: Route
    intent: str | None
    confidence: float
    candidates: tuple[Candidate, ...]
    reason: str
    threshold: float
    margin: float
    options: tuple[str, ...] = ()
    answer: str = ""
    retrieval_score: float | None = None
    source: str | None = None
    context_used: bool = False
    model_id: str = ""
    intents_version: str = ""


def _fmt(candidate: Candidate) -> str:
    return f"'{candidate.intent}' ({candidate.confidence:.2f})"


def decide(
    candidates: Sequence[Candidate],
    rules: Mapping[str, IntentRule],
    policy: Policy,
    retrieval_score: float | None = None,
) -> Decision:
    """Apply the routing rules to candidates sorted by confidence, best first."""
    ranked = tuple(candidates)
    top = ranked[0] if ranked else None
    rule = rules.get(top.intent, IntentRule()) if top else IntentRule()
    threshold = rule.threshold if rule.threshold is not None else policy.threshold
    common = {"candidates": ranked, "threshold": threshold, "margin": policy.margin, "retrieval_score": retrieval_score}

    if top is not None and top.confidence >= threshold:
        close = [c for c in ranked[1:] if top.confidence - c.confidence < policy.margin]
        if close:
            options = (top, *close)[: policy.max_clarify_options]
            names = " and ".join(_fmt(c) for c in options)
            return Decision(
                route="clarify",
                intent=None,
                confidence=top.confidence,
                options=tuple(c.intent for c in options),
                reason=f"{names} are within the {policy.margin:.2f} margin, so the bot asks which one is meant.",
                **common,
            )
        if rule.handoff:
            reason = f"{_fmt(top)} passed its {threshold:.2f} threshold and always hands off to a person."
            return Decision(route="handoff", intent=top.intent, confidence=top.confidence, reason=reason, **common)
        if not rule.has_answer:
            reason = f"{_fmt(top)} passed its {threshold:.2f} threshold but has no answer, so a person takes it."
            return Decision(route="handoff", intent=top.intent, confidence=top.confidence, reason=reason, **common)
        lead = f", {top.confidence - ranked[1].confidence:.2f} ahead of {_fmt(ranked[1])}" if len(ranked) > 1 else ""
        reason = f"{_fmt(top)} passed its {threshold:.2f} threshold{lead}."
        return Decision(route="answer", intent=top.intent, confidence=top.confidence, reason=reason, **common)

    best = f"the best intent {_fmt(top)} is below its {threshold:.2f} threshold" if top else "there are no intents"
    confidence = top.confidence if top else 0.0
    if retrieval_score is not None and retrieval_score >= policy.retrieval_threshold:
        reason = (
            f"{best.capitalize()}; a knowledge passage matches with {retrieval_score:.2f} "
            f"(needs {policy.retrieval_threshold:.2f})."
        )
        return Decision(route="retrieve", intent=None, confidence=confidence, reason=reason, **common)
    knowledge = (
        f"no knowledge passage reaches {policy.retrieval_threshold:.2f}"
        + (f" (best {retrieval_score:.2f})" if retrieval_score is not None else "")
    )
    reason = f"{best.capitalize()} and {knowledge}, so a person takes it."
    return Decision(route="handoff", intent=None, confidence=confidence, reason=reason, **common)
