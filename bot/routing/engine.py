"""The routing engine: loads an intent folder into a `RoutingState`, swaps states atomically, routes messages.

Scoring itself is functions over the immutable state (`bot.routing.scoring`); the engine owns the models
(`LoadedModel`: one model's encoders), the live `(model, state)` pair and the lock that makes reloads,
model switches and learned examples atomic. A decision reads the pair once, so it never encodes with one
model and scores against another's index.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from bot.config import Settings
from bot.content.intents import IntentSet, load_intents
from bot.content.knowledge import Passage, load_knowledge
from bot.content.tone import TonePhrases, load_tone
from bot.errors import NotFoundError
from bot.routing.calibration import Calibration, load_calibration
from bot.routing.context import RouteContext, read_together, wants_context
from bot.routing.encoders import Encoder
from bot.routing.encoders.embedding_cache import CachedEncoder
from bot.routing.index import limit_native_threads
from bot.routing.loaded_model import LoadedModel, load_model
from bot.routing.operating_point import LastFitInputs, self_calibrated
from bot.routing.policy import Candidate, Decision, Route
from bot.routing.rendering import render
from bot.routing.scoring import decide_vectors
from bot.routing.state import RoutingState, build_state

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReloadResult:
    """What a reload did."""

    version: str
    intents: int
    passages: int
    embedded_texts: int
    seconds: float
    # the operating point in force: "calibration.yaml", "self-calibration (fitted|cached[, with N learned
    # examples])", "defaults ..."
    operating_point: str = "defaults"


@dataclass(frozen=True)
class Live:
    """The model and the state built with it: swapped together, read together."""

    model: LoadedModel
    state: RoutingState
    operating_point: str = "defaults"  # as `ReloadResult.operating_point` says it


KEEP_MODELS = 2  # the live model and the one before it (a shadow run built on it may still route)


class Engine:
    """Routes messages against the live intent set; `load` swaps in a new set (and model) only if it loads
    cleanly."""

    def __init__(self, settings: Settings, encoder: Encoder | None = None, *, progress: bool = False) -> None:
        self.progress = progress
        limit_native_threads(settings.torch_threads)
        self._model = load_model(settings, encoder)  # the model `load` uses unless told another
        self._models: dict[str, LoadedModel] = {settings.model: self._model}  # oldest first
        self.intents_dir = Path(settings.intents_dir)
        self.extra_examples: dict[str, list[str]] = {}  # learned from reviews and tickets, not in YAML
        self._base_intents: IntentSet | None = None
        self._fit_inputs = LastFitInputs()  # a learned example refits without rereading them
        self._reload_lock = threading.Lock()
        self._live: Live | None = None

    @property
    def settings(self) -> Settings:
        """The settings of the model in use (`model` names it)."""
        return self._model.settings

    @property
    def encoder(self) -> CachedEncoder:
        """The model in use, through the embedding cache (folder texts, evaluation sets)."""
        return self._model.encoder

    @property
    def query_encoder(self) -> Encoder:
        """The model in use for single messages from many threads (micro-batched)."""
        return self._model.query_encoder

    @property
    def direct_encoder(self) -> Encoder:
        """The model in use for batches the caller formed."""
        return self._model.direct_encoder

    @property
    def model_id(self) -> str:
        """The id of the model in use."""
        return self._model.model_id

    @property
    def live(self) -> Live:
        """The live model and state, read together (load first)."""
        live = self._live
        if live is None:
            raise RuntimeError("Engine.load() has not been called")
        return live

    @property
    def loaded(self) -> bool:
        """Whether a state is live (`load` succeeded once)."""
        return self._live is not None

    @property
    def state(self) -> RoutingState:
        """The live routing state (load first)."""
        return self.live.state

    @property
    def intents(self) -> IntentSet:
        """The live intent set."""
        return self.state.intents

    def load(
        self,
        intents_dir: Path | None = None,
        extra_examples: Mapping[str, Sequence[str]] | Callable[[], Mapping[str, Sequence[str]]] | None = None,
        model: str | None = None,
    ) -> ReloadResult:
        """Build a routing state from the folder and swap it in; on any error the old state stays live.

        `extra_examples` may be a function (reading the learned examples from the database): it is called
        under the reload lock, so an example learned while this reload runs is either in what it reads or
        applied after it, never overwritten by a read taken before it. `model` (a model folder or
        'bundled') routes the folder with that model from now on; default: the model in use.
        """
        started = time.perf_counter()
        with self._reload_lock:
            folder = Path(intents_dir) if intents_dir is not None else self.intents_dir
            source = extra_examples() if callable(extra_examples) else extra_examples
            extra = {k: list(v) for k, v in (source if source is not None else self.extra_examples).items()}
            using = self._model_named(model) if model is not None else self._model
            base, state, operating_point = self._prepare(folder, extra, using, self._fit_inputs)
            intents, passages = state.intents, state.passages
            self._live = Live(using, state, operating_point)
            self._model = using
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
            intents.version,
            len(intents.intents),
            len(passages),
            state.embedded_texts,
            seconds,
            operating_point,
        )

    def candidate(self, folder: Path) -> tuple[RoutingState, str]:
        """Build (not swap in) the state `load(folder)` would make, with the live learned examples, and
        its operating point: what a routing diff or a shadow run compares against the live state. It fits
        with its own inputs, so the live version's stay kept for the next learned example."""
        own = LastFitInputs()
        _base, state, operating_point = self._prepare(Path(folder), self.extra_examples, self._model, own)
        return state, operating_point

    def _model_named(self, name: str) -> LoadedModel:
        """The model `name` (a folder or 'bundled'), loaded once and kept while it is among the last few
        used (caller holds the reload lock)."""
        found = self._models.pop(name, None)
        if found is None:
            found = load_model(self._model.settings.with_overrides(model=name))
            log.info("loaded model %s (%s)", name, found.model_id)
        self._models[name] = found  # newest last
        while len(self._models) > KEEP_MODELS:
            del self._models[next(iter(self._models))]
        return found

    def _prepare(
        self, folder: Path, extra: Mapping[str, list[str]], model: LoadedModel, fit_inputs: LastFitInputs
    ) -> tuple[IntentSet, RoutingState, str]:
        """Read, validate, embed and calibrate a folder: its YAML intents, the state and the operating point."""
        base = load_intents(folder)
        intents = base.with_extra_examples(dict(extra))
        passages = load_knowledge(folder / "knowledge")
        calibration = load_calibration(folder, model.model_id)
        state = self._build(intents, passages, calibration, load_tone(folder), model)
        if calibration is not None:
            return base, state, "calibration.yaml"
        state, operating_point = self._self_calibrated(base, state, model, fit_inputs)
        return base, state, operating_point

    def _self_calibrated(
        self, base: IntentSet, state: RoutingState, model: LoadedModel, fit_inputs: LastFitInputs
    ) -> tuple[RoutingState, str]:
        """`self_calibrated`, reading a folder version's evidence and YAML state once per model."""
        inputs = fit_inputs.of(
            base, model, lambda: self._build(base, state.passages, None, state.tone_phrases, model)
        )
        return self_calibrated(base, state, model, inputs)

    @property
    def base_intents(self) -> IntentSet | None:
        """The loaded folder's intents without learned examples: what its self-calibration was fitted on
        when a self-trained model's cross-fit covers them (None before the first load)."""
        return self._base_intents

    def learn(self, intent: str, *texts: str) -> bool:
        """Make `texts` live examples of `intent` (and of no other intent) without a restart or a YAML edit.

        Only the new texts are embedded (the rest comes from the cache), and a self-calibrated point is
        refitted once for all of them. Returns False when nothing changed.
        """
        with self._reload_lock:
            if self.state.intents.get(intent) is None:
                return False
            extra = {
                name: [t for t in known if name == intent or t not in texts]
                for name, known in self.extra_examples.items()
            }
            held = extra.setdefault(intent, [])
            held.extend(t for t in dict.fromkeys(texts) if t not in held)  # one already learned stays put
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
        """Rebuild the live state on the YAML intents plus `extra` (caller holds the reload lock), and refit
        a self-calibrated operating point with them (a labelled calibration.yaml stays as it is).

        Returns False, changing nothing, when `extra` equals the live learned examples or nothing is loaded.
        """
        extra = {name: texts for name, texts in extra.items() if texts}
        live, base = self._live, self._base_intents
        if live is None or base is None or extra == self.extra_examples:
            return False
        state = live.state
        # the folder's calibration.yaml decides as on a reload (whatever its `source` says)
        labelled = state.calibration if live.operating_point == "calibration.yaml" else None
        rebuilt = self._build(
            base.with_extra_examples(extra), state.passages, labelled, state.tone_phrases, live.model
        )
        operating_point = live.operating_point
        if labelled is None:
            rebuilt, operating_point = self._self_calibrated(base, rebuilt, live.model, self._fit_inputs)
        self._live = Live(live.model, rebuilt, operating_point)
        self.extra_examples = extra
        return True

    def with_intents(
        self, intents: IntentSet, calibration: Calibration | Literal["live"] | None = "live"
    ) -> RoutingState:
        """Build (not swap in) a state for another intent set or calibration, sharing this engine's knowledge."""
        live = self.live
        fitted = live.state.calibration if calibration == "live" else calibration
        return self._build(intents, live.state.passages, fitted, live.state.tone_phrases, live.model)

    def with_learned(self, base: IntentSet, extra: Mapping[str, Sequence[str]]) -> tuple[RoutingState, str]:
        """Build (not swap in) the state the YAML intents `base` make with the learned examples `extra`,
        self-calibrated as a reload or a learned example makes it, and its operating point (the learning
        curve measures this, `scripts/bench/bench_learning_curve.py`)."""
        live = self.live
        state = self._build(
            base.with_extra_examples({name: list(texts) for name, texts in extra.items()}),
            live.state.passages,
            None,
            live.state.tone_phrases,
            live.model,
        )
        return self._self_calibrated(base, state, live.model, self._fit_inputs)

    def _build(
        self,
        intents: IntentSet,
        passages: tuple[Passage, ...],
        calibration: Calibration | None,
        tone: TonePhrases,
        model: LoadedModel,
    ) -> RoutingState:
        return build_state(
            model.encoder, model.settings, intents, passages, calibration, tone, progress=self.progress
        )

    # -- routing ---------------------------------------------------------------------------------

    def route(self, text: str, context: RouteContext | None = None) -> Decision:
        """Decide what to do with one message and render its answer (concurrent callers share batches)."""
        return self._route([text], [context or RouteContext()], batched=False)[0]

    def route_batch(
        self, texts: Sequence[str], contexts: Sequence[RouteContext], state: RoutingState | None = None
    ) -> list[Decision]:
        """`route` for messages the caller has already gathered into a batch (one encoder call), against
        the live state or `state` (a shadow run's candidate)."""
        return self._route(texts, contexts, batched=True, state=state)

    def _model_of(self, state: RoutingState | None) -> tuple[LoadedModel, RoutingState]:
        """The live pair, or `state` with the model that built it (a shadow run's candidate may predate a
        model switch); one read of the live pair, so a concurrent reload cannot mix two in one decision."""
        live = self.live
        if state is None or state.model_id == live.model.model_id:
            return live.model, state or live.state
        for model in list(self._models.values()):
            if model.model_id == state.model_id:
                return model, state
        raise RuntimeError(f"the model {state.model_id} that built this state is no longer loaded")

    def _route(
        self,
        texts: Sequence[str],
        contexts: Sequence[RouteContext],
        *,
        batched: bool,
        state: RoutingState | None = None,
    ) -> list[Decision]:
        model, state = self._model_of(state)
        encoder = model.direct_encoder if batched else model.query_encoder
        decisions = decide_vectors(state, encoder.encode(list(texts)))
        follow_ups = [
            row
            for row, (decision, text, context) in enumerate(zip(decisions, texts, contexts, strict=True))
            if wants_context(decision, text, context)
        ]
        if follow_ups:
            combined_texts = [f"{contexts[row].previous_user_text} {texts[row]}" for row in follow_ups]
            combined = decide_vectors(state, encoder.encode(combined_texts))
            for row, together in zip(follow_ups, combined, strict=True):
                decisions[row] = read_together(decisions[row], together)
        return [
            self.render(decision, text, context.metadata, state)
            for decision, text, context in zip(decisions, texts, contexts, strict=True)
        ]

    def route_many(
        self, texts: Sequence[str], *, state: RoutingState | None = None, progress: bool = False
    ) -> list[Decision]:
        """Decisions for many independent messages at once (batch classification, evaluation), against
        the live state or `state` (one built by `with_intents` for an experiment)."""
        model, state = self._model_of(state)
        vectors = model.query_encoder.encode(texts, progress=progress)
        return [
            self.render(d, t, {}, state) for d, t in zip(decide_vectors(state, vectors), texts, strict=True)
        ]

    def render(
        self, decision: Decision, text: str, metadata: Mapping[str, Any], state: RoutingState | None = None
    ) -> Decision:
        """Fill `answer`: the intent's template, the knowledge passage, a clarify question or a handoff notice."""
        return render(decision, text, metadata, state or self.state, self.settings.handoff_message)

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
            model_id=state.model_id,
            intents_version=state.version,
            calibration_id=state.calibration_id,
        )
        return self.render(decision, text, metadata or {}, state)
