"""Anger detector (#27): false positives on messages nobody wrote in anger, recall on complaints we wrote.

    python scripts/bench/bench_anger.py            # the table in docs/evaluation.md: before and after #27
    python scripts/bench/bench_anger.py --choose   # how the weight and BOT_ANGER_THRESHOLD were chosen

Messages nobody wrote in anger: HWU64 test (requests to a home assistant, chit-chat and jokes included),
only reported; BANKING77 test without its complaint-like labels (below). Complaints: our own labelled sets
in `scripts/bench/data/` (no dataset text): `anger.csv` (91 angry complaints across banking, shopping and
services, and 94 hard negatives: calm reports of a problem, jokes, small talk, praise, talk to the
assistant, neutral requests), on which the settings were chosen, and `anger_held.csv` (60 complaints and
40 hard negatives), written after the phrases and threshold were fixed, only reported.

Complaint-like BANKING77 labels: customers sometimes write in anger in any label ("What the hell!?"), but
in some labels often. A label is left out when at least 2% of its *train* messages hold one of the
complaint words below; the rule is applied to train and used for test, and the script prints the labels.

`--choose` (BANKING77 train and anger.csv only): for each weight of the nearest-phrase margin
(`bot.routing.tone.NEAREST_WEIGHT`) and each phrase set (the demo's `tone.yaml`, the generic phrases), the
lowest threshold at which at most 0.5% of BANKING77 train (complaint-like labels left out) and none of
anger.csv's hard negatives read as angry; the weight is the one with the best recall on anger.csv's
complaints, and BOT_ANGER_THRESHOLD the higher of the two phrase sets' thresholds (one setting serves both).
"""

from __future__ import annotations

import argparse
import csv
import re
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from bot.config import Settings
from bot.content.tone import GENERIC_ANGRY, GENERIC_CALM, load_tone
from bot.routing.engine import Engine
from bot.routing.tone import ToneDetector

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
OWN = ROOT / "scripts" / "bench" / "data"
COMPLAINT_WORDS = re.compile(
    r"ripp|ridiculous|unacceptable|terrible|outrageous|awful|atrocious|disgust|furious|angry|annoy|sick of|"
    r"fed up|for god|hell|damn|useless|pathetic|scam|rip[- ]off|disappoint|unhappy|not happy|not satisfied|"
    r"insane|shocking|horrible|crap|wtf|frustrat",
    re.IGNORECASE,
)
COMPLAINT_SHARE = 0.02
TRAIN_FALSE_POSITIVES = 0.005  # at most this share of BANKING77 train (complaint-like labels out) flagged

# The detector before #27, for the "before" rows: descriptions of a customer, best cosine to an angry
# one minus best cosine to a calm one, threshold 0.10. The demo's tone.yaml said "bank" where noted.
BEFORE_ANGRY = (
    "The customer is angry and furious about the terrible service.",
    "The customer is fed up, says this is a disgrace and a joke, and demands to make a formal complaint.",
    "The customer is outraged and says this is the worst company ever, useless and incompetent.",
    "The customer threatens to go to the ombudsman, the regulator or take legal action.",
    "This is ridiculous, I am sick of this, absolutely unacceptable!!!",
    "You people are useless, nobody ever helps, I am done with you.",
)
BEFORE_CALM = (
    "The customer asks a neutral question about their account or order.",
    "The customer politely asks for help with a problem.",
    "The customer calmly reports that something did not work and asks what to do.",
    "The customer wants to know how a feature works.",
    "The customer is a little worried and asks when something will be fixed.",
    "The customer wants to close or delete their account.",
    "The customer says hello, thank you or goodbye.",
)
BEFORE_DEMO_WORDS = {
    "worst company": "worst bank",
    "account or order": "account or card",
    "a feature": "a banking feature",
}
BEFORE_THRESHOLD = 0.10

Scorer = Callable[[np.ndarray], np.ndarray]


