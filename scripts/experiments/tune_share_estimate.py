"""Does the off-topic share estimate need its in-scope reference corrected (#31 item 3)? BANKING77 train.

    python scripts/experiments/tune_share_estimate.py [--data ../shared/data/banking77/train.csv]
        [--examples 2|0] [--shares 0.03 0.1 0.3] [--draws 5] [--dump F.npz] [--json]
    python scripts/experiments/tune_share_estimate.py --from F.npz --corrections [--gap 0.07 1.07]

The estimate (bot/insights/off_topic_share.py) reads logged top-intent confidences as a mixture of the
folder's in-scope reference (its examples scored leave-one-out) and its off-topic reference (the shipped
general off-topic messages it does not cover). The demo folder without the 20 held-out intents of
docs/evaluation.md (and without the built-ins), cut to `--examples` examples an intent (2: what HWU64's
folder has; 0: all 3), is self-calibrated; its general reference is built on the first half of the shipped
off-topic set, and the second half is routed as general off-topic traffic, with BANKING77 (`--data`: the
kept intents in scope, the 20 held out as siblings). Mixed at each share in `--draws` draws like
bench_share_estimate.py (off-topic all general, or half siblings), it prints the estimates, their
intervals (messages drawn alone or by top intent), how often those hold the true share and how often the
advice would call a right share off. `--corrections` prints, from a dump (this script's or
bench_share_estimate.py's `--dump`), the gap between the reference and the real in-scope messages and
the estimate with it corrected: by `--gap` (shift and widening in logit, as measured on train), or by a
shift and widening fitted to the traffic. test.csv or HWU64 are read only when named (reports).
Progress on stderr, a table on stdout.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.stats import gaussian_kde

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from bench_oos_prior import HELD_OUT

from bot.config import Settings
from bot.content.intents import Intent, IntentSet, content_hash, load_intents
from bot.content.off_topic_set import off_topic_texts
from bot.content.small_talk import is_built_in
from bot.insights import off_topic_share as share_of
from bot.routing.engine import Engine
from bot.routing.pseudo_queries import Evidence
from bot.routing.self_calibration import cached_self_calibration
from bot.routing.state import with_calibration
from bot.tuning.datasets import OUT_OF_SCOPE, Example, read_dataset
from bot.tuning.evaluate import route_examples

ROOT = Path(__file__).resolve().parents[2]


def say(message: str) -> None:
    sys.stderr.write(f"[{time.strftime('%H:%M:%S')}] {message}\n")


def cut(intent: Intent, examples: int) -> Intent:
    """`intent` with its first `examples` examples only (0: all of them)."""
    if examples <= 0:
        return intent
    spec = intent.spec.model_copy(update={"examples": tuple(intent.spec.examples)[:examples]})
    return dataclasses.replace(intent, spec=spec)


def collect(data: Path, examples: int, threads: int) -> dict[str, np.ndarray]:
    """The folder's references (in scope, general, sibling) on the live confidence scale and the routed
    confidences of BANKING77 messages in scope and off-topic."""
    settings = Settings(
        intents_dir=ROOT / "intents",
        torch_threads=threads,
        self_calibrate=True,
        self_train=False,
        cache_dir=Path(".bot_cache"),
    ).with_overrides()
    engine = Engine(settings, progress=False)
    engine.load()
    base = load_intents(ROOT / "intents")
    kept = tuple(cut(i, examples) for i in base.intents if not is_built_in(i) and i.name not in HELD_OUT)
    folder = IntentSet(intents=kept, version=content_hash(i.spec for i in kept), small_talk=None)
    state = engine.with_intents(folder, calibration=None)
    fit_settings = settings.with_overrides(cache_dir=Path(tempfile.mkdtemp(prefix="share-tune-")))
    found = cached_self_calibration(state, fit_settings).calibration
    if found is None:
        raise SystemExit("the reduced folder is too small to self-calibrate")
    state = with_calibration(state, settings, found)
    texts = list(off_topic_texts())
    first, second = texts[0::2], texts[1::2]  # interleaved: both halves hold every category
    evidence = Evidence.of(settings.model, folder)
    evidence = Evidence(evidence.bias, evidence.cross_fit, engine.encoder.encode(first))
    pseudo = evidence.pseudo_queries(state, settings)  # as reference_for, the reference on the first half
    live, own = state.scoring, pseudo.scoring

    def rescale(conf: np.ndarray) -> np.ndarray:  # own map -> raw score -> live map
        clipped = np.clip(conf, 1e-9, 1 - 1e-9)
        raw = own.center + np.log(clipped / (1 - clipped)) / own.slope
        return np.asarray(live.confidence(raw), dtype=np.float64)

    rows = read_dataset(data, "train")
    inside = [r for r in rows if r.label in folder.names]
    outside = [r for r in rows if r.label in HELD_OUT]
    general = [Example(t, OUT_OF_SCOPE) for t in second]
    say(f"{len(kept)} intents, {len(inside)} in scope, {len(outside)} siblings, {len(general)} general")
    decisions = route_examples(engine, [*inside, *outside, *general], state=state)
    conf = np.array([d.confidence for d in decisions])
    top = np.array([d.candidates[0].intent if d.candidates else "" for d in decisions])
    n_in, n_sib = len(inside), len(outside)
    return {
        "top_in": top[:n_in],
        "top_sibling": top[n_in : n_in + n_sib],
        "top_general": top[n_in + n_sib :],
        "ref_in": rescale(pseudo.conf_in),
        "ref_general": rescale(pseudo.conf_general),
        "ref_sibling": rescale(pseudo.conf_out),
        "in": conf[: len(inside)],
        "sibling": conf[len(inside) : len(inside) + len(outside)],
        "general": conf[len(inside) + len(outside) :],
    }


MIXES = ("general", "half")  # the off-topic traffic: all general messages, or half of them siblings


def pools(found: dict[str, np.ndarray], mix: str) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """(confidences, top intents) of the in-scope and the off-topic messages of `mix`."""
    inside = (found["in"], found["top_in"])
    if mix == "hwu64":  # a bench_share_estimate.py dump: its held-out intents are the off-topic traffic
        return inside, (found["out"], found["top_out"])
    general = (found["general"], found["top_general"])
    if mix == "general":
        return inside, general
    pick = np.random.default_rng(0).choice(len(found["sibling"]), len(general[0]), replace=False)
    siblings = (found["sibling"][pick], found["top_sibling"][pick])
    return inside, tuple(np.concatenate([g, s]) for g, s in zip(general, siblings, strict=True))


def draws(found: dict[str, np.ndarray], mix: str, share: float, count: int):  # type: ignore[no-untyped-def]
    """`count` mixtures at `share`, drawn as bench_share_estimate.py draws them: (confidences, tops, true)."""
    (c_in, t_in), (c_out, t_out) = pools(found, mix)
    for draw in range(count):
        rng = random.Random(1000 * draw + int(share * 100))
        pool = round(0.8 * len(c_in))
        n_out = min(len(c_out), round(share * pool / (1 - share)))
        n_in = min(pool, round(n_out * (1 - share) / share))
        a, b = rng.sample(range(len(c_in)), n_in), rng.sample(range(len(c_out)), n_out)
        yield np.concatenate([c_in[a], c_out[b]]), np.concatenate([t_in[a], t_out[b]]), n_out / (n_in + n_out)


def table(found: dict[str, np.ndarray], shares: list[float], count: int) -> list[dict[str, object]]:
    """Per mix and share: the estimates, their intervals (messages drawn alone, or by top intent), how often
    the interval holds the true share and how often the advice would say a right configured share is off."""
    rows: list[dict[str, object]] = []
    reference = share_of.Reference(found["ref_in"], found["ref_general"], "general")
    for mix in MIXES:
        for share in shares:
            for grouped in (False, True):
                runs = [
                    (share_of.estimate_share(conf, reference, groups=tops if grouped else None), true)
                    for conf, tops, true in draws(found, mix, share, count)
                ]
                rows.append(
                    {
                        "mix": mix,
                        "share": round(float(np.mean([t for _, t in runs])), 3),
                        "grouped": grouped,
                        "estimates": [e.share for e, _ in runs],
                        "intervals": [(e.low, e.high) for e, _ in runs],
                        "holds": sum(bool(e.low <= t <= e.high) for e, t in runs),  # type: ignore[operator]
                        "false_alarms": sum(share_of.is_off(e, share) for e, _ in runs),
                    }
                )
    return rows


def _share_with(found: dict[str, np.ndarray], conf: np.ndarray, shift: float, scale: float) -> float:
    """The estimate with the in-scope reference moved by `shift` and widened `scale` times about its median
    (in logit), the off-topic one as is."""
    x_in = share_of._logit(found["ref_in"])
    middle = float(np.median(x_in))
    moved = 1 / (1 + np.exp(-((x_in - middle) * scale + middle + shift)))
    found_ = share_of.estimate_share(conf, share_of.Reference(moved, found["ref_general"], "general"))
    return float(found_.share or 0.0)


def _fitted(found: dict[str, np.ndarray], conf: np.ndarray) -> float:
    """The estimate with the in-scope part's shift and widening fitted to the traffic too (maximum
    likelihood over a grid; the weight by EM at each point): a semi-parametric fit anchored by the
    messages answered with high confidence, which only the in-scope part reaches."""
    x_in = share_of._logit(found["ref_in"])
    middle = float(np.median(x_in))
    x = share_of._logit(conf)
    k_in, k_out = gaussian_kde(x_in), gaussian_kde(share_of._logit(found["ref_general"]))
    f_out = np.maximum(k_out(x), 1e-12)
    best = (-np.inf, 0.0)
    for shift in np.arange(-0.4, 0.41, 0.05):
        for scale in np.arange(0.8, 1.61, 0.05):
            f_in = np.maximum(k_in((x - shift - middle) / scale + middle) / scale, 1e-12)
            share = float(share_of.fit_weight(f_in, f_out)[0])
            likelihood = float(np.log((1 - share) * f_in + share * f_out).sum())
            best = max(best, (likelihood, share))
    return best[1]


def corrections(
    found: dict[str, np.ndarray], gap: tuple[float, float], shares: list[float], count: int
) -> None:
    """The reference's gap to the real in-scope messages, and the estimate plain, corrected by `gap`, and
    with a fitted shift and widening."""
    ref, real = share_of._logit(found["ref_in"]), share_of._logit(found["in"])
    print(
        f"in scope, logit: reference mean {ref.mean():.2f} sd {ref.std():.2f} 5% {np.percentile(ref, 5):.2f}; "
        f"real mean {real.mean():.2f} sd {real.std():.2f} 5% {np.percentile(real, 5):.2f} "
        f"(gap: shift {real.mean() - ref.mean():+.2f}, widening {real.std() / ref.std():.2f}x)\n"
    )
    print(
        f"| true share | plain | corrected by the gap {gap[0]:+.2f}, {gap[1]:.2f}x | shift and widening fitted |"
    )
    print("|---|---|---|---|")
    mix = "general" if "general" in found else "hwu64"
    for share in shares:
        runs = list(draws(found, mix, share, count))
        plain = np.mean([_share_with(found, c, 0.0, 1.0) for c, _, _ in runs])
        moved = np.mean([_share_with(found, c, *gap) for c, _, _ in runs])
        fitted = np.mean([_fitted(found, c) for c, _, _ in runs])
        print(f"| {np.mean([t for _, _, t in runs]):.3f} | {plain:.3f} | {moved:.3f} | {fitted:.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data", type=Path, default=ROOT.parent / "shared" / "data" / "banking77" / "train.csv"
    )
    parser.add_argument("--examples", type=int, default=2)
    parser.add_argument("--shares", type=float, nargs="+", default=[0.03, 0.1, 0.3])
    parser.add_argument("--draws", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--dump", type=Path, default=None, help="also save the confidences (npz)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--from", dest="source", type=Path, default=None, help="read a dump, do not route")
    parser.add_argument("--corrections", action="store_true")
    parser.add_argument("--gap", type=float, nargs=2, default=[0.07, 1.07], metavar=("SHIFT", "WIDENING"))
    args = parser.parse_args()
    if args.source is not None:
        found = dict(np.load(args.source))
    else:
        found = collect(args.data, args.examples, args.threads)
    if args.corrections:
        corrections(found, (args.gap[0], args.gap[1]), args.shares, args.draws)
        return
    if args.dump is not None:
        np.savez(args.dump, **found)
    rows = table(found, args.shares, args.draws)
    if args.json:
        sys.stdout.write(json.dumps(rows) + "\n")
        return
    print(
        "| off-topic | true share | estimate (mean, range) | interval by | 90% interval (mean) | holds | false alarms |"
    )
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        est = np.array(row["estimates"], dtype=float)
        lows, highs = zip(*row["intervals"], strict=True)  # type: ignore[call-overload]
        print(
            f"| {row['mix']} | {row['share']:.3f} | {est.mean():.3f} ({est.min():.3f}-{est.max():.3f}) | "
            f"{'top intent' if row['grouped'] else 'message'} | {np.mean(lows):.3f}-{np.mean(highs):.3f} | "
            f"{row['holds']}/{len(est)} | {row['false_alarms']}/{len(est)} |"
        )


if __name__ == "__main__":
    main()
