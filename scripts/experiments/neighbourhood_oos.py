"""Can a folder's own neighbourhood rank in-domain off-topic requests below in-scope ones (#31 item 5)?

    python scripts/experiments/neighbourhood_oos.py [--data ../shared/data/banking77/train.csv]
                                                    [--self-train] [--test-once FEATURES] [--json]

BANKING77-OOS protocol (`../shared/data/banking77/OOS_SPLIT.md`): the demo folder restricted to the 50 kept
intents, no calibration file, zero labels. Messages of `--data` (train.csv: choose here) are in scope (the
50) or siblings (the 27 held out). For each candidate off-topic score the curve of in-scope answered right
against sibling recall is summarised by the best sibling recall at in-scope answered right >= 0.72 (and at
0.65 and 0.80).

Candidates:
- `today`: the router's score as it is (top confidence, threshold + margin, any margin of the grid);
- `top`: the top intent's raw score alone;
- logistic regressions over a few features of a message's neighbourhood (see `FEATURES`), fitted on the
  folder's OWN pseudo-queries only, as self-calibration does: each example leave-one-out (1 when its own
  intent ranks first) against the same example with its whole intent removed (0), every feature computed
  with the same exclusions (the example's words leave its intent's vocabulary, the removed intent's words
  leave the folder's). No labelled message is fitted on.
`--test-once NAME` scores the named candidate on test.csv as well (done once, for the report).
Progress on stderr, Markdown (or --json) on stdout.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from bench_cold_start import engine_for
from bench_oos_share import banking77_oos_held_out
from oracle import MARGINS

from bot.config import Settings
from bot.content.intents import IntentSet, content_hash, load_intents
from bot.content.small_talk import is_built_in
from bot.routing.cross_fit import CrossFit
from bot.routing.index import VectorIndex
from bot.routing.pseudo_queries import fit_confidence, query_rows
from bot.routing.scoring import LeftOut, intent_scores, top_two
from bot.routing.state import RoutingState, Scoring, intent_text_kinds, intent_texts
from bot.tuning.datasets import Example, read_dataset

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data" / "banking77"
LEVELS = (0.65, 0.72, 0.80)

STOP = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "but",
        "if",
        "of",
        "to",
        "in",
        "on",
        "at",
        "for",
        "from",
        "by",
        "with",
        "about",
        "as",
        "into",
        "than",
        "then",
        "so",
        "too",
        "very",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "am",
        "do",
        "does",
        "did",
        "done",
        "have",
        "has",
        "had",
        "having",
        "i",
        "me",
        "my",
        "mine",
        "we",
        "us",
        "our",
        "you",
        "your",
        "yours",
        "he",
        "she",
        "it",
        "its",
        "they",
        "them",
        "their",
        "this",
        "that",
        "these",
        "those",
        "there",
        "here",
        "what",
        "which",
        "who",
        "whom",
        "whose",
        "when",
        "where",
        "why",
        "how",
        "can",
        "could",
        "would",
        "should",
        "will",
        "shall",
        "may",
        "might",
        "must",
        "not",
        "no",
        "nor",
        "just",
        "only",
        "also",
        "any",
        "some",
        "all",
        "each",
        "both",
        "more",
        "most",
        "other",
        "such",
        "own",
        "same",
        "again",
        "further",
        "once",
        "up",
        "down",
        "out",
        "off",
        "over",
        "under",
        "until",
        "while",
        "because",
        "through",
        "during",
        "before",
        "after",
        "above",
        "below",
        "between",
        "please",
        "hi",
        "hello",
        "thanks",
        "thank",
        "yes",
        "ok",
        "okay",
        "get",
        "got",
        "im",
        "ive",
        "dont",
        "cant",
        "its",
        "whats",
        "hasnt",
        "havent",
        "isnt",
        "wasnt",
        "didnt",
        "doesnt",
        "wont",
        "still",
        "yet",
        "already",
        "one",
        "much",
        "many",
        "way",
        "need",
        "want",
        "know",
        "like",
        "tell",
        "help",
    ]
)


def tokens(text: str) -> frozenset[str]:
    """A message's content words, crudely stemmed (so 'cards' meets 'card', 'charged' meets 'charge')."""
    words = re.findall(r"[a-z]+", text.lower().replace("'", ""))
    return frozenset(stem(w) for w in words if w not in STOP and len(w) > 1)


def stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s", "ly"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def say(message: str) -> None:
    sys.stderr.write(f"[{time.strftime('%H:%M:%S')}] {message}\n")


@dataclass(frozen=True)
class Vocabulary:
    """Per intent, in how many of its texts each content word occurs; across intents, in how many intents."""

    per_intent: list[Counter[str]]
    text_tokens: list[frozenset[str]]  # per intent text (the state's vector order)
    owners: list[int]  # per intent text, its intent
    intent_df: Counter[str]
    knowledge: frozenset[str]

    @classmethod
    def of(cls, state: RoutingState) -> Vocabulary:
        texts, owners = intent_texts(state.intents)
        per_intent: list[Counter[str]] = [Counter() for _ in state.intents.intents]
        text_tokens = [tokens(t) for t in texts]
        for toks, owner in zip(text_tokens, owners, strict=True):
            per_intent[owner].update(toks)
        intent_df: Counter[str] = Counter()
        for counter in per_intent:
            intent_df.update(counter.keys())
        knowledge: set[str] = set()
        for passage in state.passages:
            knowledge |= tokens(f"{passage.title} {passage.text}")
        return cls(per_intent, text_tokens, list(owners), intent_df, frozenset(knowledge))


def lexical_features(
    vocab: Vocabulary, message: frozenset[str], top: int, own_text: int | None, removed: int | None
) -> tuple[float, float, float, float]:
    """Share of the message's content words the top intent uses, the folder uses, the knowledge base uses
    and, idf-weighted over intents, the top intent uses. `own_text`: a text left out of its intent (its
    leave-one-out pseudo-query); `removed`: an intent left out whole (a sibling pseudo-query)."""
    if not message:
        return 1.0, 1.0, 1.0, 1.0
    n = len(vocab.per_intent) - (1 if removed is not None else 0)
    own_words = vocab.text_tokens[own_text] if own_text is not None else frozenset()
    own_owner = vocab.owners[own_text] if own_text is not None else -1

    def count(intent: int, word: str) -> int:
        if intent == removed:
            return 0
        return vocab.per_intent[intent].get(word, 0) - (1 if intent == own_owner and word in own_words else 0)

    in_top = in_folder = in_kb = 0
    weight_top = weight_all = 0.0
    for word in message:
        df = vocab.intent_df.get(word, 0)
        if removed is not None and vocab.per_intent[removed].get(word, 0) > 0:
            df -= 1
        if own_owner >= 0 and own_owner != removed and word in own_words and count(own_owner, word) == 0:
            df -= 1  # the word was only in the left-out text of its intent
        idf = float(np.log((n + 1) / (df + 1)))
        weight_all += idf
        if count(top, word) > 0:
            in_top += 1
            weight_top += idf
        in_folder += df > 0
        in_kb += word in vocab.knowledge
    k = len(message)
    return in_top / k, in_folder / k, in_kb / k, weight_top / weight_all if weight_all > 0 else 1.0


def description_rows(state: RoutingState) -> np.ndarray:
    """Each intent's description vector id."""
    kinds = intent_text_kinds(state.intents)
    found = {int(state.owners[v]): v for v, kind in enumerate(kinds) if kind == "description"}
    return np.array([found[i] for i in range(len(state.intents.intents))])


@dataclass(frozen=True)
class Neighbourhood:
    """Per intent: its nearest sibling intents, how close they are, how high its own examples score on it
    (leave-one-out) and how high the other intents' texts score on it."""

    neighbours: np.ndarray
    density: np.ndarray
    own_level: np.ndarray
    null_level: np.ndarray

    @classmethod
    def of(cls, state: RoutingState, raw: Scoring, k: int) -> Neighbourhood:
        _, prototypes = state.prototype_sums
        sims = prototypes @ prototypes.T
        np.fill_diagonal(sims, -np.inf)
        neighbours = np.argsort(-sims, axis=1)[:, :k]
        density = np.take_along_axis(sims, neighbours, axis=1).mean(axis=1)
        every = state.intent_index.vectors(np.arange(len(state.owners)))
        scores = intent_scores(state, every, raw)
        queries = query_rows(state)
        left_out = intent_scores(
            state, every[queries], raw, LeftOut(rows=np.arange(len(queries)), vectors=queries)
        )
        n = len(state.intents.intents)
        own = np.array([left_out[state.owners[queries] == i, i].mean() for i in range(n)])
        null = np.array([np.quantile(scores[state.owners != i, i], 0.9) for i in range(n)])
        return cls(neighbours, density, own, null)


