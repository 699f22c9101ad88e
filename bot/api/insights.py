"""What the analysts' stats page reads: stats with the operating point in force, and new-intent discovery
(the pages themselves are served by bot.api.widget)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from bot.api import versions
from bot.api.deps import DatabaseDep, EngineDep, ready_runtime, require
from bot.api.schemas import (
    ClusterOut,
    DiscoveryOut,
    OffTopicShareIn,
    OffTopicShareOut,
    OperatingPointOut,
    StatsWithOperatingPoint,
)
from bot.content.intents import IntentSet
from bot.content.off_topic import set_folder_share
from bot.errors import ConflictError
from bot.insights import discovery, off_topic_traffic, stats
from bot.routing.engine import Engine
from bot.routing.scoring import intent_scores
from bot.routing.state import RoutingState

router = APIRouter(tags=["analysts"])
Analyst = Depends(require("analyst"))
Days = Annotated[int, Query(ge=1, le=366, description="Look back this many days (UTC, today included).")]


def operating_point(state: RoutingState, figures: stats.StatsOut) -> OperatingPointOut:
    """What the live state decides with, and the reviewed accuracy the stats measured beside it."""
    calibration = state.calibration
    return OperatingPointOut(
        source="defaults" if calibration is None else calibration.source,
        threshold=state.policy.threshold,
        margin=state.policy.margin,
        expected_precision=calibration.expected_precision if calibration else None,
        expected_precision_low=calibration.expected_precision_low if calibration else None,
        expected_coverage=calibration.expected_coverage if calibration else None,
        expected_clarify=calibration.expected_clarify if calibration else None,
        oos_rate=calibration.oos_rate if calibration else None,
        target_precision=calibration.target_precision if calibration else None,
        data=calibration.data if calibration else None,
        calibration_id=state.calibration_id,
        intents_version=state.version,
        model_id=state.model_id,
        reviewed=figures.reviewed,
        reviewed_accuracy=figures.review_accuracy,
    )


def yaml_intents(engine: Engine, state: RoutingState) -> Callable[[], IntentSet | None]:
    """The live folder's intents without learned examples (what its self-calibration was fitted on); None
    when they no longer match `state` (a reload or a learned example came in between)."""

    def read() -> IntentSet | None:
        base = engine.base_intents
        if base is None:
            return None
        same = base.with_extra_examples(dict(engine.extra_examples)).version == state.intents.version
        return base if same else None

    return read


@router.get("/v1/stats", response_model=StatsWithOperatingPoint, dependencies=[Analyst])
def get_stats(database: DatabaseDep, engine: EngineDep, days: Days = 30) -> StatsWithOperatingPoint:
    """Messages per day by route, top intents, fallback and handoff rates, confidence, confusions, accuracy,
    the operating point (threshold, margin, their source and expected figures) in force, and the off-topic
    share the traffic shows against the one it assumes."""
    state = engine.state  # read once: a reload swaps the whole state
    figures = stats.compute_stats(database, days=days, sentiment=engine.settings)
    traffic = off_topic_traffic.database_traffic(database, figures.since, figures.until)
    return StatsWithOperatingPoint(
        **dict(figures),
        operating_point=operating_point(state, figures),
        off_topic=off_topic_traffic.report(
            traffic, state, engine.settings, engine.encoder, yaml_intents(engine, state)
        ),
    )


@router.post("/v1/off-topic-share", response_model=OffTopicShareOut, dependencies=[Depends(require())])
async def set_off_topic_share(body: OffTopicShareIn, request: Request) -> OffTopicShareOut:
    """Write `off_topic_share` into the intents folder (the file that has it, else the one with
    `small_talk`, else the first) and reload: the folder refits its operating point at that share, and the
    new version goes live on every replica like any edit. Admin key. 409 when a calibration.yaml decides
    the operating point (the key does not change it; `bot calibrate --oos-rate` does)."""
    runtime = ready_runtime(request)
    calibration = runtime.engine.state.calibration
    if calibration is not None and calibration.source != "self":
        raise ConflictError(
            "the operating point comes from the folder's calibration.yaml, which off_topic_share does not "
            f"change; refit it with `bot calibrate --data FILE --oos-rate {body.share:.2f}`"
        )
    path = await run_in_threadpool(set_folder_share, runtime.engine.intents_dir, body.share)
    loaded = await run_in_threadpool(runtime.versions.reload, versions.who(request))
    result = loaded.result
    assert result is not None
    return OffTopicShareOut(
        share=body.share, file=path.name, version=result.version, seconds=round(result.seconds, 3)
    )


def nearest_intents(engine: Engine) -> discovery.Nearest:
    """The live intent each vector scores best on, with its calibrated confidence (the router's own scale)."""
    state = engine.state

    def nearest(vectors: np.ndarray) -> list[tuple[str, float]]:
        scores = intent_scores(state, vectors)
        best = np.argmax(scores, axis=1)
        confidence = state.scoring.confidence(scores[np.arange(len(best)), best])
        return [(state.intents.intents[int(b)].name, float(c)) for b, c in zip(best, confidence, strict=True)]

    return nearest


@router.get("/v1/discovery", response_model=DiscoveryOut, dependencies=[Analyst])
async def get_discovery(
    database: DatabaseDep,
    engine: EngineDep,
    days: Days = 30,
    min_size: Annotated[int, Query(ge=2, le=1000, description="Smallest cluster listed.")] = 3,
    distance_threshold: Annotated[
        float, Query(gt=0, lt=2, description="Average cosine distance within a cluster.")
    ] = discovery.DEFAULT_DISTANCE,
) -> DiscoveryOut:
    """Clusters of recent unrouted messages: size, representative messages, nearest intent, a YAML draft."""
    texts = await run_in_threadpool(
        stats.unrouted_messages, database, days=days, limit=discovery.MAX_MESSAGES
    )
    learned = {t for examples in engine.extra_examples.values() for t in examples}
    texts = [t for t in texts if t not in learned]  # taught since: no longer a gap
    clusters = await run_in_threadpool(
        discovery.cluster_messages,
        texts,
        engine.encoder,
        nearest=nearest_intents(engine),
        distance_threshold=distance_threshold,
        min_size=min_size,
    )
    return DiscoveryOut(
        days=days,
        messages=len(texts),
        distance_threshold=distance_threshold,
        clusters=[ClusterOut.model_validate(c, from_attributes=True) for c in clusters],
    )
