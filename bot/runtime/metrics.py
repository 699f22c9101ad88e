"""Prometheus metrics of a serving process (prometheus-client): what is counted, and the process's state.

Counted as it happens, on the event loop (`Metrics.observe_http`, `Metrics.observe_turn`): HTTP requests
and their latency by handler (the route's path template, never the URL a client sent), chat turns and
their latency by decision route, decisions by intent (the folder's intent names, `none` and `other`: a
bounded label set, never customer text), the confidence of each decision, and handoffs by reason.
The sentiment watch (`bot.runtime.sentiment`, a poller task) sets each intent's negative share today and
counts surges.

Read when Prometheus scrapes, from memory (`sample_state`): readiness, queue depths (routing, writing,
spool), the live model and intents version (an info metric) and the background training. Nothing here
queries the database; the spool's depth is counted again only when its file changed (`SpoolDepth`).

`bot serve --workers N` runs prometheus-client's multiprocess mode (`bot.runtime.metrics_workers`): every
worker writes its counters to files in `PROMETHEUS_MULTIPROC_DIR`, so a scrape answered by any worker
sums them all, and each worker's state gauges carry its `pid`. docs/monitoring.md lists every metric.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
    values,
)
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from bot.chat.spool import Spool
from bot.content.intents import IntentSet
from bot.routing.policy import Decision
from bot.runtime.status import readiness
from bot.runtime.training import TrainingState

if TYPE_CHECKING:
    from bot.runtime.metrics_workers import WorkerGauges
    from bot.runtime.runtime import Runtime

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# seconds; chat answers in a few ms on an idle server and waits seconds only when queues are full
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
CONFIDENCE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
NO_INTENT = "none"  # a decision without an intent: clarify, retrieve, a handoff nothing matched
OTHER = "other"  # an intent the live folder does not name (a turn routed just before a reload), a method
# the escalations that hand a conversation to a person (bot.chat.rules); 'with_agent' and 'awaiting_agent'
# are turns of a conversation a person already has or waits for, not new handoffs
HANDOFF_REASONS = frozenset({"angry", "repeated_fallback"})
TRAINING_STATES: tuple[str, ...] = get_args(TrainingState)

# no `_created` series beside every counter and histogram: they double what each scrape reads and
# Prometheus needs none of them (rates come from the counters)
disable_created_metrics()  # type: ignore[no-untyped-call]  # untyped upstream


class SpoolDepth:
    """The spool's waiting turns, counted again only when its file's size or time changed (a scrape of a
    server whose database is fine costs one `stat`)."""

    def __init__(self) -> None:
        self._seen: tuple[int, int] | None = None
        self._count = 0

    def count(self, spool: Spool | None) -> int:
        if spool is None:
            return 0
        try:
            stat = spool.path.stat()
        except OSError:
            return 0
        key = (stat.st_size, stat.st_mtime_ns)
        if key != self._seen:
            self._count = spool.pending() if stat.st_size else 0
            self._seen = key
        return self._count


@dataclass(frozen=True)
class StateSample:
    """The process's state at one moment, as the state metrics show it."""

    ready: bool
    queues: dict[str, int]
    live: dict[str, str] | None  # the info metric's labels, once a folder is live
    training: str
    training_progress: float


def sample_state(runtime: Runtime, spool: SpoolDepth) -> StateSample:
    """Readiness, queue depths, the live model and the training, read from memory (`readiness` does no I/O)."""
    found = readiness(runtime)
    queues = {name: stats.pending for name, stats in runtime.pipeline.stats().items()}
    queues["spool"] = spool.count(runtime.service.spool)
    live = None
    if found.ready:
        live = {
            "model": found.model or "",
            "model_kind": found.model_kind or "",
            "intents_version": found.intents_version or "",
            "version_id": "" if found.version_id is None else str(found.version_id),
        }
    return StateSample(found.ready, queues, live, found.training.state, found.training.progress)


