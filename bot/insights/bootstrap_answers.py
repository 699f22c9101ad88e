"""Which agent answers `bot bootstrap` drafts from: a cluster's most representative answer, and the
one-off questions whose answer is good enough to become a knowledge-base entry."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

import numpy as np

MAX_ANSWERS = 500  # distinct answers of one cluster encoded to find its centre (the most frequent ones)
MAX_KNOWLEDGE = 200  # knowledge entries drafted at most: a reviewer reads each one
MIN_ANSWER_WORDS = 8  # "let me check" or "done!" answers nothing a knowledge base can repeat
_DEFERRING = ("let me ", "i'll check", "i will check", "transfer you", "one moment", "give me a moment")


@dataclass(frozen=True)
class Knowledge:
    """A question asked once (in no draft) with an agent answer worth keeping."""

    question: str
    answer: str


def pick_answer(answers: Sequence[str], encode: Callable[[list[str]], np.ndarray]) -> str | None:
    """The answer whose embedding is closest to the centre of all of them (repeats weigh more); None
    without answers. One distinct answer is returned as it is, without encoding."""
    if not answers:
        return None
    counts = Counter(" ".join(a.split()) for a in answers)
    distinct = [a for a, _ in counts.most_common(MAX_ANSWERS)]
    if len(distinct) == 1:
        return distinct[0]
    vectors = np.asarray(encode(distinct), dtype=np.float32)
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    weights = np.asarray([counts[a] for a in distinct], dtype=np.float32)
    centre = (vectors * weights[:, None]).sum(axis=0)
    return distinct[int(np.argmax(vectors @ centre))]


def good_answer(answer: str) -> bool:
    """An answer that stands alone: at least MIN_ANSWER_WORDS words, not a question back, not a deferral."""
    low = answer.casefold()
    return (
        len(answer.split()) >= MIN_ANSWER_WORDS
        and not answer.rstrip().endswith("?")
        and not any(low.startswith(d) or f" {d}" in low[:60] for d in _DEFERRING)
    )


def pick_knowledge(
    left: Sequence[tuple[str, Sequence[str]]], drafted: Collection[str] = ()
) -> list[Knowledge]:
    """Knowledge entries from the questions no draft took: (question, its answers), first come first;
    a question of at least three words with a good answer (its most frequent one) that is not already a
    draft's answer (`drafted`), MAX_KNOWLEDGE at most."""
    found: list[Knowledge] = []
    seen: set[str] = set()
    for question, answers in left:
        good = [a for a in answers if good_answer(a) and " ".join(a.split()) not in drafted]
        if not good or len(question.split()) < 3 or question.casefold() in seen:
            continue
        seen.add(question.casefold())
        found.append(Knowledge(question=question, answer=Counter(good).most_common(1)[0][0]))
        if len(found) == MAX_KNOWLEDGE:
            break
    return found