def read(path: Path) -> list[dict[str, str]]:
    """The rows of a CSV file."""
    with path.open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def complaint_labels(train: Sequence[dict[str, str]]) -> list[str]:
    """BANKING77 labels where at least COMPLAINT_SHARE of the train messages hold a complaint word."""
    total = Counter(row["category"] for row in train)
    hits = Counter(row["category"] for row in train if COMPLAINT_WORDS.search(row["text"]))
    return sorted(label for label in total if hits[label] / total[label] >= COMPLAINT_SHARE)


def before_scorer(encode: Callable[[list[str]], np.ndarray], demo: bool) -> Scorer:
    """The pre-#27 score with the pre-#27 phrases (the demo's or the generic ones)."""

    def words(phrases: Sequence[str]) -> list[str]:
        out = list(phrases)
        for old, new in BEFORE_DEMO_WORDS.items() if demo else ():
            out = [p.replace(old, new) for p in out]
        return out

    angry, calm = encode(words(BEFORE_ANGRY)), encode(words(BEFORE_CALM))
    return lambda q: np.asarray((q @ angry.T).max(axis=1) - (q @ calm.T).max(axis=1))


def after_scorer(
    encode: Callable[[list[str]], np.ndarray], demo: bool, weight: float | None = None
) -> Scorer:
    """The shipped detector with the demo's tone.yaml or the generic phrases."""
    phrases = load_tone(ROOT / "intents") if demo else None
    angry = list(phrases.angry) if phrases else list(GENERIC_ANGRY)
    calm = list(phrases.calm) if phrases else list(GENERIC_CALM)
    extra = {} if weight is None else {"nearest_weight": weight}
    return ToneDetector(encode(angry), encode(calm), **extra).anger


class Sets:
    """Every evaluation set, encoded once."""

    def __init__(self, encode: Callable[[list[str]], np.ndarray], *, choosing: bool) -> None:
        """`choosing` reads only what the choice may see: BANKING77 train and anger.csv."""
        train = read(DATA / "banking77" / "train.csv")
        self.excluded = complaint_labels(train)
        self.texts = {"b77_train": [r["text"] for r in train if r["category"] not in self.excluded]}
        if not choosing:
            test = read(DATA / "banking77" / "test.csv")
            self.texts["b77_test"] = [r["text"] for r in test if r["category"] not in self.excluded]
            self.texts["b77_test_all"] = [r["text"] for r in test]
            self.texts["hwu64_test"] = [r["text"] for r in read(DATA / "hwu64" / "test.csv")]
        self.own = {
            name: read(OWN / f"{name}.csv") for name in (("anger",) if choosing else ("anger", "anger_held"))
        }
        for name, rows in self.own.items():
            self.texts[name] = [r["text"] for r in rows]
        self.vectors = {name: encode(texts) for name, texts in self.texts.items()}

    def angry(self, name: str) -> np.ndarray:
        """Which rows of an own set are complaints."""
        return np.asarray([r["angry"] == "1" for r in self.own[name]])


def lowest_threshold(sets: Sets, score: Scorer) -> float:
    """The lowest threshold (0.01 steps) meeting the --choose rule on BANKING77 train and anger.csv."""
    train = score(sets.vectors["b77_train"])
    negatives = score(sets.vectors["anger"])[~sets.angry("anger")]
    floor = max(float(np.quantile(train, 1 - TRAIN_FALSE_POSITIVES)), float(negatives.max()))
    return float(np.ceil(floor * 100) / 100)