READY_HELP = "1 once the intents folder is loaded and routing (GET /readyz), else 0."
QUEUE_HELP = "Chat turns waiting: to be routed, to be written, or spooled while the database is down."
LIVE_HELP = "The model and intents version routing now."
TRAINING_HELP = (
    "The background self-training's state (1 for the current one): idle, running, ready, failed, cancelled."
)
PROGRESS_HELP = "The background self-training's progress, 0 to 1."


class _StateCollector(Collector):
    """One process's state metrics, read at each scrape (the single-process registry)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.spool = SpoolDepth()

    def collect(self) -> Iterable[Metric]:
        state = sample_state(self.runtime, self.spool)
        yield GaugeMetricFamily("bot_ready", READY_HELP, value=float(state.ready))
        depth = GaugeMetricFamily("bot_queue_depth", QUEUE_HELP, labels=["queue"])
        for name, pending in state.queues.items():
            depth.add_metric([name], pending)
        yield depth
        if state.live is not None:
            yield InfoMetricFamily("bot_live", LIVE_HELP, value=state.live)
        training = GaugeMetricFamily("bot_training_state", TRAINING_HELP, labels=["state"])
        for name in TRAINING_STATES:
            training.add_metric([name], float(name == state.training))
        yield training
        yield GaugeMetricFamily("bot_training_progress", PROGRESS_HELP, value=state.training_progress)


class Metrics:
    """The counters and histograms of one process, its registry, and how its state is read."""

    def __init__(self) -> None:
        """Every metric the process counts, defined once.

        Long because it is one table of definitions (name, help, labels, buckets), read best in one piece.
        """
        # multiprocess mode is chosen by prometheus-client when it is imported (PROMETHEUS_MULTIPROC_DIR
        # set then): values live in that folder's files, one per process, and a scrape reads them all
        self.directory = os.environ.get(MULTIPROC_ENV) if values.ValueClass is not values.MutexValue else None
        self.registry = CollectorRegistry()
        owner = None if self.directory else self.registry
        self.http_requests = Counter(
            "bot_http_requests",
            "HTTP requests answered, by method, handler (path template) and status.",
            ["method", "handler", "status"],
            registry=owner,
        )
        self.http_seconds = Histogram(
            "bot_http_request_duration_seconds",
            "Time from a request's arrival to its answer, by method and handler.",
            ["method", "handler"],
            buckets=LATENCY_BUCKETS,
            registry=owner,
        )
        self.turns = Counter(
            "bot_chat_turns", "Chat turns answered, by decision route.", ["route"], registry=owner
        )
        self.turn_seconds = Histogram(
            "bot_chat_turn_duration_seconds",
            "Time to answer a chat turn (routed and stored), by decision route.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=owner,
        )
        self.intents = Counter(
            "bot_chat_intents",
            "Chat decisions by intent: the live folder's names, 'none' without an intent, else 'other'.",
            ["intent"],
            registry=owner,
        )
        self.confidence = Histogram(
            "bot_chat_confidence",
            "The top intent's confidence of each chat decision, by route.",
            ["route"],
            buckets=CONFIDENCE_BUCKETS,
            registry=owner,
        )
        self.handoffs = Counter(
            "bot_handoffs",
            "Conversations handed to a person: by the router, or escalated (angry, repeated_fallback).",
            ["reason"],
            registry=owner,
        )
        # the webhook dispatcher's (bot.runtime.webhooks): attempts it made, and the outbox it last counted
        self.webhook_deliveries = Counter(
            "bot_webhook_deliveries",
            "Webhook delivery attempts by result: delivered, retry (failed, tried again later), failed (gave up).",
            ["result"],
            registry=owner,
        )
        self.webhook_outbox = Gauge(
            "bot_webhook_outbox",
            "Webhook deliveries in the outbox all replicas share: pending (not yet delivered) or failed (kept).",
            ["state"],
            registry=owner,
            multiprocess_mode="livemax",
        )
        # sentiment by topic (bot.runtime.sentiment): every replica computes the same shares from the
        # database, so workers' values agree (livemax); surges are counted by the process that stored them
        self.negative_share = Gauge(
            "bot_sentiment_negative_share",
            "Share of an intent's customer messages in the longest sentiment window (BOT_SENTIMENT_WINDOW_HOURS) "
            "that read as negative.",
            ["intent"],
            registry=owner,
            multiprocess_mode="livemax",
        )
        self.surges = Counter(
            "bot_sentiment_surges",
            "Surges of an intent's negative share over its own baseline, recorded (one per surge).",
            ["intent"],
            registry=owner,
        )
        # the process's CPU and memory; in multiprocess mode they would be one worker's, so none
        if self.directory is None:
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
        self._http: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._routes: dict[str, tuple[Any, Any, Any]] = {}
        self._by_intent: dict[str, Any] = {}
        self._folder: IntentSet | None = None
        self._names: frozenset[str] = frozenset()
        self._workers: WorkerGauges | None = None

    def observe_http(self, method: str, handler: str, status: int, seconds: float) -> None:
        """One answered request (label children cached: a few dictionary lookups per request)."""
        key = (method, handler, status)
        children = self._http.get(key)
        if children is None:
            shown = method if method in METHODS else OTHER
            children = (
                self.http_requests.labels(shown, handler, str(status)),
                self.http_seconds.labels(shown, handler),
            )
            self._http[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def observe_turn(
        self, decision: Decision, escalation: str | None, seconds: float, folder: IntentSet
    ) -> None:
        """One answered chat turn: `decision` as stored (after the conversation rules)."""
        children = self._routes.get(decision.route)
        if children is None:
            route = decision.route
            children = (
                self.turns.labels(route),
                self.turn_seconds.labels(route),
                self.confidence.labels(route),
            )
            self._routes[route] = children
        children[0].inc()
        children[1].observe(seconds)
        children[2].observe(decision.confidence)
        label = self._intent_label(decision.intent, folder)
        counter = self._by_intent.get(label)
        if counter is None:
            counter = self._by_intent[label] = self.intents.labels(label)
        counter.inc()
        if decision.route == "handoff" and (escalation is None or escalation in HANDOFF_REASONS):
            self.handoffs.labels(escalation or "router").inc()

    def observe_delivery(self, result: str) -> None:
        """One webhook delivery attempt: delivered, retry or failed."""
        self.webhook_deliveries.labels(result).inc()

    def observe_outbox(self, pending: int, failed: int) -> None:
        """The outbox as the dispatcher last counted it."""
        self.webhook_outbox.labels("pending").set(pending)
        self.webhook_outbox.labels("failed").set(failed)

    def observe_sentiment(self, shares: Mapping[str, float], names: frozenset[str]) -> None:
        """The negative share per intent of the live folder (bounded labels) over the longest window; a named
        intent with no scored message in it reads 0, so an old value does not linger."""
        for intent in names:
            self.negative_share.labels(intent).set(shares.get(intent, 0.0))

    def observe_surge(self, intent: str, names: frozenset[str]) -> None:
        """A surge this process recorded."""
        self.surges.labels(intent if intent in names else OTHER).inc()

    def _intent_label(self, intent: str | None, folder: IntentSet) -> str:
        if intent is None:
            return NO_INTENT
        if folder is not self._folder:  # a new intents version: its names, once
            self._folder, self._names = folder, frozenset(folder.names)
        return intent if intent in self._names else OTHER

    def watch(self, runtime: Runtime) -> None:
        """Read `runtime`'s state from now on: at each scrape, or (multiprocess) into this worker's gauges."""
        if self.directory is None:
            self.registry.register(_StateCollector(runtime))
            return
        from bot.runtime.metrics_workers import WorkerGauges

        self._workers = WorkerGauges(runtime, Path(self.directory)).start()

    def close(self) -> None:
        """Stop sampling; a worker's state gauges leave with it."""
        if self._workers is not None:
            self._workers.stop()
            self._workers = None

    def exposition(self) -> bytes:
        """Every metric in Prometheus's text format (every worker's, in multiprocess mode)."""
        if self.directory is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=self.directory)  # type: ignore[no-untyped-call]  # untyped upstream
        return generate_latest(registry)