FEATURES = (
    "top",
    "gap",
    "top_minus_mean5",
    "knowledge_gap",
    "centroid",
    "lex_top",
    "lex_folder",
    "lex_kb",
    "lex_top_idf",
    "sibling_gap",
    "density",
    "description",
    "sibling_description",  # the best cosine to the top intent's nearest siblings' descriptions
    "sibling_density",  # mean prototype cosine of the top intent to its nearest siblings (per intent)
    "own_level",  # the top intent's examples' mean leave-one-out score (per intent)
    "null_level",  # 90th percentile of the other intents' texts' scores at the top intent (per intent)
)


def feature_rows(
    state: RoutingState,
    vocab: Vocabulary,
    vectors: np.ndarray,
    texts: Sequence[str],
    scores: np.ndarray,
    own_texts: Sequence[int | None],
    removed: Sequence[int | None],
    hood: Neighbourhood,
) -> tuple[np.ndarray, np.ndarray]:
    """(messages, FEATURES) matrix and the top intent of each row, from raw per-intent `scores` (already
    with any exclusions applied)."""
    finite = np.where(np.isfinite(scores), scores, -1.0)
    top_i, top, second = top_two(finite)
    second = np.where(np.isfinite(second), second, -1.0)
    sorted_scores = -np.sort(-finite, axis=1)
    mean5 = sorted_scores[:, 1:6].mean(axis=1)
    knowledge = (
        state.knowledge_index.search(vectors, 1).scores[:, 0] if state.knowledge_index.size else top * 0
    )
    centroid = state.prototype_sums[1].mean(axis=0)
    centroid /= np.linalg.norm(centroid)
    cen = vectors @ centroid
    rows = np.arange(len(vectors))
    sib = finite[rows[:, None], hood.neighbours[top_i]]  # the top intent's nearest siblings' scores
    sibling_gap = top - sib.max(axis=1)
    density = (finite >= (top - 0.05)[:, None]).sum(axis=1)
    described = description_rows(state)
    description = np.einsum("ij,ij->i", vectors, state.intent_index.vectors(described[top_i]))
    sibling_descriptions = state.intent_index.vectors(described)[hood.neighbours[top_i]]
    sibling_description = np.einsum("ij,ikj->ik", vectors, sibling_descriptions).max(axis=1)
    lex = np.array(
        [
            lexical_features(vocab, tokens(t), int(i), o, r)
            for t, i, o, r in zip(texts, top_i, own_texts, removed, strict=True)
        ]
    )
    matrix = np.column_stack(
        [
            top,
            top - second,
            top - mean5,
            knowledge - top,
            cen,
            lex[:, 0],
            lex[:, 1],
            lex[:, 2],
            lex[:, 3],
            sibling_gap,
            density,
            description,
            sibling_description,
            hood.density[top_i],
            hood.own_level[top_i],
            hood.null_level[top_i],
        ]
    )
    return matrix, top_i


def folder_50(labels: set[str]) -> IntentSet:
    """The demo folder restricted to BANKING77-OOS's 50 kept intents (bench_oos_share.py's setup)."""
    base = load_intents(ROOT / "intents")
    held = banking77_oos_held_out()
    kept = tuple(i for i in base.intents if i.name in labels and i.name not in held and not is_built_in(i))
    return IntentSet(intents=kept, version=content_hash(i.spec for i in kept), small_talk=None)


def raw_scoring(settings: Settings) -> Scoring:
    return Scoring(
        1.0, 0.0, settings.aggregation_weight, settings.aggregation_depth, settings.prototype_weight
    )


