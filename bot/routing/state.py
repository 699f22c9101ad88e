"""The immutable routing state: one version of an intent folder, embedded and indexed, with its scoring.

Everything that routes, calibrates or evaluates reads a `RoutingState`; a reload builds a new one and
swaps it in whole, so a decision never mixes two versions.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from bot.config import Settings
from bot.content.intents import IntentSet
from bot.content.knowledge import Passage
from bot.content.tone import TonePhrases
from bot.routing.calibration import Calibration, calibration_id, content_id
from bot.routing.encoders.embedding_cache import CachedEncoder
from bot.routing.index import VectorIndex
from bot.routing.policy import IntentRule, Policy
from bot.routing.tone import ToneDetector


@dataclass(frozen=True)
class Scoring:
    """How raw cosines become per-intent scores and calibrated confidences.

    score = (1 - p) * ((1 - w) * best + w * mean of the best d) + p * cosine to the intent's prototype.
    """

    slope: float
    center: float
    aggregation_weight: float
    aggregation_depth: int
    prototype_weight: float

    @classmethod
    def from_settings(cls, settings: Settings) -> Scoring:
        """The scoring that `settings` describe."""
        return cls(
            slope=settings.calibration_slope,
            center=settings.calibration_center,
            aggregation_weight=settings.aggregation_weight,
            aggregation_depth=settings.aggregation_depth,
            prototype_weight=settings.prototype_weight,
        )

    def raw(self) -> Scoring:
        """The same aggregation with the identity confidence map (slope 1, center 0): scores as they are,
        what a confidence map is fitted on."""
        return dataclasses.replace(self, slope=1.0, center=0.0)

    @classmethod
    def from_calibration(cls, calibration: Calibration) -> Scoring:
        """The scoring a fitted calibration describes."""
        return cls(
            slope=calibration.slope,
            center=calibration.center,
            aggregation_weight=calibration.aggregation_weight,
            aggregation_depth=calibration.aggregation_depth,
            prototype_weight=calibration.prototype_weight,
        )

    def confidence(self, scores: np.ndarray) -> np.ndarray:
        """Logistic map of raw intent scores to 0..1, fitted so it tracks the chance of being right."""
        with np.errstate(over="ignore"):
            return 1.0 / (1.0 + np.exp(-self.slope * (scores - self.center)))


def policy_from_settings(settings: Settings) -> Policy:
    """The decision thresholds that `settings` describe."""
    return Policy(
        threshold=settings.threshold,
        margin=settings.margin,
        retrieval_threshold=settings.retrieval_threshold,
        max_clarify_options=settings.max_clarify_options,
        knowledge_lead=settings.knowledge_lead,
    )


def apply_calibration(settings: Settings, calibration: Calibration | None) -> tuple[Scoring, Policy]:
    """A folder's fitted calibration if it has one for this model, else the settings' defaults."""
    policy = policy_from_settings(settings)
    if calibration is None:
        return Scoring.from_settings(settings), policy
    return Scoring.from_calibration(calibration), dataclasses.replace(
        policy, threshold=calibration.threshold, margin=calibration.margin
    )


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


def intent_text_kinds(intents: IntentSet) -> list[str]:
    """What each text of `intent_texts` is: 'name', 'title', 'description' or 'example' (same order)."""
    kinds: list[str] = []
    for intent in intents.intents:
        spec = intent.spec
        own = [(spec.name.replace("_", " "), "name"), (spec.description, "description")]
        own += [(example, "example") for example in spec.examples]
        if spec.title:
            own.insert(1, (spec.title, "title"))
        first: dict[str, str] = {}
        for text, kind in own:
            first.setdefault(text, kind)
        kinds.extend(first.values())
    return kinds


def with_calibration(
    state: RoutingState, settings: Settings, calibration: Calibration | None
) -> RoutingState:
    """The same vectors and indexes, scored and decided with another calibration."""
    scoring, policy = apply_calibration(settings, calibration)
    return dataclasses.replace(
        state,
        scoring=scoring,
        policy=policy,
        calibration=calibration,
        rules=intent_rules(state.intents, calibration),
    )


def intent_rules(intents: IntentSet, calibration: Calibration | None) -> dict[str, IntentRule]:
    """What the policy needs per intent; a threshold the bot builder wrote in YAML beats a fitted one."""
    fitted = calibration.intent_thresholds if calibration is not None else {}
    return {
        i.name: IntentRule(
            threshold=i.spec.threshold if i.spec.threshold is not None else fitted.get(i.name),
            handoff=i.spec.handoff,
            has_answer=i.template is not None,
        )
        for i in intents.intents
    }


@dataclass(frozen=True)
class RoutingState:
    """Everything one version of the intent set routes with; replaced whole on reload."""

    intents: IntentSet
    passages: tuple[Passage, ...]
    intent_index: VectorIndex
    knowledge_index: VectorIndex  # each passage's title (an FAQ question) alone, and title with text
    knowledge_owners: np.ndarray  # knowledge vector id -> passage position
    owners: np.ndarray  # vector id -> intent position
    gather: np.ndarray  # intent position -> its vector ids, padded with -1
    rules: Mapping[str, IntentRule]
    scoring: Scoring
    policy: Policy
    calibration: Calibration | None
    tone: ToneDetector
    tone_phrases: TonePhrases
    top_k: int  # candidates kept on each decision
    loaded_at: datetime
    embedded_texts: int  # texts that had to be embedded (not found in the cache) to build this state

    @property
    def version(self) -> str:
        """The intent set's content hash."""
        return self.intents.version

    @property
    def model_id(self) -> str:
        """The encoder model the vectors come from."""
        return self.intent_index.model_id

    @functools.cached_property  # read on every decision; the state never changes
    def calibration_id(self) -> str:
        """What scored this state's decisions, which the intents hash leaves out: the applied calibration's
        content hash, or 'settings-' and a hash of the scoring the settings give (they can change too)."""
        if self.calibration is not None:
            return calibration_id(self.calibration)
        return "settings-" + content_id(dataclasses.asdict(self.scoring))[:8]

    @functools.cached_property
    def prototype_sums(self) -> tuple[np.ndarray, np.ndarray]:
        """Each intent's vector sum and its unit mean (the prototype), computed once per state; the sums
        let a leave-one-out score take one vector back out."""
        vectors = self.intent_index.vectors()
        padded = np.concatenate([vectors, np.zeros((1, self.intent_index.dim), dtype=np.float32)])
        sums = padded[self.gather].sum(axis=1)  # gather pads with -1 -> the zero row
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        return sums, (sums / np.where(norms == 0, 1.0, norms)).astype(np.float32)


