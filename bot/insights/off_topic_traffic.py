"""The off-topic share of real traffic: the live folder's reference confidences, the logged decisions'
confidences (database or a `bot logs export` file), and the report the stats page and `bot check --data`
show (`bot.insights.off_topic_share` does the estimating)."""

from __future__ import annotations

import csv
import json
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa
from pydantic import BaseModel, Field
from sqlalchemy import Engine as Database
from sqlmodel import Session, col, select

from bot.config import Settings
from bot.content.intents import IntentSet
from bot.errors import ConfigError
from bot.insights import off_topic_share as share_of
from bot.insights.off_topic_scale import on_live_scale
from bot.insights.stats import bot_decisions
from bot.routing.encoders.embedding_cache import CachedEncoder
from bot.routing.pseudo_queries import Evidence
from bot.routing.self_calibration import MIN_INTENTS, MIN_QUERIES
from bot.routing.state import RoutingState, build_state
from bot.store.models import DecisionLog

SMALL_TALK_TAG = "small_talk"  # built-in greeting, thanks, goodbye, and a folder's own intents so tagged
MIN_GENERAL = 20  # shipped off-topic messages left after the folder's own topics are taken out


class OffTopicOut(BaseModel):
    """The off-topic share the traffic shows, against the one the operating point assumes."""

    messages: int = Field(description="Decisions the estimate read (the window's, up to 20,000 most recent).")
    enough: bool = Field(description="False below `min_messages`: `share`, `low`, `high` are then null.")
    min_messages: int
    method: str | None = Field(
        description="'reference': only the share fitted, against the folder's own in-scope and off-topic "
        "pseudo-queries; 'mixture': a free two-component mixture (no self-calibration to compare with)."
    )
    reference: str | None = Field(
        description="The off-topic reference: 'general' (shipped off-topic messages the folder does not "
        "cover) or 'sibling' (the folder's examples with their own intent removed); null for 'mixture'."
    )
    share: float | None = Field(
        description="Estimated share of messages no intent covers (small talk counts as in scope)."
    )
    low: float | None = Field(description="90% bootstrap interval, lower end.")
    high: float | None
    configured: float = Field(
        description="The share the operating point assumes (BOT_OOS_RATE or the folder's `off_topic_share`)."
    )
    configured_by: str = Field(
        description="'folder' (the `off_topic_share` key) or 'settings' (BOT_OOS_RATE)."
    )
    off: bool = Field(
        description=f"The configured share lies below the interval by more than {share_of.OFF_BY * 100:g} "
        f"points, or above it by more than {share_of.OFF_BY * 100:g} points and {share_of.SIBLING_ROOM:g} times "
        "its upper end (off-topic requests near the folder's topics go unseen)."
    )
    suggested: float | None = Field(description="The share to set (the estimate, within 0.01-0.9).")
    advice: str = Field(description="One sentence saying all of the above.")
    small_talk_share: float | None = Field(description="Share of the messages taken by small-talk intents.")
    other_operating_points: int = Field(
        description="Decisions not on the live confidence scale (another model, or a calibration whose "
        "logged confidences are not the live map's: an older folder version), read all the same because too "
        "few were on it. Learned examples refit the operating point but keep its confidence map, so the "
        "decisions before them are on the scale."
    )
    reviewed: int = Field(description="Reviewed decisions of the window.")
    reviewed_off_topic: int = Field(description="... whose review names no existing intent.")
    reviewed_share: float | None
    reviewed_low: float | None = Field(
        description="90% Wilson interval; reviews are the messages analysts "
        "picked, so a check on the estimate rather than a sample."
    )
    reviewed_high: float | None
    refit: str = Field(
        description="How to refit: 'folder' (self-calibration: write `off_topic_share`, by the command or "
        "POST /v1/off-topic-share) or 'calibrate' (the folder's calibration.yaml decides, which the key does "
        "not change: `bot calibrate --oos-rate`)."
    )
    command: str = Field(description="The command that refits at the suggested share.")


