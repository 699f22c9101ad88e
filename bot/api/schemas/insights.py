"""Analysts: stats with the operating point and new-intent discovery (bot.api.insights)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from bot.insights import stats
from bot.insights.off_topic_traffic import OffTopicOut


class OperatingPointOut(BaseModel):
    """The threshold and margin the router decides with now, where they came from and what they promise."""

    source: Literal["defaults", "self", "labelled", "reviews"] = Field(
        description="'defaults': the settings' values (fitted on BANKING77); 'self': self-calibration from "
        "the intents folder alone; 'labelled': `bot calibrate --data FILE`; 'reviews': `bot calibrate "
        "--data reviewed`."
    )
    threshold: float
    margin: float
    expected_precision: float | None = Field(
        description="Share of answers expected right; null for defaults."
    )
    expected_precision_low: float | None = Field(
        description="What the calibration's data can vouch for: a one-sided 95% lower bound on "
        "`expected_precision` (a folder with few examples gets a wide one); null for defaults and for "
        "calibration files written before it existed.",
    )
    expected_coverage: float | None = Field(description="Share of in-scope messages expected to be answered.")
    expected_clarify: float | None = Field(
        description="Share of messages expected to be asked which intent is meant (self-calibration)."
    )
    oos_rate: float | None = Field(description="Out-of-scope share of traffic the expected figures assume.")
    target_precision: float | None
    data: str | None = Field(description="What the calibration was fitted on (a file name, 'reviewed', ...).")
    calibration_id: str
    intents_version: str
    model_id: str
    reviewed: int = Field(description="Decisions of the stats window reviewed by analysts (`reviewed`).")
    reviewed_accuracy: float | None = Field(
        description="Share of those judged correct, all routes (`review_accuracy`); null without reviews."
    )


class StatsWithOperatingPoint(stats.StatsOut):
    """The stats page's figures and the router's current operating point."""

    operating_point: OperatingPointOut
    off_topic: OffTopicOut = Field(
        description="The off-topic share the window's traffic shows against the one the operating point "
        "assumes (issue #31 item 3); POST /v1/off-topic-share writes it into the folder."
    )


class OffTopicShareIn(BaseModel):
    """The off-topic share to write into the folder as its `off_topic_share` key."""

    share: float = Field(
        ge=0.0, lt=1.0, description="Share of messages no intent covers, 0 up to 1 (0.15: 15%)."
    )


class OffTopicShareOut(BaseModel):
    """The share written, where, and the folder version it made live."""

    share: float
    file: str = Field(description="The intent file that holds the key now.")
    version: str = Field(description="The intents version live after the reload.")
    seconds: float


class ClusterOut(BaseModel):
    """A group of similar messages no intent took, with a drafted intent."""

    size: int = Field(description="Messages in the cluster, repeats included: the sum of `counts`.")
    messages: list[str] = Field(description="The distinct texts, most central first.")
    counts: list[int] = Field(description="How often each of `messages` was sent, in the same order.")
    nearest_intent: str | None
    nearest_score: float | None
    name: str
    description: str
    yaml: str


class DiscoveryOut(BaseModel):
    """Clusters among recent messages that neither an intent nor the knowledge base answered."""

    days: int
    messages: int
    distance_threshold: float
    clusters: list[ClusterOut]
