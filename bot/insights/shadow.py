"""Live against shadow on the same messages: agreement, the most frequent disagreements, reviewed accuracy."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Engine as Database
from sqlmodel import Session, col, select

from bot.routing.outcomes import agrees, outcome
from bot.store.models import DecisionLog, ShadowDecision
from bot.store.reviews import latest_reviews


@dataclass
class Disagreement:
    """Messages live decided one way and the shadow another."""

    live: str
    shadow: str
    count: int = 0
    examples: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Comparison:
    """One shadow version against the live decisions of the same messages."""

    intents_version: str
    messages: int
    agreed: int
    agreement: float | None
    disagreements: list[Disagreement]
    reviewed: int
    live_correct: int
    shadow_correct: int
    live_accuracy: float | None
    shadow_accuracy: float | None


def compare(database: Database, intents_version: str, *, top: int = 10, examples: int = 3) -> Comparison:
    """Pair every shadow decision of `intents_version` with the live decision of its message."""
    with Session(database) as session:
        pairs = session.exec(
            select(ShadowDecision, DecisionLog)
            .join(DecisionLog, col(DecisionLog.id) == col(ShadowDecision.decision_id))
            .where(ShadowDecision.intents_version == intents_version)
            .order_by(col(ShadowDecision.id))
        ).all()
        ids = [live.id for _, live in pairs]
        reviews = latest_reviews(session, ids)
    agreed = reviewed = live_correct = shadow_correct = 0
    groups: dict[tuple[str, str], Disagreement] = {}
    for shadow, live in pairs:
        before = outcome(live.route, live.intent, live.source)
        after = outcome(shadow.route, shadow.intent, shadow.source)
        if before == after:
            agreed += 1
        else:
            group = groups.setdefault((before, after), Disagreement(before, after))
            group.count += 1
            if len(group.examples) < examples and live.text not in group.examples:
                group.examples.append(live.text)
        review = reviews.get(live.id or 0)
        if review is not None:
            reviewed += 1
            for decided, counts_for_live in ((live, True), (shadow, False)):
                right = agrees(
                    decided.route,
                    decided.intent,
                    verdict=review.verdict,
                    logged_route=live.route,
                    logged_intent=live.intent,
                    meant=review.intent,
                )
                if right and counts_for_live:
                    live_correct += 1
                elif right:
                    shadow_correct += 1
    ordered = sorted(groups.values(), key=lambda g: (-g.count, g.live, g.shadow))[:top]
    return Comparison(
        intents_version=intents_version,
        messages=len(pairs),
        agreed=agreed,
        agreement=round(agreed / len(pairs), 4) if pairs else None,
        disagreements=ordered,
        reviewed=reviewed,
        live_correct=live_correct,
        shadow_correct=shadow_correct,
        live_accuracy=round(live_correct / reviewed, 4) if reviewed else None,
        shadow_accuracy=round(shadow_correct / reviewed, 4) if reviewed else None,
    )
