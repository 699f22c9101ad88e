"""A routing diff on logged traffic: what a candidate intents folder would decide differently.

Every stored customer message is encoded once (through the embedding cache, in batches) and decided under
both routing states with the same scoring code the server runs (`decide_vectors`). A message counts as
changed when its outcome differs: the route, the intent for answer and handoff, the passage for retrieve.
Messages are replayed on their own, without the conversation's previous message, under both states
alike, so what differs is the folder and nothing else. Where an analyst reviewed a message, the diff says
whether the change fixes a reviewed error or breaks a decision reviewed as correct.

Nothing is written to the conversation tables; only the embedding cache learns the messages' vectors.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine as Database
from sqlmodel import Session, col, select

from bot.routing import outcomes
from bot.routing.encoders import Encoder
from bot.routing.policy import Decision
from bot.routing.scoring import decide_vectors
from bot.routing.state import RoutingState
from bot.store.models import DecisionLog
from bot.store.reviews import latest_reviews

ENCODE_CHUNK = 1024  # texts per encoder call: bounded memory, and the cache is written as it goes
EXAMPLES_PER_GROUP = 5


@dataclass(frozen=True)
class Logged:
    """A stored customer message, its logged outcome and its latest review."""

    decision_id: int
    text: str
    created_at: datetime
    route: str
    intent: str | None
    verdict: str | None = None  # correct | wrong
    meant: str | None = None  # the intent a 'wrong' review says was meant (None: out of scope / new)


def outcome(decision: Decision) -> str:
    """What the customer gets, as a label: 'answer card_arrival', 'clarify', 'retrieve faq.yaml#fees'."""
    return outcomes.outcome(decision.route, decision.intent, decision.source)


def right(decision: Decision, message: Logged) -> bool | None:
    """Whether `decision` agrees with the message's review (`bot.routing.outcomes.agrees`)."""
    return outcomes.agrees(
        decision.route,
        decision.intent,
        verdict=message.verdict,
        logged_route=message.route,
        logged_intent=message.intent,
        meant=message.meant,
    )


@dataclass(frozen=True)
class Example:
    """One changed message shown in a group."""

    decision_id: int
    text: str
    verdict: str | None
    effect: str | None  # 'fixes' | 'breaks' | None


@dataclass
class Group:
    """Every message whose outcome moves from `before` to `after`."""

    before: str
    after: str
    count: int = 0
    fixes: int = 0
    breaks: int = 0
    examples: list[Example] = field(default_factory=list)


@dataclass(frozen=True)
class DiffReport:
    """What the candidate would change on the logged messages."""

    live_version: str
    candidate_version: str
    messages: int
    distinct_texts: int
    changed: int
    reviewed: int  # replayed messages an analyst reviewed
    fixes: int  # reviewed errors the candidate gets right
    breaks: int  # decisions reviewed as correct that the candidate gets wrong
    groups: list[Group]
    changed_ids: list[int]  # decision ids of every changed message, oldest first
    seconds: float
    since: datetime | None
    limit: int


def logged_messages(database: Database, *, since: datetime | None, limit: int) -> list[Logged]:
    """The newest `limit` customer messages (since `since`), oldest first, each with its latest review.

    A clarify pick is left out: its decision is the customer's choice, not routing.
    """
    with Session(database) as session:
        query = select(DecisionLog).where(col(DecisionLog.chosen).is_(False))
        if since is not None:
            query = query.where(col(DecisionLog.created_at) >= since)
        rows = session.exec(query.order_by(col(DecisionLog.id).desc()).limit(limit)).all()
        ids = [r.id for r in rows]
        verdicts = latest_reviews(session, ids)
    found = []
    for row in reversed(rows):
        assert row.id is not None
        review = verdicts.get(row.id)
        found.append(
            Logged(
                decision_id=row.id,
                text=row.text,
                created_at=row.created_at,
                route=row.route,
                intent=row.intent,
                verdict=review.verdict if review else None,
                meant=review.intent if review else None,
            )
        )
    return found


def replay(encoder: Encoder, states: Sequence[RoutingState], texts: Sequence[str]) -> list[list[Decision]]:
    """Decisions of each state for every distinct text, encoding each text once, in chunks."""
    decided: list[list[Decision]] = [[] for _ in states]
    for start in range(0, len(texts), ENCODE_CHUNK):
        vectors = encoder.encode(list(texts[start : start + ENCODE_CHUNK]))
        for column, state in enumerate(states):
            decided[column].extend(decide_vectors(state, vectors))
    return decided


def routing_diff(
    database: Database,
    encoder: Encoder,
    live: RoutingState,
    candidate: RoutingState,
    *,
    since: datetime | None = None,
    limit: int = 10_000,
    examples: int = EXAMPLES_PER_GROUP,
) -> DiffReport:
    """Replay logged messages under `live` and `candidate` and group every outcome that changes."""
    started = time.perf_counter()
    messages = logged_messages(database, since=since, limit=limit)
    texts = list(dict.fromkeys(m.text for m in messages))
    before_all, after_all = replay(encoder, [live, candidate], texts)
    by_text = {t: (b, a) for t, b, a in zip(texts, before_all, after_all, strict=True)}
    groups: dict[tuple[str, str], Group] = {}
    changed_ids: list[int] = []
    reviewed = fixes = breaks = 0
    for message in messages:
        before, after = by_text[message.text]
        reviewed += message.verdict is not None
        old, new = outcome(before), outcome(after)
        if old == new:
            continue
        changed_ids.append(message.decision_id)
        was, now = right(before, message), right(after, message)
        effect = "fixes" if was is False and now else "breaks" if was and now is False else None
        group = groups.setdefault((old, new), Group(before=old, after=new))
        group.count += 1
        if effect == "fixes":
            group.fixes += 1
            fixes += 1
        elif effect == "breaks":
            group.breaks += 1
            breaks += 1
        shown = group.examples
        if len(shown) < examples or (effect and not all(e.effect for e in shown)):
            if len(shown) >= examples:  # a reviewed example says more than an unreviewed one
                shown.remove(next(e for e in reversed(shown) if not e.effect))
            shown.append(Example(message.decision_id, message.text, message.verdict, effect))
    ordered = sorted(groups.values(), key=lambda g: (-g.count, g.before, g.after))
    return DiffReport(
        live_version=live.version,
        candidate_version=candidate.version,
        messages=len(messages),
        distinct_texts=len(texts),
        changed=len(changed_ids),
        reviewed=reviewed,
        fixes=fixes,
        breaks=breaks,
        groups=ordered,
        changed_ids=changed_ids,
        seconds=round(time.perf_counter() - started, 3),
        since=since,
        limit=limit,
    )
