"""What a serving process says about itself: ready or not, which model and operating point route, and the
background training's progress (`/readyz`, `/healthz`, the stats and versions pages)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from bot.runtime.training import TrainingStatus

if TYPE_CHECKING:
    from bot.runtime.runtime import Runtime

ModelKind = Literal["self-trained", "interim", "configured"]


@dataclass(frozen=True)
class Readiness:
    """Whether the process routes, and with what."""

    ready: bool
    error: str | None  # why loading failed; the process stays unready
    model: str | None  # the live model's id
    model_kind: ModelKind | None
    model_note: str
    operating_point: str | None
    intents_version: str | None
    intents: int | None
    training: TrainingStatus
    version_id: int | None = None  # the stored intents version routing (GET /v1/versions): the one id shown


def readiness(runtime: Runtime) -> Readiness:
    """The process's state now (cheap: no I/O)."""
    training = runtime.training_status()
    engine = runtime.engine
    if not runtime.ready or not engine.loaded:
        return Readiness(False, runtime.load_error, None, None, "loading", None, None, None, training)
    live = engine.live
    kind, note = _model_kind(runtime, live.model.settings.model, training)
    return Readiness(
        True,
        None,
        live.model.model_id,
        kind,
        note,
        live.operating_point,
        live.state.intents.version,
        len(live.state.intents.intents),
        training,
        runtime.versions.live_id,
    )


def _model_kind(runtime: Runtime, routing_with: str, training: TrainingStatus) -> tuple[ModelKind, str]:
    """What the model routing now (`routing_with`, read with the state it built) is to this folder."""
    if runtime.policy is None:
        return "configured", "the configured model (BOT_MODEL); self-training does not apply"
    if routing_with != runtime.settings.model:
        return "self-trained", "the encoder trained on this folder version's own texts"
    plan = runtime.policy.live_plan
    if plan is not None and plan.interim:
        if training.state == "failed":
            return "interim", "the stock model: training this folder version failed, so it keeps routing"
        return (
            "interim",
            "the stock model with its own self-calibration, until this folder's model is trained",
        )
    return "configured", "the configured model: self-training does not apply to this folder"
