"""Discovery drafts before and after #27 item 10: keywords against the central messages.

    python scripts/experiments/discovery_drafts.py [--data ../shared/data/banking77/train.csv] [--per-label 30]

Clusters two sets of unrouted traffic with `bot.insights.discovery.cluster_messages` (the bundled encoder)
and prints, for each cluster, the draft the keywords made (before: name from the three top keywords,
"The customer asks about ...") and the one drafted from its most central messages now
(`bot.insights.drafts`): our own texts (pet insurance, crypto, mortgages: tests/insights/), and the
BANKING77 *train* messages of six labels (--per-label each, seeded), with the cluster's majority label.
A Markdown table goes to stdout.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bot.insights.discovery import Cluster, cluster_messages, keywords  # noqa: E402
from bot.routing.encoders.torch_backend import SentenceTransformerEncoder  # noqa: E402
from bot.tuning.datasets import read_dataset  # noqa: E402
from tests.insights.test_discovery import CRYPTO, MORTGAGE, OTHER  # noqa: E402
from tests.insights.test_drafts import PETS  # noqa: E402

LABELS = [
    "beneficiary_not_allowed",
    "disposable_card_limits",
    "get_physical_card",
    "lost_or_stolen_phone",
    "card_swallowed",
    "wrong_exchange_rate_for_cash_withdrawal",
]


def before(cluster: Cluster, background: list[str]) -> tuple[str, str]:
    """The draft discovery made until #27: keywords for the name and a list of them for the description."""
    words = keywords(cluster.messages, background)
    name = "_".join(words[:3]) or "new_intent"
    example = cluster.messages[0].rstrip("?.!")
    return name, f"The customer asks about {', '.join(words) or 'this topic'}, for example: {example}."


def table(title: str, texts: list[str], labels: dict[str, str], encoder: SentenceTransformerEncoder) -> None:
    background = list(dict.fromkeys(t.strip() for t in texts))
    print(f"\n**{title}** ({len(texts)} messages)\n")
    print("| size | majority | before: name / description | after: name / description |")
    print("|---|---|---|---|")
    for cluster in cluster_messages(texts, encoder):
        old_name, old_description = before(cluster, background)
        majority = Counter(labels.get(m, "?") for m in cluster.messages).most_common(1)[0][0]
        print(
            f"| {cluster.size} | {majority} | `{old_name}`: {old_description} "
            f"| `{cluster.name}`: {cluster.description} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/banking77/train.csv")
    parser.add_argument("--per-label", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    encoder = SentenceTransformerEncoder("bundled", threads=2)
    own = {
        **dict.fromkeys(PETS, "pets"),
        **dict.fromkeys(CRYPTO, "crypto"),
        **dict.fromkeys(MORTGAGE, "mortgage"),
    }
    table("Our own texts", [*PETS, *CRYPTO, *MORTGAGE, *OTHER], own, encoder)
    if not args.data.is_file():
        print(f"\n({args.data} is absent: the BANKING77 part is skipped)", file=sys.stderr)
        return
    rng = random.Random(args.seed)
    rows = [e for e in read_dataset(args.data) if e.label in LABELS]
    chosen = [
        e for label in LABELS for e in rng.sample([r for r in rows if r.label == label], args.per_label)
    ]
    table(
        f"BANKING77 train, {len(LABELS)} labels x {args.per_label}",
        [e.text for e in chosen],
        {e.text.strip(): e.label for e in chosen},
        encoder,
    )


if __name__ == "__main__":
    main()
