"""The sentiment surge alert (#32 item 3): a poller task that judges every topic's last hours.

Why the poller (`bot.runtime.sync`) and not the metrics sampler: the alert is a webhook event, which must
be written whether or not BOT_METRICS is on and under one worker as under several, and the poller is the
one thread that already reads the database on a timer, failing and recovering like every other task.
The metrics sampler runs only under `--workers N` and reads memory, never the database.

Every BOT_SENTIMENT_SECONDS: each topic's rolling windows (BOT_SENTIMENT_WINDOW_HOURS, the last 3 and 24
hours by default) against its own BOT_SENTIMENT_BASELINE_DAYS before the longest window
(`bot.insights.surge`); the baseline, counted per hour, is read once an hour. A topic alerts once per
surge: its `sentiment.surge` event is stored with the surge whichever replica sees it first, and not
again for BOT_SENTIMENT_REARM_HOURS (`bot.store.sentiment`), although every look while it lasts finds
it. The metrics show every topic's negative share over the longest window and count the surges this
process recorded.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Protocol

from sqlalchemy import Engine as Database

from bot.config import Settings
from bot.insights.sentiment import (
    NEGATIVE_THRESHOLD,
    hour_start,
    negative_samples,
    topic_counts,
    topic_hour_counts,
)
from bot.insights.surge import Counts, SurgeRules, Verdict, judge_all
from bot.store.sentiment import SurgeRecord, record_surge


class SentimentMetrics(Protocol):
    """What the watch reports (bot.runtime.metrics.Metrics)."""

    def observe_sentiment(self, shares: Mapping[str, float], names: frozenset[str]) -> None: ...

    def observe_surge(self, intent: str, names: frozenset[str]) -> None: ...


class SentimentWatch:
    """The `SyncTask` run: judge the topics' last hours, record and report new surges."""

    def __init__(
        self,
        database: Database,
        names: Callable[[], frozenset[str]],
        metrics: SentimentMetrics | None = None,
        *,
        rules: SurgeRules = SurgeRules(),
        threshold: float = NEGATIVE_THRESHOLD,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """`names`: the live folder's intent names, read at each run (a reload changes them); `rules` and
        `threshold`: the BOT_SENTIMENT_* settings (`SurgeRules.from_settings`)."""
        self.database = database
        self.names = names
        self.metrics = metrics
        self.rules = rules
        self.threshold = threshold
        self.clock = clock
        self._baseline: tuple[datetime, dict[str, list[Counts]]] | None = None
        self._recorded: dict[str, datetime] = {}  # topic -> when this process stored or found its surge

    @classmethod
    def from_settings(
        cls,
        database: Database,
        names: Callable[[], frozenset[str]],
        metrics: SentimentMetrics | None,
        settings: Settings,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> SentimentWatch:
        """The watch a serving process runs, with its BOT_SENTIMENT_* settings."""
        rules = SurgeRules.from_settings(settings)
        threshold = settings.sentiment_negative_threshold
        return cls(database, names, metrics, rules=rules, threshold=threshold, clock=clock)

    def __call__(self) -> str | None:
        """One run; a line naming the topics whose surge this process recorded, else None."""
        now = self.clock().astimezone(UTC)
        windows = {
            hours: topic_counts(self.database, now - timedelta(hours=hours), now, self.threshold)
            for hours in self.rules.windows
        }
        verdicts = judge_all(windows, self.baseline(now), self.rules)
        names = self.names()
        if self.metrics is not None:
            longest = windows[max(self.rules.windows)]
            self.metrics.observe_sentiment({intent: c.share for intent, c in longest.items()}, names)
        recorded = [v for v in verdicts if v.surge and self._record(v, now)]
        if self.metrics is not None:
            for verdict in recorded:
                self.metrics.observe_surge(verdict.intent, names)
        if not recorded:
            return None
        return "negative surge: " + "; ".join(
            f"{v.intent} {v.window.negative}/{v.window.messages} negative in the last {v.hours} h "
            f"({v.window.share:.0%} against {v.baseline_share:.0%})"
            for v in recorded
        )

    def baseline(self, now: datetime) -> dict[str, list[Counts]]:
        """Each topic's counts per hour of the baseline days before the longest window (topics without
        any left out), read once per hour."""
        end = hour_start(now) - timedelta(hours=max(self.rules.windows))
        if self._baseline is None or self._baseline[0] != end:
            start = end - timedelta(days=self.rules.baseline_days)
            self._baseline = (end, topic_hour_counts(self.database, start, end, self.threshold))
        return self._baseline[1]

    def _record(self, verdict: Verdict, now: datetime) -> bool:
        """Store the surge with its event unless the topic surged less than the rearm time ago; True if
        this call stored it."""
        quiet_since = now - timedelta(hours=self.rules.rearm_hours)
        last = self._recorded.get(verdict.intent)
        if last is not None and last > quiet_since:
            return False
        start = now - timedelta(hours=verdict.hours)
        surge = SurgeRecord(
            intent=verdict.intent,
            day=now.date().isoformat(),
            messages=verdict.window.messages,
            negative=verdict.window.negative,
            share=round(verdict.window.share, 4),
            baseline_messages=verdict.baseline.messages,
            baseline_negative=verdict.baseline.negative,
            baseline_share=verdict.baseline_share,
            p_value=verdict.p_value,
            samples=negative_samples(self.database, verdict.intent, start, now, self.threshold),
        )
        stored = record_surge(
            self.database, surge, window_start=start, window_end=now, quiet_since=quiet_since
        )
        # stored now, or by a replica since quiet_since: not again until the rearm time has passed (a
        # failure above raises and the next run retries)
        self._recorded[verdict.intent] = now
        return stored