def choose(sets: Sets, encode: Callable[[list[str]], np.ndarray]) -> None:
    """Print the --choose table: per weight, each phrase set's lowest threshold, the common one (the
    higher), and the share of anger.csv's complaints each set catches at it."""
    print(
        "| weight | lowest threshold, demo / generic | common threshold | complaints caught, demo / generic |"
    )
    print("|---|---|---|---|")
    angry = sets.angry("anger")
    for weight in (0.0, 0.25, 0.5, 1.0):
        scores = [after_scorer(encode, demo, weight) for demo in (True, False)]
        lowest = [lowest_threshold(sets, score) for score in scores]
        common = max(lowest)
        caught = [(score(sets.vectors["anger"])[angry] > common).mean() for score in scores]
        print(
            f"| {weight} | {lowest[0]:.2f} / {lowest[1]:.2f} | {common:.2f} | {caught[0]:.3f} / {caught[1]:.3f} |"
        )


def report(sets: Sets, encode: Callable[[list[str]], np.ndarray], threshold: float) -> None:
    """Print the before/after table and the hard negatives still flagged."""
    print(f"BANKING77 labels left out as complaint-like ({len(sets.excluded)}): {', '.join(sets.excluded)}")
    n = {name: len(texts) for name, texts in sets.texts.items()}
    print(
        f"| detector | phrases | threshold | HWU64 test flagged (of {n['hwu64_test']}) | BANKING77 test flagged, "
        f"complaint-like labels out (of {n['b77_test']}) | all labels (of {n['b77_test_all']}) | complaints caught, "
        "anger.csv | anger_held.csv | hard negatives flagged, anger.csv | anger_held.csv | 'tell me a joke' |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    flagged_texts: dict[str, list[str]] = {}
    for label, make, limit in (
        ("before #27", before_scorer, BEFORE_THRESHOLD),
        ("after #27", after_scorer, threshold),
    ):
        for demo in (True, False):
            score = make(encode, demo)
            rate = {
                name: score(vectors) > limit for name, vectors in sets.vectors.items() if name != "b77_train"
            }
            cells = [
                f"{rate[k].sum()} ({rate[k].mean():.2%})" for k in ("hwu64_test", "b77_test", "b77_test_all")
            ]
            own = []
            for name in ("anger", "anger_held"):
                angry = sets.angry(name)
                own.append(f"{rate[name][angry].mean():.3f}")
            for name in ("anger", "anger_held"):
                negatives = ~sets.angry(name)
                own.append(f"{rate[name][negatives].sum()} of {negatives.sum()}")
            joke = float(score(encode(["tell me a joke"]))[0])
            phrases = "demo tone.yaml" if demo else "generic"
            print(
                f"| {label} | {phrases} | {limit:.2f} | {' | '.join(cells)} | {' | '.join(own)} | {joke:.2f} |"
            )
            flagged_texts[f"{label}, {phrases}"] = [
                text
                for name in ("anger", "anger_held")
                for text, hit, angry in zip(sets.texts[name], rate[name], sets.angry(name), strict=True)
                if hit and not angry
            ] + [text for text, hit in zip(sets.texts["hwu64_test"], rate["hwu64_test"], strict=True) if hit][
                :8
            ]
    for key, texts in flagged_texts.items():
        print(f"\nnot angry, flagged ({key}; own hard negatives, then up to 8 of HWU64): {texts}")


def main() -> None:
    """Encode every set once, then print the table asked for."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--choose", action="store_true", help="only BANKING77 train and anger.csv")
    parser.add_argument(
        "--cache-dir", type=Path, default=None, help="embedding cache (default BOT_CACHE_DIR)"
    )
    args = parser.parse_args()
    settings = Settings(intents_dir=ROOT / "intents", self_train=False)
    if args.cache_dir is not None:
        settings = settings.model_copy(update={"cache_dir": args.cache_dir})
    engine = Engine(settings)
    encoder = engine.encoder  # the stock model through the embedding cache, on the default backend

    def encode(texts: list[str]) -> np.ndarray:
        return encoder.encode(texts)

    sets = Sets(encode, choosing=args.choose)
    if args.choose:
        choose(sets, encode)
    else:
        report(sets, encode, settings.anger_threshold)


if __name__ == "__main__":
    main()
