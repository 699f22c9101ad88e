"""Cross-fitted vectors of a self-trained encoder: the folder's texts as seen by models that never saw
some of its examples.

A model fine-tuned on the folder's own texts (`bot.tuning.self_training`) has seen every example, so
scoring those examples with it, as self-calibration's pseudo-queries, makes them look easier than real
customer messages. Correcting that with factors measured on BANKING77 did not transfer to other domains
(docs/evaluation.md#cold-start-self-calibration-issue-15). Cross-fitting measures instead of correcting:
the examples are split into `FOLDS` folds, one extra model is trained per fold without that fold's
examples (the same recipe over the texts it keeps), and each example is scored with the model that did not see it,
against the folder's texts encoded by that same model. Those scores behave like a real message's under
the final model (trained on everything), which self-calibration then fits on.

The training side lives in `bot.tuning.self_training`; this module holds the fold assignment and the
file format, which self-calibration reads at load (`CROSS_FIT_FILE` in the model folder).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bot.content.intents import IntentSet
from bot.routing.calibration import content_id
from bot.routing.state import intent_text_kinds, intent_texts

log = logging.getLogger(__name__)

CROSS_FIT_FILE = "cross_fit.npz"
FOLDS = 2  # each fold model costs one more training; two already leave every example unseen once


def texts_key(intents: IntentSet) -> str:
    """What the vectors were computed for: the folder's embedded texts and their owners, in order."""
    texts, owners = intent_texts(intents)
    return content_id({"texts": texts, "owners": owners})


def example_folds(intents: IntentSet) -> np.ndarray:
    """The fold of each text of `intent_texts` (-1: a name, title or description, which every model sees).

    An intent's examples alternate between folds, starting at a fold that rotates with the intent, so an
    intent with one example still leaves it out of one model and the folds stay the same size.
    """
    _, owners = intent_texts(intents)
    folds = np.full(len(owners), -1, dtype=np.int64)
    seen: dict[int, int] = {}
    for row, (kind, owner) in enumerate(zip(intent_text_kinds(intents), owners, strict=True)):
        if kind == "example":
            folds[row] = (owner + seen.get(owner, 0)) % FOLDS
            seen[owner] = seen.get(owner, 0) + 1
    return folds


@dataclass(frozen=True, eq=False)  # holds arrays: compare the fields, not the records
class CrossFit:
    """Every folder text encoded by each fold's model, and which fold each example was left out of."""

    vectors: np.ndarray  # (FOLDS, texts, dim), unit rows: text i under the model trained without fold k
    folds: np.ndarray  # (texts,): the fold whose model did not see this example; -1 for other texts
    key: str  # `texts_key` of the folder they were computed for

    def save(self, folder: Path) -> None:
        """Write `CROSS_FIT_FILE` into a model folder (float16: 0.3 MB per 1,000 texts and fold)."""
        np.savez_compressed(
            folder / CROSS_FIT_FILE,
            vectors=self.vectors.astype(np.float16),
            folds=self.folds,
            key=np.array(self.key),
        )

    @classmethod
    def load(cls, model: str, intents: IntentSet) -> CrossFit | None:
        """The cross-fit stored with `model` for exactly this folder, or None (stock model, no file, another
        folder's texts, an unreadable file: self-calibration then falls back to its bias factors)."""
        path = Path(model) / CROSS_FIT_FILE
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as stored:
                found = cls(
                    vectors=stored["vectors"].astype(np.float32),
                    folds=stored["folds"].astype(np.int64),
                    key=str(stored["key"]),
                )
            vectors, folds = found.vectors, found.folds
            if vectors.ndim != 3 or folds.ndim != 1 or vectors.shape[0] < 1 or vectors.shape[1] != len(folds):
                raise ValueError(f"vectors {vectors.shape} and folds {folds.shape} do not fit together")
            if len(folds) and not (folds.min() >= -1 and folds.max() < vectors.shape[0]):
                raise ValueError(f"fold numbers outside -1..{vectors.shape[0] - 1}")
        except Exception as exc:  # a truncated or hand-edited file raises zipfile, zlib, EOF errors and more
            log.warning(
                "ignoring unreadable cross-fit %s (%s); self-calibration uses its bias factors", path, exc
            )
            return None
        if found.key != texts_key(intents):
            return None  # trained for another version of the folder
        return found
