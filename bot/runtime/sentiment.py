"""The sentiment surge alert (#32 item 3): a poller task that judges every topic's last hours.

Why the poller (`bot.runtime.sync`) and not the metrics sampler: the alert is a webhook event, which must
be written whether or not BOT_METRICS is on and under one worker as under several, and the poller is the
one thread that already reads the database on a timer, failing and recovering like every other task.
The metrics sampler runs only under `--workers N` and reads memory, never the database.

Every BOT_SENTIMENT_SECONDS: each topic's rolling windows (BOT_SENTIMENT_WINDOW_HOURS, the last 3 and 24
hours by default) against its own BOT_SENTIMENT_BASELINE_DAYS before the longest window
(`bot.insights.surge`); the baseline, counted per hour, is read once an hour. A topic alerts once per
surge: its `sentiment.surge` event is stored with the surge whichever replica sees it first
(`bot.store.sentiment`), and from then on the topic is judged only on hours BOT_SENTIMENT_REARM_HOURS
after it was found, so a surge alerts again only if it is still there a re-arm time later. Its hours are
left out of the topic's baseline (`bot.insights.surge.surge_spans`): from the longest window before it was
found to its re-arm time, or only to when it was found if it is found again once re-armed (a lasting
shift, whose later hours are the topic's new level).
The stored surges are read at every look, so replicas and a restarted process agree. The metrics show
every topic's negative share over the longest window and count the surges this process recorded.
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
from bot.insights.surge import Counts, SurgeRules, Verdict, judge_all, outside_surges, rearmed_windows
from bot.store.sentiment import SurgeRecord, found_since, record_surge


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
        # the surges that re-arm a topic or cover hours of its baseline, and those close enough before them
        # to make them one lasting shift (`surge_spans`), or the oldest would read as a surge alone
        back = self.rules.rearm_hours + self.rules.chained_hours
        found = found_since(self.database, self._start(now) - timedelta(hours=back))
        verdicts = judge_all(self._rearmed(windows, found, now), self._outside(now, found), self.rules)
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

    def _start(self, now: datetime) -> datetime:
        """The first hour of the baseline of a look at `now`."""
        end = hour_start(now) - timedelta(hours=max(self.rules.windows))
        return end - timedelta(days=self.rules.baseline_days)

    def baseline(self, now: datetime) -> dict[str, list[Counts]]:
        """Each topic's counts per hour of the baseline days before the longest window (topics without
        any left out), read once per hour; surges' hours included (`_outside` leaves them out)."""
        start = self._start(now)
        if self._baseline is None or self._baseline[0] != start:
            end = start + timedelta(days=self.rules.baseline_days)
            self._baseline = (start, topic_hour_counts(self.database, start, end, self.threshold))
        return self._baseline[1]

    def _outside(self, now: datetime, found: Mapping[str, list[datetime]]) -> dict[str, list[Counts]]:
        """The baseline of a look at `now` without each topic's surges' hours."""
        start = self._start(now)
        return {
            intent: outside_surges(
                hours, [(at - start) / timedelta(hours=1) for at in found[intent]], self.rules
            )
            if intent in found
            else hours
            for intent, hours in self.baseline(now).items()
        }

    def _rearmed(
        self, windows: Mapping[int, dict[str, Counts]], found: Mapping[str, list[datetime]], now: datetime
    ) -> dict[int, dict[str, Counts]]:
        """The windows' counts without a topic's windows that reach back before its re-arm time."""
        kept = {size: dict(counts) for size, counts in windows.items()}
        for intent, times in found.items():
            armed = rearmed_windows((now - times[-1]) / timedelta(hours=1), self.rules)
            for size in set(self.rules.windows) - set(armed):
                kept[size].pop(intent, None)
        return kept

    def _record(self, verdict: Verdict, now: datetime) -> bool:
        """Store the surge with its event unless a replica stored one for the topic less than the re-arm
        time ago (or today); True if this call stored it."""
        quiet_since = now - timedelta(hours=self.rules.rearm_hours)
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
        # a failure raises and the next run retries; once stored, the next look reads it (`found_since`)
        return record_surge(self.database, surge, window_start=start, window_end=now, quiet_since=quiet_since)
