"""Which operating point a folder's state routes with when it has no labelled calibration: its
self-calibration, fitted on the YAML examples (scored by a self-trained model's cross-fit where it has one:
it covers the texts the model was trained on, never learned ones) and refitted with the learned examples as
real reviewed messages (`bot.routing.learned`), or the settings' defaults."""

from __future__ import annotations

import functools
from collections.abc import Callable

from bot.content.intents import IntentSet
from bot.routing.learned import Learned
from bot.routing.loaded_model import LoadedModel
from bot.routing.pseudo_queries import Evidence
from bot.routing.self_calibration import cached_self_calibration
from bot.routing.state import RoutingState, with_calibration


class FitInputs:
    """A folder version's evidence and the state of its YAML intents alone, each built on first use and
    then kept: both are the same for every refit of that version with that model."""

    def __init__(self, evidence: Callable[[], Evidence], yaml_state: Callable[[], RoutingState]) -> None:
        self.evidence = functools.cache(evidence)
        self.yaml_state = functools.cache(yaml_state)


class LastFitInputs:
    """The `FitInputs` of the last folder version and model fitted (an engine's learned examples refit the
    same version again and again)."""

    def __init__(self) -> None:
        self._last: tuple[tuple[str, str], FitInputs] | None = None

    def of(self, base: IntentSet, model: LoadedModel, yaml_state: Callable[[], RoutingState]) -> FitInputs:
        """The inputs of `base` with `model`, kept from the last call when they are the same version's."""
        # one read: `Engine.with_learned` fits without the reload lock
        last, key = self._last, (model.model_id, base.version)
        if last is None or last[0] != key:
            last = key, FitInputs(lambda: Evidence.of(model.settings.model, base, model.encoder), yaml_state)
            self._last = last
        return last[1]


def self_calibrated(
    base: IntentSet, state: RoutingState, model: LoadedModel, inputs: FitInputs
) -> tuple[RoutingState, str]:
    """`state` (the YAML intents `base` plus any learned examples, built with `model`) with its
    self-calibration, and what the operating point is ("self-calibration (fitted|cached[, with N learned
    examples])", or "defaults ..." when self-calibration is off or the folder too small). `inputs`: the
    evidence of `base` and its YAML-only state (used only when `state` has learned examples)."""
    settings = model.settings
    if base.off_topic_share is not None:  # the folder's own share beats BOT_OOS_RATE (#31 item 3)
        settings = settings.model_copy(update={"oos_rate": base.off_topic_share})
    if not settings.self_calibrate:
        return state, "defaults"
    evidence = inputs.evidence()
    fit_on, learned = state, None
    if state.intents.version != base.version:
        fit_on = inputs.yaml_state()
        learned = Learned.of(state, fit_on)
    found = cached_self_calibration(fit_on, settings, evidence, learned)
    if found.calibration is None:
        return state, "defaults (too few intents or examples to self-calibrate)"
    how = "fitted" if found.fitted else "cached"
    if learned is not None:
        how += f", with {len(learned.rows)} learned examples"
    return with_calibration(state, settings, found.calibration), f"self-calibration ({how})"