@dataclass(frozen=True)
class Traffic:
    """Logged decisions read for the estimate: confidences oldest first, their calibration ids, intents,
    each one's top candidate (answered or not; None: unknown), which the estimate's interval reads, and
    its model and top candidate's raw score, which tell whether it is on the live confidence scale
    (`on_live_scale`; empty lists: unknown)."""

    confidences: np.ndarray
    calibration_ids: list[str]
    intents: list[str | None]
    reviewed: int = 0
    reviewed_off_topic: int = 0
    tops: list[str | None] = field(default_factory=list)
    models: list[str | None] = field(default_factory=list)
    top_scores: list[float | None] = field(default_factory=list)


_cache_lock = threading.Lock()
_cached: tuple[RoutingState, bool, share_of.Reference | None] | None = None


def _evidence_and_state(
    state: RoutingState,
    settings: Settings,
    encoder: CachedEncoder | None,
    yaml_intents: Callable[[], IntentSet | None] | None,
) -> tuple[Evidence, RoutingState]:
    """The evidence and the state to score pseudo-queries on, as `Engine._prepare` picks them: a
    self-trained model's cross-fit covers the folder's YAML texts, never learned examples, so with one the
    reference is scored on a state built on the YAML intents alone (the live state's learned examples
    would otherwise make it fall back to leave-one-out scores of texts the model was trained on: too
    confident, so the share comes out too high)."""
    base = yaml_intents() if yaml_intents is not None else None
    if base is not None and encoder is not None and base.version != state.intents.version:
        evidence = Evidence.of(settings.model, base, encoder)
        if evidence.cross_fit is not None:
            return evidence, build_state(encoder, settings, base, state.passages, None, state.tone_phrases)
    return Evidence.of(settings.model, state.intents, encoder), state


def reference_for(
    state: RoutingState,
    settings: Settings,
    encoder: CachedEncoder | None = None,
    yaml_intents: Callable[[], IntentSet | None] | None = None,
) -> share_of.Reference | None:
    """The folder's in-scope and off-topic pseudo-query confidences, put on the live state's confidence
    scale (its own map, whatever calibrated it); None when the folder has too few examples. Computed once
    per live state (well under a second for 150 intents).

    Off-topic: with `encoder` (the live model's), the shipped general off-topic messages the folder does
    not cover (bot.content.off_topic_set), which behave like real off-topic traffic; without it, or when
    none is left, the examples scored with their own intent removed (sibling requests), which sit higher
    than real off-topic messages and make the estimate too high (docs/evaluation.md, "Estimating the
    off-topic share"). `yaml_intents` gives the folder's intents without learned examples (None: unknown),
    read only when the reference is not cached yet (see `_evidence_and_state`)."""
    global _cached
    with _cache_lock:
        if _cached is not None and _cached[0] is state and _cached[1] == (encoder is None):
            return _cached[2]
    evidence, fit_on = _evidence_and_state(state, settings, encoder, yaml_intents)
    queries = evidence.query_rows(fit_on)
    if len(queries) < MIN_QUERIES or len(fit_on.intents.intents) < MIN_INTENTS:
        found = None
    else:
        pseudo = evidence.pseudo_queries(fit_on, settings)
        live, own = state.scoring, pseudo.scoring

        def rescale(conf: np.ndarray) -> np.ndarray:  # own map -> raw score -> live map
            clipped = np.clip(conf, 1e-9, 1 - 1e-9)
            raw = own.center + np.log(clipped / (1 - clipped)) / own.slope
            return np.asarray(live.confidence(raw), dtype=np.float64)

        general = pseudo.conf_general
        out, kind = (general, "general") if len(general) >= MIN_GENERAL else (pseudo.conf_out, "sibling")
        found = share_of.Reference(rescale(pseudo.conf_in), rescale(out), kind)
    with _cache_lock:
        _cached = (state, encoder is None, found)
    return found