def build_state(
    encoder: CachedEncoder,
    settings: Settings,
    intents: IntentSet,
    passages: tuple[Passage, ...],
    calibration: Calibration | None,
    tone_phrases: TonePhrases,
    *,
    progress: bool = False,
) -> RoutingState:
    """Embed (through the cache) and index an intent set, its knowledge and its tone phrases."""
    texts, owners_list = intent_texts(intents)
    vectors = encoder.encode(texts, progress=progress)
    embedded = encoder.last_misses
    # An FAQ question asked word for word must find its entry: against the passage embedded with its long
    # answer it scores 0.15-0.89 and loses to intents, so the question alone is a second vector of it.
    knowledge_texts, knowledge_owner_list = [], []
    for position, passage in enumerate(passages):
        for text in dict.fromkeys((passage.title, passage.embed_text)):
            knowledge_texts.append(text)
            knowledge_owner_list.append(position)
    knowledge_vectors = encoder.encode(knowledge_texts, progress=progress)
    embedded += encoder.last_misses
    tone = ToneDetector(encoder.encode(list(tone_phrases.angry)), encoder.encode(list(tone_phrases.calm)))
    owners = np.asarray(owners_list, dtype=np.int64)
    counts = np.bincount(owners, minlength=len(intents.intents))
    gather = np.full((len(intents.intents), int(counts.max())), -1, dtype=np.int64)
    fill = np.zeros(len(intents.intents), dtype=np.int64)
    for vector_id, owner in enumerate(owners_list):
        gather[owner, fill[owner]] = vector_id
        fill[owner] += 1
    scoring, policy = apply_calibration(settings, calibration)
    knowledge_hash = hashlib.sha256("\n".join(knowledge_texts).encode()).hexdigest()[:12]
    return RoutingState(
        intents=intents,
        passages=passages,
        intent_index=VectorIndex(vectors, model_id=encoder.model_id, content_hash=intents.version),
        knowledge_index=VectorIndex(
            knowledge_vectors.reshape(len(knowledge_texts), encoder.dim),
            model_id=encoder.model_id,
            content_hash=knowledge_hash,
        ),
        knowledge_owners=np.asarray(knowledge_owner_list, dtype=np.int64),
        owners=owners,
        gather=gather,
        rules=intent_rules(intents, calibration),
        scoring=scoring,
        policy=policy,
        calibration=calibration,
        tone=tone,
        tone_phrases=tone_phrases,
        top_k=settings.top_k,
        loaded_at=datetime.now(UTC),
        embedded_texts=embedded,
    )
