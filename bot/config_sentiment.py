"""The settings of sentiment by topic (#32 item 3), `BOT_SENTIMENT_*`: part of `bot.config.Settings`.

Apart from `bot/config.py` so that file stays one screenful of the routing's and the server's knobs (and
under the size limit); `Settings` inherits these fields, so they are read, validated and reported like any
other (`bot.cli.app.user_errors`: "setting 'sentiment_p_value': ..."). Defaults are the tuned values:
docs/evaluation.md "Sentiment by topic (#32 item 3)"; docs/configuration.md says what each one does.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# a window's baseline must hold this many blocks of its length to measure how much a topic's share moves
# from block to block (bot.insights.surge); with fewer, only the counts' uncertainty is left and a topic
# whose share wanders alarms on its ordinary high days
MIN_BLOCKS = 5


class SentimentSettings(BaseSettings):
    """What counts as negative, which windows are judged against which baseline, and how sure a surge must be."""

    model_config = SettingsConfigDict(env_prefix="BOT_", extra="ignore")  # as Settings, when read alone

    sentiment_negative_threshold: float = Field(
        0.55,
        ge=0.0,
        le=100.0,
        description="Anger score above which a message counts as negative in sentiment by topic (below "
        "BOT_ANGER_THRESHOLD: a trend may count displeased customers a person need not take over; 0 = "
        "like the calm phrases, 1 = like the angry ones, 100 = none).",
    )
    sentiment_window_hours: Annotated[tuple[int, ...], NoDecode] = Field(
        (3, 24),
        description="Rolling windows (hours up to now, comma-separated) judged against each topic's "
        "baseline; the false-alarm budget BOT_SENTIMENT_P_VALUE is split between them.",
    )
    sentiment_baseline_days: int = Field(
        14,
        ge=7,
        le=90,
        description="Days before the longest window that make a topic's baseline (at least MIN_BLOCKS "
        "times the longest window).",
    )
    sentiment_p_value: float = Field(
        4e-6,
        gt=0.0,
        le=0.01,
        description="How unlikely a window's negatives must be under the topic's baseline, per look "
        "(every BOT_SENTIMENT_SECONDS), for all windows together.",
    )
    sentiment_min_messages: int = Field(
        20, ge=1, le=100_000, description="Scored messages a topic needs in a window to be judged."
    )
    sentiment_min_negative: int = Field(
        5, ge=1, le=100_000, description="Negative messages a topic needs in a window to surge."
    )
    sentiment_min_rise: float = Field(
        0.10, ge=0.0, lt=1.0, description="Points (0-1) a window's share must rise over the topic's baseline."
    )
    sentiment_seconds: float = Field(
        300.0, ge=10.0, le=86_400.0, description="How often each serving process looks for surges."
    )
    sentiment_rearm_hours: float = Field(
        24.0,
        ge=24.0,  # the surge table keeps at most one per topic and UTC day (its unique key)
        le=24.0 * 30,
        description="After a topic's surge is found, its windows are judged again only on hours this long "
        "after it: one alert per surge, not one per look. A lone surge's hours are left out of its baseline; "
        "one found again within 72 h is a lasting shift, whose later hours become the topic's new level.",
    )

    @field_validator("sentiment_window_hours", mode="before")
    @classmethod
    def _window_hours(cls, value: Any) -> tuple[int, ...]:
        """`3,24` (environment) or [3, 24] (TOML): distinct whole hours, 1 to 72, at most four windows."""
        parts = value.split(",") if isinstance(value, str) else value
        try:
            hours = sorted({int(str(part).strip()) for part in parts})
        except (TypeError, ValueError):
            hours = []
        if not 1 <= len(hours) <= 4 or hours[0] < 1 or hours[-1] > 72:
            raise ValueError(
                f"BOT_SENTIMENT_WINDOW_HOURS must be 1 to 4 whole numbers of hours from 1 to 72, "
                f"comma-separated (e.g. 3,24), not {value!r}"
            )
        return tuple(hours)

    @field_validator("sentiment_baseline_days")
    @classmethod
    def _baseline_holds_windows(cls, days: int, info: ValidationInfo) -> int:
        """At least MIN_BLOCKS of the longest window (checked after the windows, declared before it)."""
        longest = max(info.data.get("sentiment_window_hours") or (1,))
        if days * 24 < MIN_BLOCKS * longest:
            raise ValueError(
                f"BOT_SENTIMENT_BASELINE_DAYS ({days}) must hold at least {MIN_BLOCKS} of the longest window "
                f"in BOT_SENTIMENT_WINDOW_HOURS ({longest} hours): at least {-(-MIN_BLOCKS * longest // 24)} days"
            )
        return days
