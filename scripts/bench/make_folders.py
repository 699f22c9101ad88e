"""Intent folders of chosen sizes for the training-time benchmark (bench_training_time.py).

    python scripts/bench/make_folders.py f150 OUT            # 150 real intents, 7 train examples each
    python scripts/bench/make_folders.py synthetic OUT --intents 2000 --examples 4
    python scripts/bench/make_folders.py demo OUT            # intents/ without calibration.yaml

f150: HWU64's 64 intents (names, titles and descriptions of scripts/bench/hwu64/intents), BANKING77's 77
(the demo folder's description where the names match, else one written from the name) the demo folder's 5 other
intents (its descriptions, and its 3-5 examples) and 4 second draws of BANKING77 labels (to make 150); the HWU64 and BANKING77 intents get 7
examples drawn (seed 0) from the *train* files. synthetic: N intents whose description and K examples are
train rows of both data sets taken in turn (real message lengths, meaningless grouping: only the cost is
measured on it). Nothing here is scored: the folders exist to be timed.
"""

from __future__ import annotations

import argparse
import csv
import random
import re
import shutil
from collections import defaultdict
from pathlib import Path

from ruamel.yaml import YAML

from bot.content.intents import load_intents

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
EXAMPLES = 7


def train_rows(name: str) -> dict[str, list[str]]:
    """A data set's train.csv texts by label, in file order."""
    by_label: dict[str, list[str]] = defaultdict(list)
    with (DATA / name / "train.csv").open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            by_label[row["category"]].append(row["text"].strip())
    return by_label


def write(out: Path, intents: list[dict[str, object]]) -> None:
    """One intents.yaml in an emptied folder."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    yaml = YAML()
    yaml.width = 200
    with (out / "intents.yaml").open("w", encoding="utf-8") as handle:
        yaml.dump({"intents": intents}, handle)


def demo(out: Path) -> None:
    """The demo bank's intent files without its labelled calibration (so self-training applies)."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for path in (ROOT / "intents").glob("*.yaml"):
        if path.name != "calibration.yaml":
            shutil.copy(path, out / path.name)


def f150(out: Path) -> None:
    """150 intents: HWU64's 64 and BANKING77's 77 with 7 train examples each, and 9 demo intents."""
    rng = random.Random(0)
    shipped = {i.name: i.spec for i in load_intents(ROOT / "intents").intents}
    intents: list[dict[str, object]] = []
    hwu = train_rows("hwu64")
    for intent in load_intents(ROOT / "scripts" / "bench" / "hwu64" / "intents").intents:
        spec = intent.spec
        if spec.name not in hwu:  # the built-in small talk the folder loads with: not an HWU64 label
            continue
        examples = rng.sample(hwu[spec.name], EXAMPLES)
        intents.append(
            {"name": spec.name, "title": spec.title, "description": spec.description, "examples": examples}
        )
    banking = train_rows("banking77")
    for label in sorted(banking):
        name = re.sub(r"[^a-z0-9_]", "", label.lower())
        found = shipped.get(name)
        description = found.description if found else f"The customer asks about {label.replace('_', ' ')}."
        intents.append(
            {"name": name, "description": description, "examples": rng.sample(banking[label], EXAMPLES)}
        )
    for name in sorted(set(shipped) - {re.sub(r"[^a-z0-9_]", "", label.lower()) for label in banking})[:9]:
        spec = shipped[name]
        intents.append({"name": name, "description": spec.description, "examples": list(spec.examples)})
    for label in sorted(banking)[: 150 - len(intents)]:  # up to 150: second draws of BANKING77 labels
        name = re.sub(r"[^a-z0-9_]", "", label.lower())
        rest = [
            text
            for text in banking[label]
            if text not in intents[64 + sorted(banking).index(label)]["examples"]
        ]  # type: ignore[operator]
        intents.append(
            {"name": f"{name}_more", "description": rest[0], "examples": rng.sample(rest[1:], EXAMPLES)}
        )
    for intent in intents:
        if intent.get("title") is None:
            intent.pop("title", None)
    write(out, intents)


def synthetic(out: Path, count: int, examples: int) -> None:
    """`count` intents of `examples` examples and a description each, from train rows taken in turn."""
    rows = [text for name in ("banking77", "hwu64") for texts in train_rows(name).values() for text in texts]
    random.Random(0).shuffle(rows)
    rows = list(dict.fromkeys(rows))  # distinct texts: a folder's texts are deduplicated per intent only
    needed = count * (examples + 1)
    texts = [rows[i % len(rows)] + ("" if i < len(rows) else f" ({i // len(rows)})") for i in range(needed)]
    intents: list[dict[str, object]] = []
    for position in range(count):
        own = texts[position * (examples + 1) : (position + 1) * (examples + 1)]
        intents.append({"name": f"topic_{position:04d}", "description": own[0], "examples": own[1:]})
    write(out, intents)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("kind", choices=["demo", "f150", "synthetic"])
    parser.add_argument("out", type=Path)
    parser.add_argument("--intents", type=int, default=2000)
    parser.add_argument("--examples", type=int, default=4)
    args = parser.parse_args()
    if args.kind == "demo":
        demo(args.out)
    elif args.kind == "f150":
        f150(args.out)
    else:
        synthetic(args.out, args.intents, args.examples)
    loaded = load_intents(args.out)
    print(f"{args.out}: {len(loaded.intents)} intents, version {loaded.version}")


if __name__ == "__main__":
    main()
