"""Zero-shot detection of angry complaints: a message nearer to descriptions of anger than of calm.

No training: like intents, the tone is described in plain language (the folder's `tone.yaml`, see
`bot.content.tone`) and compared by embedding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ToneDetector:
    """Anger score = best cosine to an angry description minus best cosine to a calm one."""

    angry: np.ndarray
    calm: np.ndarray

    def anger(self, queries: np.ndarray) -> np.ndarray:
        """One score per query row; above `BOT_ANGER_THRESHOLD` reads as an angry complaint."""
        return np.asarray((queries @ self.angry.T).max(axis=1) - (queries @ self.calm.T).max(axis=1))
