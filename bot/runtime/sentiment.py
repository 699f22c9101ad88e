"""The sentiment surge alert (#32 item 3): a poller task that judges every topic's day so far.

Why the poller (`bot.runtime.sync`) and not the metrics sampler: the alert is a webhook event, which must
be written whether or not BOT_METRICS is on and under one worker as under several, and the poller is the
one thread that already reads the database on a timer, failing and recovering like every other task.
The metrics sampler runs only under `--workers N` and reads memory, never the database.

Every few minutes: the UTC day so far of each topic against its own previous BASELINE_DAYS days
(`bot.insights.surge`); the baseline is read once a day. A surge is stored with its `sentiment.surge`
event once per topic and day whichever replica sees it first (`bot.store.sentiment`), and the metrics
show every topic's negative share today and count the surges this process recorded.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Protocol

from sqlalchemy import Engine as Database

from bot.insights.sentiment import BASELINE_DAYS, by_topic, day_start, negative_samples, topic_day_counts
from bot.insights.surge import Counts, SurgeRules, Verdict, judge_all
from bot.store.sentiment import SurgeRecord, record_surge

SENTIMENT_SECONDS = 300.0  # how often the day so far is judged; the alert's delay is measured in hours


class SentimentMetrics(Protocol):
    """What the watch reports (bot.runtime.metrics.Metrics)."""

    def observe_sentiment(self, shares: Mapping[str, float], names: frozenset[str]) -> None: ...

    def observe_surge(self, intent: str, names: frozenset[str]) -> None: ...


class SentimentWatch:
    """The `SyncTask` run: judge today's topics, record and report new surges."""

    def __init__(
        self,
        database: Database,
        names: Callable[[], frozenset[str]],
        metrics: SentimentMetrics | None = None,
        *,
        rules: SurgeRules = SurgeRules(),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """`names`: the live folder's intent names, read at each run (a reload changes them)."""
        self.database = database
        self.names = names
        self.metrics = metrics
        self.rules = rules
        self.clock = clock
        self._baseline: tuple[date, dict[str, list[Counts]]] | None = None
        self._recorded: set[tuple[str, date]] = set()  # surges this process stored or found stored

    def __call__(self) -> str | None:
        """One run; a line naming the topics whose surge this process recorded, else None."""
        now = self.clock()
        start = day_start(now)
        end = start + timedelta(days=1)
        window = by_topic(topic_day_counts(self.database, start, end))
        verdicts = judge_all(window, self.baseline(start), self.rules)
        names = self.names()
        if self.metrics is not None:
            self.metrics.observe_sentiment({v.intent: v.window.share for v in verdicts}, names)
        recorded = [v for v in verdicts if v.surge and self._record(v, start, now)]
        if self.metrics is not None:
            for verdict in recorded:
                self.metrics.observe_surge(verdict.intent, names)
        if not recorded:
            return None
        return "negative surge: " + "; ".join(
            f"{v.intent} {v.window.negative}/{v.window.messages} negative today "
            f"({v.window.share:.0%} against {v.baseline_share:.0%})"
            for v in recorded
        )

    def baseline(self, start: datetime) -> dict[str, list[Counts]]:
        """Each topic's counts of each of the BASELINE_DAYS days before `start` (days without any left
        out), read once per day."""
        if self._baseline is None or self._baseline[0] != start.date():
            counts = topic_day_counts(self.database, start - timedelta(days=BASELINE_DAYS), start)
            days: dict[str, list[Counts]] = {}
            for cell, count in counts.items():
                days.setdefault(cell.intent, []).append(count)
            self._baseline = (start.date(), days)
            self._recorded = {key for key in self._recorded if key[1] == start.date()}
        return self._baseline[1]

    def _record(self, verdict: Verdict, start: datetime, now: datetime) -> bool:
        """Store the surge with its event unless it is already stored; True if this call stored it."""
        key = (verdict.intent, start.date())
        if key in self._recorded:
            return False
        surge = SurgeRecord(
            intent=verdict.intent,
            day=start.date().isoformat(),
            messages=verdict.window.messages,
            negative=verdict.window.negative,
            share=round(verdict.window.share, 4),
            baseline_messages=verdict.baseline.messages,
            baseline_negative=verdict.baseline.negative,
            baseline_share=verdict.baseline_share,
            p_value=verdict.p_value,
            samples=negative_samples(self.database, verdict.intent, start, start + timedelta(days=1)),
        )
        stored = record_surge(
            self.database, surge, window_start=start.isoformat(), window_end=now.astimezone(UTC).isoformat()
        )
        self._recorded.add(key)  # stored now or before: not again (a failure above raises and retries)
        return stored
