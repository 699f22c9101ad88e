"""Does a calibration's promise hold when traffic's out-of-scope share differs from the labelled set's?

    python scripts/bench/bench_oos_prior.py [--data-dir ../shared/data/banking77] [--intents intents]
                                            [--calibration-share 0.03] [--traffic-share 0.2] [--target 0.95]

The 20 intents of docs/evaluation.md are removed from the shipped intents; their messages are out of
scope. `bot calibrate` runs on train.csv rows of the kept intents plus just enough held-out rows to make
`--calibration-share` of the set out of scope, once as it is and once with `--oos-rate` set to
`--traffic-share`. Both are then measured on test.csv rows mixed to `--traffic-share` out of scope: the
promise without the prior is broken by the extra out-of-scope traffic; with it, it should hold.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

from bot.config import Settings
from bot.content.intents import IntentSet, content_hash, load_intents
from bot.routing.engine import Engine
from bot.tuning.calibrate import calibrate
from bot.tuning.datasets import OUT_OF_SCOPE, Example, read_dataset
from bot.tuning.evaluate import compute_metrics, route_examples

ROOT = Path(__file__).resolve().parents[2]
# docs/evaluation.md: the 20 held-out intents of the out-of-scope benchmark (seed 0)
HELD_OUT = frozenset(
    [
        "balance_not_updated_after_bank_transfer",
        "balance_not_updated_after_cheque_or_cash_deposit",
        "cancel_transfer",
        "card_payment_not_recognised",
        "card_payment_wrong_exchange_rate",
        "declined_transfer",
        "exchange_via_app",
        "fiat_currency_support",
        "get_physical_card",
        "getting_spare_card",
        "pending_card_payment",
        "pending_transfer",
        "pin_blocked",
        "refund_not_showing_up",
        "reverted_card_payment",
        "top_up_reverted",
        "topping_up_by_card",
        "transfer_fee_charged",
        "transfer_into_account",
        "verify_source_of_funds",
    ]
)


def mixed(rows: list[Example], share: float, seed: int) -> list[Example]:
    """All in-scope rows plus enough held-out rows (relabelled out of scope) to make `share` of the set."""
    inside = [r for r in rows if r.label not in HELD_OUT]
    outside = [Example(r.text, OUT_OF_SCOPE) for r in rows if r.label in HELD_OUT]
    wanted = round(share * len(inside) / (1 - share))
    if wanted > len(outside):
        raise SystemExit(f"only {len(outside)} out-of-scope rows; {wanted} needed for {share:.0%}")
    return inside + random.Random(seed).sample(outside, wanted)


def main() -> None:
    """Calibrate twice, measure twice, print a JSON line and a table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data" / "banking77")
    parser.add_argument("--intents", type=Path, default=ROOT / "intents")
    parser.add_argument("--calibration-share", type=float, default=0.03)
    parser.add_argument("--traffic-share", type=float, default=0.2)
    parser.add_argument("--target", type=float, default=0.95)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    engine = Engine(Settings(intents_dir=args.intents, self_calibrate=False, torch_threads=2), progress=True)
    engine.load()
    base = load_intents(args.intents)
    kept = tuple(i for i in base.intents if i.name not in HELD_OUT)
    state = engine.with_intents(IntentSet(intents=kept, version=content_hash(i.spec for i in kept)), None)
    train = mixed(read_dataset(args.data_dir / "train.csv", "train"), args.calibration_share, args.seed)
    test = mixed(read_dataset(args.data_dir / "test.csv", "test"), args.traffic_share, args.seed)
    results = {}
    for name, rate in (("no prior", None), (f"--oos-rate {args.traffic_share}", args.traffic_share)):
        calibration, fit = calibrate(
            engine, train, args.target, data="train.csv (mixed)", state=state, oos_rate=rate, progress=True
        )
        measured = compute_metrics(
            test, route_examples(engine, test, state=engine.with_intents(state.intents, calibration))
        )
        results[name] = {
            "promised": round(
                fit.precision, 4
            ),  # what `bot calibrate` prints: at the set's share, or at --oos-rate
            "table_at_traffic_share": fit.by_oos_rate.get(args.traffic_share),
            "threshold": fit.threshold,
            "margin": fit.margin,
            "measured": measured.as_dict(),
        }
    sys.stdout.write(json.dumps(results) + "\n")
    print(
        f"\ncalibrated on {len(train)} train rows ({args.calibration_share:.0%} out of scope) at target "
        f"{args.target}; measured on {len(test)} test rows ({args.traffic_share:.0%} out of scope)\n"
    )
    print("| calibration | promised precision | measured precision | in-scope acc. | coverage | oos recall |")
    print("|---|---|---|---|---|---|")
    for name, r in results.items():
        m = r["measured"]
        assert isinstance(m, dict)
        print(
            f"| {name} | {r['promised']:.3f} | {m['answer_precision']:.3f} | "
            f"{m['in_scope_accuracy']:.3f} | {m['coverage']:.3f} | {m['oos_recall']:.3f} |"
        )


if __name__ == "__main__":
    main()
