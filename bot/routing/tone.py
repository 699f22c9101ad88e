"""Zero-shot detection of angry complaints: how far a message sits from the calm phrases towards the angry ones.

No training: like intents, the tone is described in plain language (the folder's `tone.yaml`, see
`bot.content.tone`) and compared by embedding.

Why a line between two centres and not the nearest phrase alone (the score before #27): a sentence encoder
places a message by its topic first and its tone second, so "tell me a joke" sat nearer to "...says this
is a disgrace and a joke..." than to any calm phrase and read as angry, while most real complaints ("You
sent me the wrong size for the third time") were nearer to some calm question about their topic. When the
calm and angry phrases cover the same topics (written in pairs), the difference of their centres cancels
the topics and keeps the tone; the nearest phrase on each side is kept as a smaller second term, so a
message must also resemble some angry phrase more than any calm one. Measured in docs/evaluation.md
("Anger detector (#27)").
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Weight of the nearest-phrase margin beside the position on the calm-to-angry line; 0.5 kept the most
# complaints at the chosen false-positive rate on BANKING77 train and on our own hard negatives
# (scripts/bench/bench_anger.py --choose).
NEAREST_WEIGHT = 0.5


@dataclass(frozen=True)
class ToneDetector:
    """Anger = (position of the message on the line from the calm centre to the angry centre + half the
    margin of its nearest angry phrase over its nearest calm one), in units of the distance between the
    centres: about 0 for a message like the calm phrases, about 1 for one like the angry phrases."""

    angry: np.ndarray
    calm: np.ndarray
    nearest_weight: float = NEAREST_WEIGHT
    _calm_centre: np.ndarray = field(init=False, repr=False, compare=False)
    _axis: np.ndarray = field(init=False, repr=False, compare=False)
    _span: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        calm_centre = self.calm.mean(axis=0)
        difference = self.angry.mean(axis=0) - calm_centre
        # identical phrase lists give no direction; the floor keeps the score finite (it is then ~0)
        span = max(float(np.linalg.norm(difference)), 1e-6)
        object.__setattr__(self, "_calm_centre", calm_centre)
        object.__setattr__(self, "_axis", difference / span)
        object.__setattr__(self, "_span", span)

    def anger(self, queries: np.ndarray) -> np.ndarray:
        """One score per query row; above `BOT_ANGER_THRESHOLD` reads as an angry complaint."""
        along = (queries - self._calm_centre) @ self._axis
        nearest = (queries @ self.angry.T).max(axis=1) - (queries @ self.calm.T).max(axis=1)
        return np.asarray((along + self.nearest_weight * nearest) / self._span)