@dataclass(frozen=True)
class Scored:
    """Feature rows and, for the pseudo-queries, the label fitted on (1: in scope and its intent first)."""

    features: np.ndarray
    top_intent: np.ndarray
    second: np.ndarray  # runner-up raw score (the router's margin)


def pseudo_features(
    state: RoutingState,
    vocab: Vocabulary,
    raw: Scoring,
    neighbours: Neighbourhood,
    cross_fit: CrossFit | None = None,
) -> tuple[Scored, np.ndarray, Scored]:
    """Features of the folder's examples leave-one-out (with whether their intent is first) and with their
    whole intent removed. With `cross_fit`, each example is scored by the fold model that never saw it,
    against the folder as that model encodes it (as self-calibration does)."""
    queries = query_rows(state)
    if cross_fit is None:
        return _pseudo_rows(state, vocab, raw, neighbours, queries)
    parts = []
    for fold in range(cross_fit.vectors.shape[0]):
        mine = queries[cross_fit.folds[queries] == fold]
        index = VectorIndex(cross_fit.vectors[fold], model_id=state.model_id, content_hash=state.version)
        parts.append(
            _pseudo_rows(dataclasses.replace(state, intent_index=index), vocab, raw, neighbours, mine)
        )
    inside, right, outside = zip(*parts, strict=True)
    return (
        merged(inside),
        np.concatenate(right),
        merged(outside),
    )


def merged(parts: Sequence[Scored]) -> Scored:
    """Several `Scored` blocks as one."""
    return Scored(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in dataclasses.fields(Scored)))


def _pseudo_rows(
    state: RoutingState, vocab: Vocabulary, raw: Scoring, neighbours: Neighbourhood, queries: np.ndarray
) -> tuple[Scored, np.ndarray, Scored]:
    """`pseudo_features` of example rows `queries`, scored against `state`'s own vectors."""
    owners = state.owners[queries]
    vectors = state.intent_index.vectors(queries)
    texts, _ = intent_texts(state.intents)
    q_texts = [texts[q] for q in queries]
    inside = intent_scores(state, vectors, raw, LeftOut(rows=np.arange(len(queries)), vectors=queries))
    outside = intent_scores(state, vectors, raw)
    outside[np.arange(len(queries)), owners] = -np.inf
    f_in, top_in = feature_rows(
        state, vocab, vectors, q_texts, inside, list(map(int, queries)), [None] * len(queries), neighbours
    )
    f_out, top_out = feature_rows(
        state, vocab, vectors, q_texts, outside, [None] * len(queries), list(map(int, owners)), neighbours
    )
    return (
        Scored(f_in, top_in, second_of(inside)),
        top_in == owners,
        Scored(f_out, top_out, second_of(outside)),
    )


def second_of(scores: np.ndarray) -> np.ndarray:
    finite = np.where(np.isfinite(scores), scores, -1.0)
    _, _, second = top_two(finite)
    return np.where(np.isfinite(second), second, -1.0)


def message_features(
    state: RoutingState,
    vocab: Vocabulary,
    raw: Scoring,
    neighbours: Neighbourhood,
    vectors: np.ndarray,
    texts: Sequence[str],
) -> Scored:
    scores = intent_scores(state, vectors, raw)
    n = len(texts)
    f, top = feature_rows(state, vocab, vectors, texts, scores, [None] * n, [None] * n, neighbours)
    return Scored(f, top, second_of(scores))


def recall_at(score: np.ndarray, right: np.ndarray, is_in: np.ndarray, level: float) -> float | None:
    """Best sibling recall over thresholds on `score` with in-scope answered right >= `level`."""
    s_in, s_out = score[is_in], score[~is_in]
    r_in = right[is_in]
    # candidate thresholds: the in-scope right rows' scores, from the highest down
    thresholds = np.sort(s_in[r_in])[::-1]
    need = int(np.ceil(level * len(s_in)))
    if need > len(thresholds) or need == 0:
        return None
    t = thresholds[need - 1]  # the highest threshold still answering `need` right in-scope rows
    return float((s_out < t).mean())