def database_traffic(database: Database, since: datetime, until: datetime) -> Traffic:
    """The window's bot decisions (not a clarify pick, which the customer made), most recent
    `MAX_MESSAGES`, oldest first; and its reviews' verdicts on off-topic."""
    from bot.store.models import Review
    from bot.store.reviews import latest_review_ids

    window = (col(DecisionLog.created_at) >= since, col(DecisionLog.created_at) < until, bot_decisions())
    # Only the first candidate's intent and raw score, by a JSON path (SQLite's JSON_EXTRACT, PostgreSQL's
    # #>>): the database reads them without the driver handing over and Python parsing every decision's
    # whole candidate list (docs/evaluation.md, "Estimating the off-topic share", gives the cost).
    first = col(DecisionLog.candidates)
    with Session(database) as session:
        rows = session.execute(
            sa.select(
                col(DecisionLog.confidence),
                col(DecisionLog.calibration_id),
                col(DecisionLog.intent),
                col(DecisionLog.model_id),
                first[(0, "intent")].as_string(),
                first[(0, "score")].as_float(),
            )
            .where(*window, col(DecisionLog.chosen).is_(False))
            .order_by(col(DecisionLog.id).desc())
            .limit(share_of.MAX_MESSAGES)
        ).all()
        latest = latest_review_ids()
        meant = session.exec(
            select(Review.intent)
            .join(latest, col(latest.c.id) == col(Review.id))
            .join(DecisionLog, col(DecisionLog.id) == col(Review.decision_id))
            .where(*window)
        ).all()
    ordered = list(reversed(rows))
    return Traffic(
        np.array([r[0] for r in ordered], dtype=np.float64),
        [r[1] for r in ordered],
        [r[2] for r in ordered],
        reviewed=len(meant),
        reviewed_off_topic=sum(1 for m in meant if m is None),
        tops=[r[4] or None for r in ordered],
        models=[r[3] for r in ordered],
        top_scores=[r[5] for r in ordered],
    )


def _first_candidate(candidates: Any) -> Mapping[str, Any] | None:
    """A logged decision's first candidate (from a list of dicts, or its JSON text in a CSV export)."""
    if isinstance(candidates, str):
        try:
            candidates = json.loads(candidates) if candidates.strip() else []
        except json.JSONDecodeError:
            return None
    if isinstance(candidates, list) and candidates and isinstance(candidates[0], Mapping):
        return candidates[0]
    return None


def top_candidate(candidates: Any) -> str | None:
    """The first candidate's intent of a logged decision (a list of dicts, or its JSON text in a CSV
    export); None when there is none or it cannot be read (the estimate then counts it on its own)."""
    return _intent_of(_first_candidate(candidates))


def top_score(candidates: Any) -> float | None:
    """The first candidate's raw score of a logged decision; None when there is none or it is no number."""
    return _score_of(_first_candidate(candidates))


def _intent_of(first: Mapping[str, Any] | None) -> str | None:
    intent = first.get("intent") if first is not None else None
    return str(intent) if intent else None


def _score_of(first: Mapping[str, Any] | None) -> float | None:
    score = first.get("score") if first is not None else None
    try:
        return float(score) if score is not None and not isinstance(score, bool) else None
    except (TypeError, ValueError):
        return None


def _flag(value: Any) -> bool:
    return value is True or str(value).strip().lower() in ("true", "1")


def file_traffic(path: Path) -> Traffic:
    """Decisions of a `bot logs export` file (CSV or JSON lines, told apart by the first character)."""
    try:
        with path.open(encoding="utf-8") as handle:
            first = handle.read(1)
            handle.seek(0)
            items: Iterable[Mapping[str, Any]] = (
                _json_lines(handle, path) if first == "{" else list(csv.DictReader(handle))
            )
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, csv.Error) as exc:
        raise ConfigError(f"cannot read the logs {path}: {exc} (write them with `bot logs export`)") from None
    return traffic_of(list(items), str(path))


