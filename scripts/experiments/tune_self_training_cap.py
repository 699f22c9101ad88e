"""Choose self-training's cap (bot/tuning/recipe.py) on BANKING77 train.csv only: what a cap costs in
answers at the promised precision, the measure of issue #26.

    python scripts/experiments/tune_self_training_cap.py [--model-steps 32] [--fold-steps 16]
                                                         [--prototype-texts 4] [--mine-from-vectors 1]

Runs `tune_self_calibration.py --self-train --tolerances 0.01` (the shipped intents self-trained and
self-calibrated, their train messages routed; then 20 intents unknown) with the recipe changed as given;
each recipe caches its models apart (`recipe_key`). The uncapped figures are the ones that script gave
before the cap (docs/evaluation.md: 0.681 at precision 0.927; 20 unknown: 0.478 refused). How much the
model's own cap costs in top-1 on a folder it binds on: `tune_training.py --seeds 1 --try max_steps=N`.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from bot.tuning import recipe

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts" / "experiments"))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model-steps", type=int, default=recipe.SELF_TRAINING.max_steps, help="0: no cap")
    parser.add_argument("--fold-steps", type=int, default=recipe.FOLD_STEPS)
    parser.add_argument("--prototype-texts", type=int, default=recipe.SELF_TRAINING.prototype_texts)
    parser.add_argument("--mine-from-vectors", type=int, default=int(recipe.SELF_TRAINING.mine_from_vectors))
    args, rest = parser.parse_known_args()
    recipe.SELF_TRAINING = replace(
        recipe.SELF_TRAINING,
        max_steps=args.model_steps,
        prototype_texts=args.prototype_texts,
        mine_from_vectors=bool(args.mine_from_vectors),
    )
    recipe.FOLD_STEPS = args.fold_steps
    sys.stderr.write(f"recipe: {recipe.SELF_TRAINING}, fold steps {recipe.FOLD_STEPS}\n")
    import tune_self_calibration

    sys.argv = [sys.argv[0], "--self-train", "--tolerances", "0.01", *rest]
    tune_self_calibration.main()


if __name__ == "__main__":
    main()