def accepted_by_label(
    score: np.ndarray, right: np.ndarray, is_in: np.ndarray, data: Sequence[Example], level: float = 0.72
) -> dict[str, float]:
    """Per held-out intent, the share of its messages `score` accepts at the threshold answering `level`
    of the in-scope messages right: which siblings the ranking cannot tell apart."""
    need = int(np.ceil(level * is_in.sum()))
    threshold = np.sort(score[is_in & right])[::-1][need - 1]
    labels = np.array([r.label for r in data])
    shares = {
        str(label): round(float((score[labels == label] >= threshold).mean()), 2)
        for label in np.unique(labels[~is_in])
    }
    return dict(sorted(shares.items(), key=lambda item: -item[1]))


def feature_aucs(
    features: np.ndarray,
    right: np.ndarray,
    is_in: np.ndarray,
    p_in: np.ndarray,
    right_p: np.ndarray,
    p_out: np.ndarray,
) -> dict[str, tuple[float, float]]:
    """Per feature, how well it tells right answers from siblings (ROC AUC): on the messages (in scope and
    right against siblings) and on the pseudo-queries (leave-one-out and right against removed-intent)."""
    from sklearn.metrics import roc_auc_score

    kept = right | ~is_in
    labels_p = np.concatenate([np.ones(int(right_p.sum())), np.zeros(len(p_out))])
    return {
        name: (
            round(float(roc_auc_score(right[kept], features[kept, j])), 3),
            round(float(roc_auc_score(labels_p, np.concatenate([p_in[right_p, j], p_out[:, j]]))), 3),
        )
        for j, name in enumerate(FEATURES)
    }


def recall_today(
    top: np.ndarray, second: np.ndarray, right: np.ndarray, is_in: np.ndarray, level: float, scoring: Scoring
) -> tuple[float | None, float]:
    """`recall_at` for the router's rule (confidence threshold and margin), best over the margin grid."""
    conf, conf2 = scoring.confidence(top), scoring.confidence(second)
    best: tuple[float | None, float] = (None, 0.0)
    for margin in (*MARGINS, 0.04, 0.07):
        # a message failing the margin is not answered: push its score below every threshold
        score = np.where(conf - conf2 >= margin, conf, -1.0)
        got = recall_at(score, right, is_in, level)
        if got is not None and (best[0] is None or got > best[0]):
            best = (got, margin)
    return best


SETS = {
    "top": ("top",),
    "top+gap": ("top", "gap"),
    "top+gap+mean5": ("top", "gap", "top_minus_mean5"),
    "top+gap+knowledge": ("top", "gap", "knowledge_gap"),
    "top+gap+centroid": ("top", "gap", "centroid"),
    "top+gap+density": ("top", "gap", "density"),
    "top+gap+lex_top": ("top", "gap", "lex_top"),
    "top+gap+lex_folder": ("top", "gap", "lex_folder"),
    "top+gap+lex_kb": ("top", "gap", "lex_kb"),
    "top+gap+lex_top_idf": ("top", "gap", "lex_top_idf"),
    "top+gap+sibling_gap": ("top", "gap", "sibling_gap"),
    "top+gap+lex_top_idf+lex_folder": ("top", "gap", "lex_top_idf", "lex_folder"),
    "top+gap+lex_top_idf+knowledge": ("top", "gap", "lex_top_idf", "knowledge_gap"),
    "top+gap+sibling_density": ("top", "gap", "sibling_density"),
    "top+gap+own_level+null_level": ("top", "gap", "own_level", "null_level"),
    "top+description": ("top", "description"),
    "top+description+sibling_description": ("top", "description", "sibling_description"),
    "top+gap+description": ("top", "gap", "description"),
    "top+gap+description+lex_top_idf": ("top", "gap", "description", "lex_top_idf"),
    "all": FEATURES,
}
# Fixed combinations (weights chosen on train, not fitted): the top raw score plus w times the message's
# cosine to the top intent's description.
FIXED: dict[str, dict[str, float]] = {
    f"top + {w:g} x description cosine": {"top": 1.0, "description": w} for w in (0.25, 0.5, 1.0, 2.0)
}
FIXED |= {
    "top + 0.5 x description - 0.25 x nearest siblings' description": {
        "top": 1.0,
        "description": 0.5,
        "sibling_description": -0.25,
    },
    "top - 0.1 x sibling density": {"top": 1.0, "sibling_density": -0.1},
    "top - 0.25 x sibling density": {"top": 1.0, "sibling_density": -0.25},
    "top - own level": {"top": 1.0, "own_level": -1.0},
    "top - 0.5 x null level": {"top": 1.0, "null_level": -0.5},
}


