"""The routing engine: builds indexes from intents and knowledge, routes messages, swaps sets atomically."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
import math
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np

from bot.calibration import Calibration, calibration_id, content_id, load_calibration
from bot.config import Settings
from bot.encoder import BatchingEncoder, CachedEncoder, EmbeddingCache, Encoder, make_encoder
from bot.errors import NotFoundError, TemplateError
from bot.index import VectorIndex, limit_native_threads
from bot.intents import IntentSet, load_intents
from bot.knowledge import Passage, load_knowledge
from bot.router import Candidate, Decision, IntentRule, Policy, Route, decide
from bot.tone import ANGRY, CALM, ToneDetector

log = logging.getLogger(__name__)

_SEARCH_K = 512  # nearest intent vectors looked at per message; far more than any intent needs
_FOLLOW_UP_MAX_WORDS = 8  # a follow-up this short may lean on the previous user turn


@dataclass(frozen=True)
class RouteContext:
    """What the conversation knows that may help route a message."""

    previous_user_text: str | None = None
    metadata: Mapping[str, Any] = dataclasses.field(default_factory=dict)


# Weight of the intent's prototype (the normalised mean of its vectors) against its nearest vector;
# chosen by few-shot cross-validation on BANKING77 train.csv (scripts/tune_defaults.py).
DEFAULT_PROTOTYPE_WEIGHT = 0.3


@dataclass(frozen=True)
class Scoring:
    """How raw cosines become per-intent scores and calibrated confidences.

    score = (1 - p) * ((1 - w) * best + w * mean of the best d) + p * cosine to the intent's prototype.
    """

    slope: float
    center: float
    aggregation_weight: float
    aggregation_depth: int
    prototype_weight: float = DEFAULT_PROTOTYPE_WEIGHT

    @classmethod
    def from_settings(cls, settings: Settings) -> Scoring:
        """The scoring that `settings` describe."""
        return cls(
            slope=settings.calibration_slope,
            center=settings.calibration_center,
            aggregation_weight=settings.aggregation_weight,
            aggregation_depth=settings.aggregation_depth,
            # a Settings field may not exist yet: the constant is the tuned default either way
            prototype_weight=settings.prototype_weight,
        )

    def confidence(self, scores: np.ndarray) -> np.ndarray:
        """Logistic map of raw intent scores to 0..1, fitted so it tracks the chance of being right."""
        with np.errstate(over="ignore"):
            return 1.0 / (1.0 + np.exp(-self.slope * (scores - self.center)))


_PROTOTYPE_SUMS: weakref.WeakKeyDictionary[VectorIndex, tuple[np.ndarray, np.ndarray]] = (
    weakref.WeakKeyDictionary()
)


def _prototype_sums(state: RoutingState) -> tuple[np.ndarray, np.ndarray]:
    """Each intent's vector sum and its unit mean (the prototype), computed once per index (states are
    immutable); the sums let a leave-one-out score take one vector back out."""
    index = state.intent_index
    found = _PROTOTYPE_SUMS.get(index)
    if found is None:
        vectors = index.vectors()
        padded = np.concatenate([vectors, np.zeros((1, index.dim), dtype=np.float32)])
        sums = padded[state.gather].sum(axis=1)  # gather pads with -1 -> the zero row
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        found = (sums, (sums / np.where(norms == 0, 1.0, norms)).astype(np.float32))
        _PROTOTYPE_SUMS[index] = found
    return found


def _prototypes(state: RoutingState) -> np.ndarray:
    """Unit mean vector of each intent."""
    return _prototype_sums(state)[1]


@dataclass(frozen=True)
class LeftOut:
    """Intent vectors to ignore while scoring some queries: query `rows[k]` does not see vector `vectors[k]`.

    Calibrating or evaluating on messages that are also intent examples must not let a message find itself
    (a cosine of 1.0 would promise confidence the router never has on a new message): each such message is
    scored leave-one-out, as if its own example had not been added.
    """

    rows: np.ndarray
    vectors: np.ndarray


def intent_texts(intents: IntentSet) -> tuple[list[str], list[int]]:
    """The texts embedded for each intent (name, title, description, examples) and their owners."""
    texts: list[str] = []
    owners: list[int] = []
    for position, intent in enumerate(intents.intents):
        spec = intent.spec
        own = [spec.name.replace("_", " "), spec.description, *spec.examples]
        if spec.title:
            own.insert(1, spec.title)
        for text in dict.fromkeys(own):
            texts.append(text)
            owners.append(position)
    return texts, owners


@dataclass(frozen=True)
class RoutingState:
    """Everything one version of the intent set routes with; replaced whole on reload."""

    intents: IntentSet
    passages: tuple[Passage, ...]
    intent_index: VectorIndex
    knowledge_index: VectorIndex
    owners: np.ndarray  # vector id -> intent position
    gather: np.ndarray  # intent position -> its vector ids, padded with -1
    rules: Mapping[str, IntentRule]
    scoring: Scoring
    policy: Policy
    calibration: Calibration | None
    loaded_at: datetime
    embedded_texts: int  # texts that had to be embedded (not found in the cache) to build this state

    @property
    def version(self) -> str:
        """The intent set's content hash."""
        return self.intents.version

    @functools.cached_property  # read on every decision; the state never changes
    def calibration_id(self) -> str:
        """What scored this state's decisions, which the intents hash leaves out: the applied calibration's
        content hash, or 'settings-' and a hash of the scoring the settings give (they can change too)."""
        if self.calibration is not None:
            return calibration_id(self.calibration)
        return "settings-" + content_id(dataclasses.asdict(self.scoring))[:8]


