"""Which operating point a folder's state routes with when it has no labelled calibration: its
self-calibration, fitted on the YAML examples (scored by a self-trained model's cross-fit where it has one:
it covers the texts the model was trained on, never learned ones) and refitted with the learned examples as
real reviewed messages (`bot.routing.learned`), or the settings' defaults."""

from __future__ import annotations

from collections.abc import Callable

from bot.content.intents import IntentSet
from bot.routing.learned import Learned
from bot.routing.loaded_model import LoadedModel
from bot.routing.pseudo_queries import Evidence
from bot.routing.self_calibration import cached_self_calibration
from bot.routing.state import RoutingState, with_calibration


def self_calibrated(
    base: IntentSet, state: RoutingState, model: LoadedModel, yaml_state: Callable[[], RoutingState]
) -> tuple[RoutingState, str]:
    """`state` (the YAML intents `base` plus any learned examples, built with `model`) with its
    self-calibration, and what the operating point is ("self-calibration (fitted|cached[, with N learned
    examples])", or "defaults ..." when self-calibration is off or the folder too small). `yaml_state`
    builds the state of `base` alone (only called when `state` has learned examples)."""
    settings = model.settings
    if base.off_topic_share is not None:  # the folder's own share beats BOT_OOS_RATE (#31 item 3)
        settings = settings.model_copy(update={"oos_rate": base.off_topic_share})
    if not settings.self_calibrate:
        return state, "defaults"
    evidence = Evidence.of(settings.model, base, model.encoder)
    fit_on, learned = state, None
    if state.intents.version != base.version:
        fit_on = yaml_state()
        learned = Learned.of(state, fit_on)
    found = cached_self_calibration(fit_on, settings, evidence, learned)
    if found.calibration is None:
        return state, "defaults (too few intents or examples to self-calibrate)"
    how = "fitted" if found.fitted else "cached"
    if learned is not None:
        how += f", with {len(learned.rows)} learned examples"
    return with_calibration(state, settings, found.calibration), f"self-calibration ({how})"
