"""Which intents a folder's own texts confuse: found before going live, from the folder alone.

Every text an intent is embedded from (name, title, description, examples) is scored as if it were a
customer message, leave-one-out (it does not see itself). A text that scores higher on another intent
than on its own, or within the clarify margin of it, shows two intents whose descriptions overlap: the
router will mix them up or keep asking "did you mean...?" on real messages too.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from bot.routing.scoring import LeftOut, intent_scores
from bot.routing.state import RoutingState, intent_texts


@dataclass(frozen=True)
class Collision:
    """A text of `intent` that scores at least as close to `other`, and the text of `other` nearest to it."""

    text: str
    nearest_text: str
    own_confidence: float
    other_confidence: float


@dataclass(frozen=True)
class ConfusablePair:
    """Two intents whose texts collide; `wrong` counts texts that rank the other intent first."""

    intent: str
    other: str
    wrong: int
    close: int
    collisions: tuple[Collision, ...]


def confusable_pairs(state: RoutingState, *, limit: int = 10, samples: int = 2) -> list[ConfusablePair]:
    """The intent pairs most likely to be confused, worst first (texts ranked wrong, then close calls)."""
    texts, owners_list = intent_texts(state.intents)
    if len(state.intents.intents) < 2 or not texts:
        return []
    vectors = state.intent_index.vectors()
    every = np.arange(len(texts))
    scores = intent_scores(state, vectors, left_out=LeftOut(rows=every, vectors=every))
    confidence = state.scoring.confidence(scores)
    names = state.intents.names
    margin = state.policy.margin
    found: dict[tuple[int, int], list[tuple[bool, float, Collision]]] = defaultdict(list)
    for row, owner in enumerate(owners_list):
        own = float(confidence[row, owner])
        rivals = confidence[row].copy()
        rivals[owner] = -np.inf
        other = int(np.argmax(rivals))
        best_other = float(rivals[other])
        if not np.isfinite(best_other) or best_other < own - margin:
            continue
        members = state.gather[other][state.gather[other] >= 0]
        nearest = int(members[np.argmax(vectors[members] @ vectors[row])])
        collision = Collision(texts[row], texts[nearest], round(own, 3), round(best_other, 3))
        found[(owner, other)].append((best_other > own, best_other - own, collision))
    pairs = []
    for (owner, other), hits in found.items():
        hits.sort(key=lambda hit: (hit[0], hit[1]), reverse=True)
        wrong = sum(1 for hit in hits if hit[0])
        pairs.append(
            ConfusablePair(
                intent=names[owner],
                other=names[other],
                wrong=wrong,
                close=len(hits) - wrong,
                collisions=tuple(hit[2] for hit in hits[:samples]),
            )
        )
    pairs.sort(key=lambda p: (p.wrong, p.close, p.intent), reverse=True)
    return pairs[:limit]