def fit_set(names: Sequence[str], f_in: np.ndarray, right: np.ndarray, f_out: np.ndarray, c: float = 1.0):
    """Logistic regression of "in scope and right" on the pseudo-queries: returns a scorer of feature rows."""
    from sklearn.linear_model import LogisticRegression

    cols = [FEATURES.index(n) for n in names]
    x = np.concatenate([f_in[:, cols], f_out[:, cols]])
    y = np.concatenate([right, np.zeros(len(f_out), dtype=bool)])
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-9
    model = LogisticRegression(C=c, class_weight="balanced", max_iter=1000).fit((x - mean) / std, y)

    def score(f: np.ndarray) -> np.ndarray:
        return model.decision_function((f[:, cols] - mean) / std)

    return score, dict(zip(names, np.round(model.coef_[0], 3).tolist(), strict=True))


PER_INTENT = ("sibling_density", "own_level", "null_level")
CEILINGS = ("ceiling: logistic, per-message features", "ceiling: boosted trees, per-message features")


def ceiling(features: np.ndarray, right: np.ndarray, is_in: np.ndarray) -> dict[str, dict[str, object]]:
    """How far the features could go with labels: fitted on a random half of the messages' labels (which a
    folder never has), scored on the other half. A diagnostic of the features, not a candidate."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    # per-intent constants name the top intent, so trees fitted on labels would learn which intents the
    # held-out topics land on: left out, the ceiling uses what a message's own scores and words say
    per_intent = [FEATURES.index(name) for name in PER_INTENT]
    features = np.delete(features, per_intent, axis=1)
    order = np.random.default_rng(0).permutation(len(features))
    a, b = order[: len(order) // 2], order[len(order) // 2 :]
    mean, std = features[a].mean(axis=0), features[a].std(axis=0) + 1e-9
    linear = LogisticRegression(max_iter=2000, class_weight="balanced").fit(
        (features[a] - mean) / std, right[a]
    )
    trees = HistGradientBoostingClassifier(max_iter=300, learning_rate=0.05, random_state=0).fit(
        features[a], right[a]
    )
    scores = {
        CEILINGS[0]: linear.decision_function((features[b] - mean) / std),
        CEILINGS[1]: trees.predict_proba(features[b])[:, 1],
    }
    return {
        name: {f"{lv}": recall_at(s, right[b], is_in[b], lv) for lv in LEVELS} | {"coef": "label-fitted"}
        for name, s in scores.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DATA / "train.csv")
    parser.add_argument("--self-train", action="store_true")
    parser.add_argument("--neighbours", type=int, default=3)
    parser.add_argument("--test-once", default=None, help="a candidate of SETS to score on test.csv too")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--cross-fit",
        action="store_true",
        help="with --self-train: score the pseudo-queries with the cross-fit models, as self-calibration does",
    )
    parser.add_argument(
        "--kb-negatives",
        action="store_true",
        help="fit on the knowledge base's questions as off-topic pseudo-queries too",
    )
    parser.add_argument(
        "--ceiling",
        action="store_true",
        help="also fit on half of the labels (a diagnostic, not a candidate)",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = read_dataset(args.data, "test")
    labels = {r.label for r in rows}
    folder = folder_50(labels)
    held = banking77_oos_held_out()
    settings = Settings(
        intents_dir=ROOT / "intents",
        torch_threads=args.threads,
        self_calibrate=True,
        cache_dir=Path(".bot_cache"),
    ).with_overrides()
    engine = engine_for(settings, folder, args.self_train)
    state = engine.with_intents(folder, calibration=None)
    raw = raw_scoring(settings)
    vocab = Vocabulary.of(state)
    neighbours = Neighbourhood.of(state, raw, args.neighbours)
    cross_fit = CrossFit.load(engine.settings.model, folder) if args.cross_fit else None
    if args.cross_fit and cross_fit is None:
        raise SystemExit("--cross-fit needs --self-train (the stock model has no cross-fit)")
    p_in, right_p, p_out = pseudo_features(state, vocab, raw, neighbours, cross_fit)
    slope, center = fit_confidence(p_in.features[:, 0], right_p)
    scoring = Scoring(slope, center, raw.aggregation_weight, raw.aggregation_depth, raw.prototype_weight)
    say(
        f"{len(folder.intents)} intents; {len(right_p)} pseudo-queries ({right_p.mean():.3f} right leave-one-out)"
    )
    results: dict[str, dict[str, object]] = {}
    data_sets = {"train": rows}
    if args.test_once:
        data_sets["test"] = read_dataset(DATA / "test.csv", "test")
    negatives = p_out.features
    if args.kb_negatives:  # the knowledge base's questions: topics the folder says its intents do not cover
        titles = sorted({p.title for p in state.passages})
        kb = message_features(state, vocab, raw, neighbours, engine.encoder.encode(titles), titles)
        negatives = np.concatenate([negatives, kb.features])
        say(f"{len(titles)} knowledge-base questions added to the off-topic pseudo-queries")
    fitted = {name: fit_set(cols, p_in.features, right_p, negatives) for name, cols in SETS.items()}
    for split, data in data_sets.items():
        data = [r for r in data if r.label in folder.names or r.label in held]
        texts = [r.text for r in data]
        say(f"{split}: encoding {len(texts)} messages")
        vectors = engine.encoder.encode(texts)
        m = message_features(state, vocab, raw, neighbours, vectors, texts)
        is_in = np.array([r.label in folder.names for r in data])
        names = folder.names
        right = np.array([names[i] == r.label for i, r in zip(m.top_intent, data, strict=True)]) & is_in
        say(f"{split}: {is_in.sum()} in scope (top-1 {right[is_in].mean():.3f}), {(~is_in).sum()} siblings")
        out: dict[str, object] = {}
        for level in LEVELS:
            got, margin = recall_today(m.features[:, 0], m.second, right, is_in, level, scoring)
            out[f"today@{level}"] = (got, margin)
        for name, (scorer, coefs) in fitted.items():
            if split == "test" and name != args.test_once:
                continue
            s = scorer(m.features)
            out[name] = {f"{level}": recall_at(s, right, is_in, level) for level in LEVELS} | {"coef": coefs}
        for name, weights in FIXED.items():
            if split == "test" and name != args.test_once:
                continue
            s = sum(w * m.features[:, FEATURES.index(f)] for f, w in weights.items())
            out[name] = {f"{level}": recall_at(s, right, is_in, level) for level in LEVELS} | {
                "coef": weights
            }
        if args.ceiling and split == "train":
            out |= ceiling(m.features, right, is_in)
        out["accepted by held-out intent"] = accepted_by_label(m.features[:, 0], right, is_in, data)
        out["auc"] = feature_aucs(m.features, right, is_in, p_in.features, right_p, p_out.features)
        results[split] = out
    if args.json:
        print(json.dumps(results))
        return
    for split, out in results.items():
        accepted = out["accepted by held-out intent"]
        print(f"\n{split}: ROC AUC (messages, pseudo-queries) of each feature: {out['auc']}")
        print(f"\n{split}: held-out intents' share accepted by the top score at in-scope 0.72: {accepted}")
        print(f"\n{split}: sibling recall at in-scope answered right >= {', '.join(map(str, LEVELS))}\n")
        print("| score | " + " | ".join(f"@{lv}" for lv in LEVELS) + " | coefficients |")
        print("|---|" + "---|" * (len(LEVELS) + 1))
        today = [out[f"today@{lv}"] for lv in LEVELS]
        print(
            "| today (threshold + best margin) | "
            + " | ".join(f"{r:.3f} (m {m})" if r is not None else "-" for r, m in today)
            + " | |"
        )
        for name in (*SETS, *FIXED, *CEILINGS):
            if name in out:
                v = out[name]
                cells = [f"{v[str(lv)]:.3f}" if v[str(lv)] is not None else "-" for lv in LEVELS]
                print(f"| {name} | " + " | ".join(cells) + f" | {v['coef']} |")


if __name__ == "__main__":
    main()
