"""How the "negative message" threshold of sentiment by topic (#32 item 3) was chosen.

    python scripts/experiments/tune_negative_threshold.py

A customer message counts as negative on the stats page's "Sentiment by topic" card when its anger score
(`bot.routing.tone`) is above BOT_SENTIMENT_NEGATIVE_THRESHOLD (its default, 0.55, is chosen here), lower
than the hand-off threshold (BOT_ANGER_THRESHOLD, 0.92): a trend may count displeased messages a person
need not take over, as long as calm traffic rarely counts. Only BANKING77 train and `scripts/bench/data/anger.csv` are read
(the sets of `bench_anger.py --choose`; no test text).

The rule: per phrase set (the demo's `tone.yaml`, the generic phrases), the lowest threshold (0.01
steps) at which at most CALM_SHARE of BANKING77 train without its complaint-like labels reads negative;
the shipped threshold is the higher of the two (one setting serves both). The table shows, for a range of
thresholds, what each set flags: calm train, the complaint-like labels' train messages, anger.csv's
complaints and its hard negatives.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from bench_anger import DATA, ROOT, Sets, after_scorer, read

from bot.config import Settings
from bot.routing.engine import Engine

CALM_SHARE = 0.05  # at most this share of calm BANKING77 train may read negative
GRID = (0.3, 0.4, 0.5, 0.55, 0.6, 0.65, 0.7, 0.8, 0.92)


def main() -> None:
    """Encode the sets once; print the grid per phrase set and the threshold the rule picks."""
    settings = Settings(intents_dir=ROOT / "intents", self_train=False)
    encoder = Engine(settings).encoder
    sets = Sets(encoder.encode, choosing=True)
    train = read(DATA / "banking77" / "train.csv")
    complaint_like = [r["text"] for r in train if r["category"] in sets.excluded]
    complaint_vectors = encoder.encode(complaint_like)
    angry = sets.angry("anger")
    lowest = []
    for demo in (True, False):
        score = after_scorer(encoder.encode, demo)
        calm = score(sets.vectors["b77_train"])
        like = score(complaint_vectors)
        own = score(sets.vectors["anger"])
        pick = round(float(np.ceil(np.quantile(calm, 1 - CALM_SHARE) * 100) / 100), 2)
        lowest.append(pick)
        name = "demo tone.yaml" if demo else "generic"
        print(f"\n{name}: lowest threshold with at most {CALM_SHARE:.0%} of calm train negative: {pick:.2f}")
        print(
            f"| threshold | calm train negative (of {len(calm)}) | complaint-like labels' train (of "
            f"{len(like)}) | anger.csv complaints caught (of {angry.sum()}) | hard negatives flagged (of "
            f"{(~angry).sum()}) |"
        )
        print("|---|---|---|---|---|")
        for threshold in sorted({*GRID, pick}):
            print(
                f"| {threshold:.2f} | {(calm > threshold).mean():.3f} | {(like > threshold).mean():.3f} | "
                f"{(own[angry] > threshold).mean():.3f} | {(own[~angry] > threshold).sum()} |"
            )
    print(
        f"\nBOT_SENTIMENT_NEGATIVE_THRESHOLD = {max(lowest):.2f} (the higher of demo {lowest[0]:.2f}, generic "
        f"{lowest[1]:.2f})"
    )


if __name__ == "__main__":
    main()
