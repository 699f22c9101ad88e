"""Zero-shot detection of angry complaints: a message nearer to descriptions of anger than of calm.

No training: like intents, the tone is described in plain language and compared by embedding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ANGRY = (
    "The customer is angry and furious about the terrible service.",
    "The customer is fed up, says this is a disgrace and a joke, and demands to make a formal complaint.",
    "The customer is outraged and says this is the worst bank ever, useless and incompetent.",
    "The customer threatens to go to the ombudsman, the regulator or take legal action.",
    "This is ridiculous, I am sick of this, absolutely unacceptable!!!",
    "You people are useless, nobody ever helps, I am done with you.",
)
CALM = (
    "The customer asks a neutral question about their account or card.",
    "The customer politely asks for help with a problem.",
    "The customer calmly reports that something did not work and asks what to do.",
    "The customer wants to know how a banking feature works.",
    "The customer is a little worried and asks when something will be fixed.",
    "The customer wants to close or delete their account.",
    "The customer says hello, thank you or goodbye.",
)


@dataclass(frozen=True)
class ToneDetector:
    """Anger score = best cosine to an angry description minus best cosine to a calm one."""

    angry: np.ndarray
    calm: np.ndarray
    threshold: float

    def anger(self, queries: np.ndarray) -> np.ndarray:
        """One score per query row; above `threshold` reads as an angry complaint."""
        return np.asarray((queries @ self.angry.T).max(axis=1) - (queries @ self.calm.T).max(axis=1))