def _json_lines(lines: Iterable[str], path: Path) -> list[Mapping[str, Any]]:
    """Each non-blank line's JSON object; a line holding anything else (a list, a number) is named."""
    items: list[Mapping[str, Any]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        item = json.loads(line)
        if not isinstance(item, dict):
            raise ConfigError(
                f"{path}: line {number} is a JSON {type(item).__name__}, not an object; `bot logs export "
                "--format jsonl` writes one decision object per line"
            )
        items.append(item)
    return items


def traffic_of(items: list[Mapping[str, Any]], where: str) -> Traffic:
    """`Traffic` from exported rows: the bot's own decisions, as the stats page counts them."""
    kept: list[Mapping[str, Any]] = []
    for number, item in enumerate(items, start=1):
        if "confidence" not in item:
            raise ConfigError(
                f"{where}: row {number} has no 'confidence' column; this is not a `bot logs export` file"
            )
        escalation = item.get("escalation") or None
        if escalation == "with_agent" or _flag(item.get("chosen")):
            continue
        if escalation == "awaiting_agent" and item.get("route") == "handoff":
            continue
        kept.append(item)
    kept = kept[-share_of.MAX_MESSAGES :]
    try:
        confidences = np.array([float(item["confidence"]) for item in kept], dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: a 'confidence' is not a number ({exc})") from None
    reviewed = [item for item in items if item.get("review_verdict")]
    firsts = [_first_candidate(item.get("candidates")) for item in kept]  # each row's JSON read once
    return Traffic(
        confidences,
        [str(item.get("calibration_id") or "") for item in kept],
        [item.get("intent") or None for item in kept],
        reviewed=len(reviewed),
        reviewed_off_topic=sum(1 for item in reviewed if not item.get("review_intent")),
        tops=[_intent_of(first) for first in firsts],
        # a file without the column (hand-made, say) says nothing of the model: not that it is another one
        models=[str(item.get("model_id") or "") or None for item in kept]
        if any("model_id" in i for i in kept)
        else [],
        top_scores=[_score_of(first) for first in firsts],
    )


def configured_share(state: RoutingState, settings: Settings) -> float:
    """The share the live operating point assumes: its calibration's, else (self-calibration found too
    little to fit, so defaults decide) the folder's `off_topic_share` key, else BOT_OOS_RATE, the same
    order `configured_by` reports."""
    calibration = state.calibration
    if calibration is not None and calibration.oos_rate is not None:
        return calibration.oos_rate
    folder = state.intents.off_topic_share
    return folder if folder is not None else settings.oos_rate


def report(
    traffic: Traffic,
    state: RoutingState,
    settings: Settings,
    encoder: CachedEncoder | None = None,
    yaml_intents: Callable[[], IntentSet | None] | None = None,
) -> OffTopicOut:
    """The estimate against the share the live operating point assumes, with what to do about it
    (`encoder`: the live model's, for the general off-topic reference; `yaml_intents`: the folder without
    learned examples; see `reference_for`)."""
    same = on_live_scale(
        traffic.confidences, traffic.calibration_ids, traffic.models, traffic.top_scores, state
    )
    use_all = int(same.sum()) < share_of.MIN_MESSAGES
    chosen = traffic.confidences if use_all else traffic.confidences[same]
    tops = None
    if len(traffic.tops) == len(same):  # each decision's top candidate known: the interval reads them
        tops = traffic.tops if use_all else [t for t, s in zip(traffic.tops, same, strict=True) if s]
    reference = reference_for(state, settings, encoder, yaml_intents)
    estimate = share_of.estimate_share(chosen, reference, groups=tops)
    calibration = state.calibration
    configured = configured_share(state, settings)
    from_file = calibration is not None and calibration.source != "self"  # calibration.yaml decides
    small_talk = {i.name for i in state.intents.intents if SMALL_TALK_TAG in i.spec.tags}
    total = len(traffic.intents)
    reviewed = share_of.reviewed_share(traffic.reviewed_off_topic, traffic.reviewed)
    suggestion = share_of.suggested(estimate)
    return OffTopicOut(
        messages=estimate.messages,
        enough=estimate.enough,
        min_messages=share_of.MIN_MESSAGES,
        method=estimate.method,
        reference=reference.kind if reference is not None and estimate.method == "reference" else None,
        share=estimate.share,
        low=estimate.low,
        high=estimate.high,
        configured=configured,
        configured_by="folder" if state.intents.off_topic_share is not None else "settings",
        off=share_of.is_off(estimate, configured),
        suggested=suggestion,
        advice=share_of.advice(estimate, configured),
        small_talk_share=round(sum(1 for i in traffic.intents if i in small_talk) / total, 4)
        if total
        else None,
        other_operating_points=int((~same).sum()) if use_all else 0,
        reviewed=reviewed.reviewed,
        reviewed_off_topic=reviewed.off_topic,
        reviewed_share=reviewed.share,
        reviewed_low=reviewed.low,
        reviewed_high=reviewed.high,
        refit="calibrate" if from_file else "folder",
        command=(
            f"bot calibrate --data FILE --oos-rate {suggestion if suggestion is not None else configured:.2f}"
            if from_file
            else "bot logs export --format csv --out logs.csv && bot check --data logs.csv --set-share"
        ),
    )
