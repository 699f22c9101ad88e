"""Does the off-topic share estimate (bot.insights.off_topic_share) find the true share of real traffic?

    python scripts/bench/bench_share_estimate.py [--intents scripts/bench/hwu64/intents]
        [--data ../shared/data/hwu64/test.csv] [--holdout 12] [--seed 0] [--shares 0.1 0.3] [--draws 5]

`--holdout` intents (drawn with `--seed` as scripts/bench/bench_cold_start.py draws them) are removed
from the folder, which is then self-calibrated as `Engine.load` would; their test messages are the
off-topic traffic. For each share, `--draws` random mixtures of the test messages (in scope: the kept
intents' messages; off-topic: the held-out ones', as many as the share needs, the in-scope side
subsampled when there are too few, and to 80% of them in any case) are routed, and the estimate read from their decisions' confidences
(the interval drawing messages by their top intent, as the served estimate does) is compared with the
true share, and the advice read as if the configured share were the true one: against the folder's reference as served (the shipped general
off-topic messages), against its sibling reference (examples with their own intent removed: what a
folder gets without the encoder) and with the free mixture (no reference). Prints a JSON line per draw on stderr and a table on stdout.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path

import numpy as np

from bot.config import Settings
from bot.content.intents import IntentSet, content_hash, load_intents
from bot.insights.off_topic_share import estimate_share, is_off
from bot.insights.off_topic_traffic import reference_for
from bot.routing.engine import Engine
from bot.routing.self_calibration import cached_self_calibration
from bot.routing.state import with_calibration
from bot.tuning.datasets import Example, read_dataset
from bot.tuning.evaluate import route_examples

ROOT = Path(__file__).resolve().parents[2]


def mixture(inside: list[Example], outside: list[Example], share: float, rng: random.Random) -> list[Example]:
    """`share` of the result off-topic, as many messages as the two pools allow."""
    pool = round(0.8 * len(inside))  # each draw its own in-scope messages too, not always all of them
    n_out = min(len(outside), round(share * pool / (1 - share)))
    n_in = min(pool, round(n_out * (1 - share) / share))
    return rng.sample(inside, n_in) + rng.sample(outside, n_out)


def main() -> None:
    """Self-calibrate the reduced folder, route the mixtures, print estimated against true shares."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--intents", type=Path, default=ROOT / "scripts" / "bench" / "hwu64" / "intents")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "hwu64" / "test.csv")
    parser.add_argument("--holdout", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shares", type=float, nargs="+", default=[0.03, 0.1, 0.3])
    parser.add_argument("--draws", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--dump", type=Path, default=None, help="save the confidences (npz)")
    args = parser.parse_args()
    settings = Settings(
        intents_dir=args.intents,
        torch_threads=args.threads,
        self_calibrate=True,
        self_train=False,
        cache_dir=Path(".bot_cache"),
    ).with_overrides()
    engine = Engine(settings, progress=False)
    engine.load()
    base = load_intents(args.intents)
    held = set(random.Random(args.seed).sample(sorted(base.names), args.holdout))
    kept = tuple(i for i in base.intents if i.name not in held)
    subset = IntentSet(intents=kept, version=content_hash(i.spec for i in kept))
    state = engine.with_intents(subset, calibration=None)
    fit_settings = settings.with_overrides(cache_dir=Path(tempfile.mkdtemp(prefix="share-bench-")))
    found = cached_self_calibration(state, fit_settings).calibration
    if found is None:
        raise SystemExit("the reduced folder is too small to self-calibrate")
    state = with_calibration(state, settings, found)
    reference = reference_for(state, settings, engine.encoder)
    sibling = reference_for(state, settings)  # the examples with their own intent removed as off-topic
    assert reference is not None and sibling is not None
    rows = read_dataset(args.data, "test")
    inside = [r for r in rows if r.label not in held]
    outside = [r for r in rows if r.label in held]
    decisions = route_examples(engine, [*inside, *outside], state=state)
    if args.dump is not None:
        conf = np.array([d.confidence for d in decisions])
        top = np.array([d.candidates[0].intent if d.candidates else "" for d in decisions])
        np.savez(
            args.dump,
            ref_in=reference.conf_in,
            ref_general=reference.conf_out,
            ref_sibling=sibling.conf_out,
            top_in=top[: len(inside)],
            top_out=top[len(inside) :],
            **{"in": conf[: len(inside)], "out": conf[len(inside) :]},
        )
    confidence = {id(r): d.confidence for r, d in zip([*inside, *outside], decisions, strict=True)}
    top = {
        id(r): d.candidates[0].intent if d.candidates else None
        for r, d in zip([*inside, *outside], decisions, strict=True)
    }
    print(
        f"{args.data.name}: {len(inside)} in-scope and {len(outside)} off-topic test messages; held out "
        f"(seed {args.seed}): {', '.join(sorted(held))}; operating point assumes {found.oos_rate:.0%}\n"
    )
    print(
        f"| true share | messages | estimate ({reference.kind} off-topic reference) | 90% interval | "
        "advice at the true share | sibling reference | free mixture |"
    )
    print("|---|---|---|---|---|---|---|")
    for share in args.shares:
        for draw in range(args.draws):
            mixed = mixture(inside, outside, share, random.Random(1000 * draw + int(share * 100)))
            conf = np.array([confidence[id(r)] for r in mixed])
            true = sum(r.label in held for r in mixed) / len(mixed)
            tops = [top[id(r)] for r in mixed]
            ref, near, free = (estimate_share(conf, r, groups=tops) for r in (reference, sibling, None))
            found = {"true": true, "reference": ref.__dict__, "sibling": near.__dict__, "free": free.__dict__}
            sys.stderr.write(json.dumps(found) + "\n")
            print(
                f"| {true:.3f} | {len(mixed)} | {ref.share:.3f} | {ref.low:.3f}-{ref.high:.3f} | "
                f"{'refit' if is_off(ref, share) else 'fits'} | "
                f"{near.share:.3f} | {free.share:.3f} |"
            )


if __name__ == "__main__":
    main()
