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
    """Global thresholds: `threshold` and `margin` in confidence, `retrieval_threshold` in cosine.

    No defaults: the values come from `Settings` or a calibration (`bot.routing.state`), never from here.
    """

    threshold: float
    margin: float
    retrieval_threshold: float
    max_clarify_options: int
    # a knowledge passage this much closer (in cosine) than the top intent's score wins over the intent
    knowledge_lead: float


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
    passage: int | None = None  # index of the retrieved passage in the live knowledge base
    context_used: bool = False
    anger: float = 0.0
    model_id: str = ""
    intents_version: str = ""
    calibration_id: str = ""  # the applied calibration's content hash, or 'settings-' + a hash


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
    outcome: tuple[Route, str | None, str, tuple[str, ...]]
    if top is not None and retrieval_score is not None and _knowledge_leads(top, policy, retrieval_score):
        reason = (
            f"A knowledge passage matches with {retrieval_score:.2f}, {retrieval_score - top.score:.2f} closer "
            f"than the best intent {_fmt(top)} (score {top.score:.2f}), so the passage is the better match."
        )
        outcome = ("retrieve", None, reason, ())
    elif top is not None and top.confidence >= threshold:
        outcome = _above_threshold(ranked, rule, threshold, policy)
    else:
        route, reason = _below_threshold(top, threshold, policy, retrieval_score)
        outcome = (route, None, reason, ())
    route, intent, reason, options = outcome
    return Decision(
        route=route,
        intent=intent,
        confidence=top.confidence if top else 0.0,
        candidates=ranked,
        reason=reason,
        threshold=threshold,
        margin=policy.margin,
        options=options,
        retrieval_score=retrieval_score,
    )


def _knowledge_leads(top: Candidate, policy: Policy, retrieval_score: float) -> bool:
    """Whether a knowledge passage matches well and clearly closer than the best intent."""
    return (
        retrieval_score >= policy.retrieval_threshold and retrieval_score - top.score >= policy.knowledge_lead
    )


def _above_threshold(
    ranked: tuple[Candidate, ...], rule: IntentRule, threshold: float, policy: Policy
) -> tuple[Route, str | None, str, tuple[str, ...]]:
    """Route, intent, reason and options when the top candidate passed its threshold."""
    top = ranked[0]
    close = [c for c in ranked[1:] if top.confidence - c.confidence < policy.margin]
    if close:
        offered = (top, *close)[: policy.max_clarify_options]
        names = " and ".join(_fmt(c) for c in offered)
        reason = f"{names} are within the {policy.margin:.2f} margin, so the bot asks which one is meant."
        return "clarify", None, reason, tuple(c.intent for c in offered)
    if rule.handoff:
        return (
            "handoff",
            top.intent,
            f"{_fmt(top)} passed its {threshold:.2f} threshold and always hands off to a person.",
            (),
        )
    if not rule.has_answer:
        return (
            "handoff",
            top.intent,
            f"{_fmt(top)} passed its {threshold:.2f} threshold but has no answer, so a person takes it.",
            (),
        )
    lead = (
        f", {top.confidence - ranked[1].confidence:.2f} ahead of {_fmt(ranked[1])}" if len(ranked) > 1 else ""
    )
    return "answer", top.intent, f"{_fmt(top)} passed its {threshold:.2f} threshold{lead}.", ()


def _below_threshold(
    top: Candidate | None, threshold: float, policy: Policy, retrieval_score: float | None
) -> tuple[Route, str]:
    """Route and reason when no intent passed its threshold: a matching passage, else a person."""
    best = (
        f"the best intent {_fmt(top)} is below its {threshold:.2f} threshold"
        if top
        else "there are no intents"
    )
    if retrieval_score is not None and retrieval_score >= policy.retrieval_threshold:
        return (
            "retrieve",
            f"{best.capitalize()}; a knowledge passage matches with {retrieval_score:.2f} (needs {policy.retrieval_threshold:.2f}).",
        )
    knowledge = f"no knowledge passage reaches {policy.retrieval_threshold:.2f}" + (
        f" (best {retrieval_score:.2f})" if retrieval_score is not None else ""
    )
    return "handoff", f"{best.capitalize()} and {knowledge}, so a person takes it."