@dataclass(frozen=True)
class ReloadResult:
    """What a reload did."""

    version: str
    intents: int
    passages: int
    embedded_texts: int
    seconds: float


class Engine:
    """Routes messages against the live intent set; `reload` swaps in a new set only if it loads cleanly."""

    def __init__(self, settings: Settings, encoder: Encoder | None = None, *, progress: bool = False) -> None:
        self.settings = settings
        self.progress = progress
        limit_native_threads(settings.torch_threads)
        raw = encoder or make_encoder(
            settings.model,
            backend=settings.encoder_backend,
            threads=settings.torch_threads,
            cache_dir=settings.cache_dir,
        )
        if isinstance(raw, BatchingEncoder):  # another engine's (tests share one model): reuse its batcher
            batching: BatchingEncoder | None = raw
            raw = raw.inner
        elif settings.batch_max_size > 1:
            batching = BatchingEncoder(
                raw, max_batch=settings.batch_max_size, max_wait_ms=settings.batch_wait_ms
            )
        else:
            batching = None
        self.query_encoder: Encoder = batching or raw  # single messages from many threads
        self.direct_encoder: Encoder = raw  # batches formed by the caller (`route_batch`)
        self.encoder = CachedEncoder(raw, EmbeddingCache(settings.cache_dir / "embeddings.sqlite3"))
        self.policy = Policy(
            threshold=settings.threshold,
            margin=settings.margin,
            retrieval_threshold=settings.retrieval_threshold,
            max_clarify_options=settings.max_clarify_options,
        )
        self.intents_dir = Path(settings.intents_dir)
        self.extra_examples: dict[str, list[str]] = {}  # learned from reviews and tickets, not in YAML
        self._base_intents: IntentSet | None = None
        self.tone = ToneDetector(
            self.encoder.encode(ANGRY), self.encoder.encode(CALM), settings.anger_threshold
        )
        self._reload_lock = threading.Lock()
        self._state: RoutingState | None = None

    @property
    def model_id(self) -> str:
        """The encoder's model id."""
        return self.encoder.model_id

    @property
    def state(self) -> RoutingState:
        """The live routing state (load first)."""
        if self._state is None:
            raise RuntimeError("Engine.load() has not been called")
        return self._state

    @property
    def intents(self) -> IntentSet:
        """The live intent set."""
        return self.state.intents

    def load(
        self,
        intents_dir: Path | None = None,
        extra_examples: Mapping[str, Sequence[str]] | Callable[[], Mapping[str, Sequence[str]]] | None = None,
    ) -> ReloadResult:
        """Build a routing state from the folder and swap it in; on any error the old state stays live.

        `extra_examples` may be a function (reading the learned examples from the database): it is called
        under the reload lock, so an example learned while this reload runs is either in what it reads or
        applied after it, never overwritten by a read taken before it.
        """
        started = time.perf_counter()
        with self._reload_lock:
            folder = Path(intents_dir) if intents_dir is not None else self.intents_dir
            source = extra_examples() if callable(extra_examples) else extra_examples
            extra = {k: list(v) for k, v in (source if source is not None else self.extra_examples).items()}
            base = load_intents(folder)
            intents = base.with_extra_examples(extra)
            passages = load_knowledge(folder / "knowledge")
            calibration = load_calibration(folder, self.model_id)
            state = self._build(intents, passages, calibration)
            self._state = state
            self.intents_dir = folder
            self.extra_examples = extra
            self._base_intents = base
        seconds = time.perf_counter() - started
        log.info(
            "loaded %d intents, %d passages (version %s) in %.2fs",
            len(intents.intents),
            len(passages),
            intents.version,
            seconds,
        )
        return ReloadResult(
            intents.version, len(intents.intents), len(passages), state.embedded_texts, seconds
        )

    def learn(self, intent: str, text: str) -> bool:
        """Make `text` a live example of `intent` (and of no other intent) without a restart or a YAML edit.

        Only the new text is embedded (the rest comes from the cache). Returns False when nothing changed.
        """
        with self._reload_lock:
            if self.state.intents.get(intent) is None:
                return False
            extra = {name: [t for t in texts if t != text] for name, texts in self.extra_examples.items()}
            extra.setdefault(intent, []).append(text)
            return self._swap_extra_examples(extra)

    def use_extra_examples(self, read: Callable[[], Mapping[str, Sequence[str]]]) -> bool:
        """Replace the learned examples with what `read` returns (under the reload lock); YAML is not re-read.

        Only texts not embedded before are encoded. Returns False when nothing changed.
        """
        with self._reload_lock:
            return self._swap_extra_examples({name: list(texts) for name, texts in read().items()})

    def unlearn(self, text: str) -> bool:
        """Stop using `text` as a learned example of any intent."""
        with self._reload_lock:
            extra = {name: [t for t in texts if t != text] for name, texts in self.extra_examples.items()}
            return self._swap_extra_examples(extra)

    def _swap_extra_examples(self, extra: dict[str, list[str]]) -> bool:
        """Rebuild the live state on the YAML intents plus `extra` (caller holds the reload lock).

        Returns False, changing nothing, when `extra` equals the live learned examples or nothing is loaded.
        """
        extra = {name: texts for name, texts in extra.items() if texts}
        state, base = self.state, self._base_intents
        if base is None or extra == self.extra_examples:
            return False
        self._state = self._build(base.with_extra_examples(extra), state.passages, state.calibration)
        self.extra_examples = extra
        return True

    def with_intents(
        self, intents: IntentSet, calibration: Calibration | Literal["live"] | None = "live"
    ) -> RoutingState:
        """Build (not swap in) a state for another intent set or calibration, sharing this engine's knowledge."""
        fitted = self.state.calibration if calibration == "live" else calibration
        return self._build(intents, self.state.passages, fitted)

    def use(self, state: RoutingState) -> None:
        """Swap in a state built by `with_intents`."""
        self._state = state

    def _build(
        self, intents: IntentSet, passages: tuple[Passage, ...], calibration: Calibration | None
    ) -> RoutingState:
        texts, owners_list = intent_texts(intents)
        vectors = self.encoder.encode(texts, progress=self.progress)
        embedded = self.encoder.last_misses
        knowledge_vectors = self.encoder.encode([p.embed_text for p in passages], progress=self.progress)
        embedded += self.encoder.last_misses
        owners = np.asarray(owners_list, dtype=np.int64)
        counts = np.bincount(owners, minlength=len(intents.intents))
        gather = np.full((len(intents.intents), int(counts.max())), -1, dtype=np.int64)
        fill = np.zeros(len(intents.intents), dtype=np.int64)
        for vector_id, owner in enumerate(owners_list):
            gather[owner, fill[owner]] = vector_id
            fill[owner] += 1
        scoring, policy = self._scoring_and_policy(calibration)
        fitted = calibration.intent_thresholds if calibration is not None else {}
        rules = {  # a threshold the bot builder wrote in YAML beats a fitted one
            i.name: IntentRule(
                threshold=i.spec.threshold if i.spec.threshold is not None else fitted.get(i.name),
                handoff=i.spec.handoff,
                has_answer=i.template is not None,
            )
            for i in intents.intents
        }
        knowledge_hash = hashlib.sha256("\n".join(p.embed_text for p in passages).encode()).hexdigest()[:12]
        return RoutingState(
            intents=intents,
            passages=passages,
            intent_index=VectorIndex(vectors, model_id=self.model_id, content_hash=intents.version),
            knowledge_index=VectorIndex(
                knowledge_vectors.reshape(len(passages), self.encoder.dim),
                model_id=self.model_id,
                content_hash=knowledge_hash,
            ),
            owners=owners,
            gather=gather,
            rules=rules,
            scoring=scoring,
            policy=policy,
            calibration=calibration,
            loaded_at=datetime.now(UTC),
            embedded_texts=embedded,
        )

    def _scoring_and_policy(self, calibration: Calibration | None) -> tuple[Scoring, Policy]:
        """A folder's fitted calibration if it has one for this model, else the settings' defaults."""
        if calibration is None:
            return Scoring.from_settings(self.settings), self.policy
        scoring = Scoring(
            slope=calibration.slope,
            center=calibration.center,
            aggregation_weight=calibration.aggregation_weight,
            aggregation_depth=calibration.aggregation_depth,
            prototype_weight=calibration.prototype_weight,
        )
        return scoring, dataclasses.replace(
            self.policy, threshold=calibration.threshold, margin=calibration.margin
        )

    # -- scoring ---------------------------------------------------------------------------------

    def intent_scores(
        self,
        queries: np.ndarray,
        state: RoutingState | None = None,
        scoring: Scoring | None = None,
        left_out: LeftOut | None = None,
    ) -> np.ndarray:
        """Aggregated score of every intent for each query row (`-inf` where no vector was near)."""
        state = state or self.state
        scoring = scoring or state.scoring
        hits = state.intent_index.search(queries, _SEARCH_K)
        sims = np.full((len(queries), state.intent_index.size + 1), -np.inf, dtype=np.float32)
        rows = np.arange(len(queries))[:, None]
        sims[rows, np.where(hits.ids >= 0, hits.ids, state.intent_index.size)] = hits.scores
        sims[:, -1] = -np.inf  # padding column for `gather == -1`
        if left_out is not None:
            sims[left_out.rows, left_out.vectors] = -np.inf
        per_intent = sims[:, state.gather]  # (queries, intents, vectors of that intent)
        best = per_intent.max(axis=2)
        weight, depth = scoring.aggregation_weight, scoring.aggregation_depth
        scores = best
        if weight > 0.0 and depth > 1:
            top = -np.sort(-per_intent, axis=2)[:, :, :depth]
            finite = np.isfinite(top)
            mean_top = np.where(finite, top, 0.0).sum(axis=2) / np.maximum(finite.sum(axis=2), 1)
            scores = np.where(np.isfinite(best), (1 - weight) * best + weight * mean_top, -np.inf)
        if scoring.prototype_weight > 0.0 and len(queries):
            # the prototype pools every example, so one stray example near the message weighs less
            prototype = np.asarray(queries, dtype=np.float32) @ _prototypes(state).T
            if left_out is not None and len(left_out.rows):
                prototype = self._prototype_without(prototype, queries, state, left_out)
            scores = np.where(
                np.isfinite(best),
                (1 - scoring.prototype_weight) * scores + scoring.prototype_weight * prototype,
                -np.inf,
            )
        return scores

    @staticmethod
    def _prototype_without(
        prototype: np.ndarray, queries: np.ndarray, state: RoutingState, left_out: LeftOut
    ) -> np.ndarray:
        """Prototype cosines where each left-out vector is taken back out of its intent's mean."""
        sums, _ = _prototype_sums(state)
        owners = state.owners[left_out.vectors]
        rest = sums[owners] - state.intent_index.vectors(left_out.vectors)
        norms = np.linalg.norm(rest, axis=1)
        cosines = np.einsum("ij,ij->i", np.asarray(queries, dtype=np.float32)[left_out.rows], rest)
        prototype = prototype.copy()
        prototype[left_out.rows, owners] = np.where(norms > 1e-6, cosines / np.maximum(norms, 1e-6), -np.inf)
        return prototype

    def left_out(
        self, texts: Sequence[str], labels: Sequence[str], state: RoutingState | None = None
    ) -> LeftOut:
        """The intent vectors each labelled message must not see: its own text among its intent's texts."""
        state = state or self.state
        vector_ids: dict[tuple[int, str], int] = {}
        all_texts, owners = intent_texts(state.intents)
        for vector_id, (text, owner) in enumerate(zip(all_texts, owners, strict=True)):
            vector_ids[(owner, text)] = vector_id
        positions = {name: position for position, name in enumerate(state.intents.names)}
        pairs = [
            (row, vector_ids[(positions[label], text)])
            for row, (text, label) in enumerate(zip(texts, labels, strict=True))
            if label in positions and (positions[label], text) in vector_ids
        ]
        found = np.array(pairs, dtype=np.int64).reshape(-1, 2)
        return LeftOut(rows=found[:, 0], vectors=found[:, 1])

    def _candidates(self, scores: np.ndarray, state: RoutingState) -> tuple[Candidate, ...]:
        confidences = state.scoring.confidence(scores)
        k = min(self.settings.top_k, len(scores))
        order = np.argsort(-scores)[:k]
        names = state.intents.names
        return tuple(
            Candidate(
                intent=names[i], score=round(float(scores[i]), 4), confidence=round(float(confidences[i]), 4)
            )
            for i in order
            if math.isfinite(float(scores[i]))
        )

    def decide_vectors(
        self, queries: np.ndarray, state: RoutingState, left_out: LeftOut | None = None
    ) -> list[Decision]:
        """Decisions (answers not rendered) for already-encoded messages against `state`."""
        scores = self.intent_scores(queries, state, left_out=left_out)
        knowledge = state.knowledge_index.search(queries, 1)
        anger = self.tone.anger(queries)
        decisions = []
        for row in range(len(queries)):
            retrieval_score: float | None = None
            passage: int | None = None
            if state.knowledge_index.size:
                retrieval_score = round(float(knowledge.scores[row, 0]), 4)
                passage = int(knowledge.ids[row, 0])
            decision = decide(
                self._candidates(scores[row], state), state.rules, state.policy, retrieval_score
            )
            decisions.append(
                dataclasses.replace(
                    decision,
                    source=state.passages[passage].source
                    if decision.route == "retrieve" and passage is not None
                    else None,
                    passage=passage if decision.route == "retrieve" else None,
                    anger=round(float(anger[row]), 4),
                    model_id=self.model_id,
                    intents_version=state.version,
                    calibration_id=state.calibration_id,
                )
            )
        return decisions

    # -- routing ---------------------------------------------------------------------------------

    def route(self, text: str, context: RouteContext | None = None) -> Decision:
        """Decide what to do with one message and render its answer (concurrent callers share batches)."""
        return self._route(self.query_encoder, [text], [context or RouteContext()])[0]

    def route_batch(self, texts: Sequence[str], contexts: Sequence[RouteContext]) -> list[Decision]:
        """`route` for messages the caller has already gathered into a batch (one encoder call)."""
        return self._route(self.direct_encoder, texts, contexts)

    def _route(
        self, encoder: Encoder, texts: Sequence[str], contexts: Sequence[RouteContext]
    ) -> list[Decision]:
        state = self.state  # one read: a concurrent reload cannot mix two versions in one decision
        decisions = self.decide_vectors(encoder.encode(list(texts)), state)
        # only when no intent was accepted: a clear request ("talk to a person") never borrows context
        follow_ups = [
            row
            for row, (decision, text, context) in enumerate(zip(decisions, texts, contexts, strict=True))
            if decision.intent is None
            and context.previous_user_text
            and len(text.split()) <= _FOLLOW_UP_MAX_WORDS
        ]
        if follow_ups:
            combined_texts = [f"{contexts[row].previous_user_text} {texts[row]}" for row in follow_ups]
            combined = self.decide_vectors(encoder.encode(combined_texts), state)
            for row, together in zip(follow_ups, combined, strict=True):
                if together.route == "answer":
                    decisions[row] = dataclasses.replace(
                        together,
                        context_used=True,
                        reason=f"{together.reason} (read together with the previous message)",
                    )
        return [
            self.render(decision, text, context.metadata, state)
            for decision, text, context in zip(decisions, texts, contexts, strict=True)
        ]

    def route_many(self, texts: Sequence[str], *, progress: bool = False) -> list[Decision]:
        """Decisions for many independent messages at once (batch classification, evaluation)."""
        state = self.state
        vectors = self.query_encoder.encode(texts, progress=progress)
        return [
            self.render(d, t, {}, state)
            for d, t in zip(self.decide_vectors(vectors, state), texts, strict=True)
        ]

    def render(
        self, decision: Decision, text: str, metadata: Mapping[str, Any], state: RoutingState | None = None
    ) -> Decision:
        """Fill `answer`: the intent's template, the knowledge passage, a clarify question or a handoff notice."""
        state = state or self.state
        intent = state.intents.get(decision.intent) if decision.intent else None
        if decision.route in ("answer", "handoff") and intent is not None and intent.template is not None:
            try:
                answer = intent.template.render(message=text, intent=intent.name, metadata=metadata)
            except TemplateError as exc:  # e.g. metadata of an unexpected type: a person answers instead
                log.warning("answer template of '%s' failed: %s", intent.name, exc)
                return dataclasses.replace(
                    decision,
                    route="handoff",
                    answer=self.settings.handoff_message,
                    reason=f"The answer template of '{intent.name}' failed ({exc}), so a person takes it.",
                )
        elif decision.route == "handoff":
            answer = self.settings.handoff_message
        elif decision.route == "retrieve" and decision.passage is not None:
            answer = state.passages[decision.passage].text
        else:
            offered = (state.intents.get(name) for name in decision.options)
            labels = [intent.spec.label for intent in offered if intent is not None]
            answer = "Did you mean: " + ", or ".join(labels) + "?"
        return dataclasses.replace(decision, answer=answer)

    def answer_choice(
        self, intent_name: str, text: str, metadata: Mapping[str, Any] | None = None
    ) -> Decision:
        """The decision when a customer picks `intent_name` from clarify options."""
        state = self.state
        intent = state.intents.get(intent_name)
        if intent is None:
            raise NotFoundError(f"unknown intent '{intent_name}'; choose one of the offered options")
        rule = state.rules[intent_name]
        route: Route = "handoff" if rule.handoff or not rule.has_answer else "answer"
        decision = Decision(
            route=route,
            intent=intent_name,
            confidence=1.0,
            candidates=(Candidate(intent=intent_name, score=1.0, confidence=1.0),),
            reason=f"The customer chose '{intent_name}' from the clarify options.",
            threshold=rule.threshold if rule.threshold is not None else state.policy.threshold,
            margin=state.policy.margin,
            model_id=self.model_id,
            intents_version=state.version,
            calibration_id=state.calibration_id,
        )
        return self.render(decision, text, metadata or {}, state)
