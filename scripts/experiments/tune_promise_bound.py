"""Choose the promise's lower bound (`Z` and `BIAS_SPREAD` in bot/routing/promise.py, #27 item 4) on
BANKING77 train only (never test.csv, never HWU64).

    python scripts/bench/bench_small_folders.py --dataset banking77 --subsets 30 --seed 100 --json > b77.json
    python scripts/experiments/tune_promise_bound.py b77.json

Each small folder of the bench recorded its fit's outcome on its pseudo-queries; this recomputes the bound
for every (z, spread) of a grid from them and counts the folders whose delivered precision (on BANKING77
train messages, off-topic ones weighed to the planned share) reaches it, with the mean width (estimate minus
bound). Shipped: the usual one-sided 95% (z 1.645) with the smallest spread that holds on every folder, so
that it holds on at least 9 of 10 folders of another domain (z 1.28 with spread 0.3 is as wide).
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from bot.routing.promise import BIAS_SPREAD, Z, pessimistic, wilson_high, wilson_low
from bot.routing.pseudo_queries import FROZEN_BIAS, PseudoBias
from bot.routing.self_calibration import Outcome

ZS = (1.645, 1.28, 1.0)
SPREADS = (0.0, 0.1, 0.2, 0.3)


def bound(pseudo: dict[str, float], rate: float, bias: PseudoBias, z: float, spread: float) -> float:
    """`Outcome.precision_low` with another z and spread."""
    outcome = Outcome(pseudo["right_in"], pseudo["wrong_in"], pseudo["accepted_out"])
    answered = outcome.right_in + outcome.wrong_in
    if answered <= 0:
        return 0.0
    right = wilson_low(outcome.right_in / answered, pseudo["queries"] * answered, z)
    accepted = wilson_high(outcome.accepted_out, pseudo["queries"], z)
    low = Outcome(answered * right, answered * (1 - right), accepted).precision(
        rate, pessimistic(bias, spread)
    )
    return min(low, outcome.precision(rate, bias))


def main() -> None:
    """Print the grid's table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("results", type=Path, help="bench_small_folders.py --dataset banking77 --json output")
    parser.add_argument("--rate", type=float, default=0.03, help="BOT_OOS_RATE the folders were fitted at")
    args = parser.parse_args()
    found = json.loads(args.results.read_text(encoding="utf-8"))
    if found.get("dataset") != "banking77":
        raise SystemExit(
            "the bound is chosen on BANKING77 train folders only; run the bench with --dataset banking77"
        )
    folders = found["folders"]
    print(f"{len(folders)} folders of {args.results} (stock encoder), shipped: z {Z}, spread {BIAS_SPREAD}\n")
    print("| z | bias spread | bound holds | mean delivered - bound | mean estimate - bound |")
    print("|---|---|---|---|---|")
    for z in ZS:
        for spread in SPREADS:
            held, gaps, widths = 0, [], []
            for folder in folders:
                now = folder["now"]
                low = bound(now["pseudo"], args.rate, FROZEN_BIAS, z, spread)
                held += now["delivered"] >= low
                gaps.append(now["delivered"] - low)
                widths.append(now["promised"] - low)
            print(
                f"| {z:g} | {spread:g} | {held} of {len(folders)} | {statistics.mean(gaps):.3f} | "
                f"{statistics.mean(widths):.3f} |"
            )


if __name__ == "__main__":
    main()
