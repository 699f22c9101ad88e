"""The webhook dispatcher: sends the outbox's deliveries, signed, from its own thread.

Events are written by the turn or action that causes them (bot.store.outbox); this thread claims the
due ones (bot.store.deliveries: one replica each) and POSTs them with httpx and a short timeout, never
holding up a chat answer. Each endpoint is sent to on its own worker, and an endpoint that fails is backed
off as a whole (its other claimed rows given back unsent, its backlog held until the failed row's retry),
so a dead endpoint never starves a healthy one (docs/evaluation.md, "Webhooks and metrics under load"). A
failure is retried with exponential backoff; after BOT_WEBHOOK_MAX_ATTEMPTS the delivery is kept as
failed, listed by the admin API and the /review/webhooks page and re-sent on request. Each request is signed like Stripe's (docs/webhooks.md):

    Bot-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" with the subscription's secret>
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

import httpx
from sqlalchemy import Engine as Database

from bot import __version__
from bot.config import Settings
from bot.store import deliveries, webhooks
from bot.store.deliveries import Due

log = logging.getLogger(__name__)

POLL_SECONDS = 0.5  # how often an idle dispatcher looks for due deliveries
COUNT_SECONDS = 5.0  # how often the backlog and failures are counted for the metrics
# ... and at most this often while deliveries flow (counting the outbox after every round cost CPU)
BUSY_COUNT_SECONDS = 1.0
CLAIM_LIMIT = 5  # deliveries claimed at once per endpoint: the lease must cover sending them one by one
# endpoints sent to in one round, all at once (a round claims no more, so no claimed row waits for a worker
# while its lease runs); with more, the next round starts after the last one served
PARALLEL_ENDPOINTS = 4
MAX_BACKOFF_SECONDS = 3600.0
KEEP_DELIVERED_DAYS = 7.0  # delivered rows are deleted after this (hourly); failed ones are kept
PRUNE_SECONDS = 3600.0


class DeliveryMetrics(Protocol):
    """What the dispatcher reports (bot.runtime.metrics.Metrics)."""

    def observe_delivery(self, result: str) -> None: ...

    def observe_outbox(self, pending: int, failed: int) -> None: ...


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The `Bot-Signature` header's value for `body` sent at `timestamp`."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def request_for(due: Due, *, now: float | None = None) -> tuple[bytes, dict[str, str]]:
    """The body and headers of one delivery (the body is the stored payload, compact JSON)."""
    body = json.dumps(due.payload, separators=(",", ":"), ensure_ascii=False).encode()
    timestamp = int(now if now is not None else time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": f"intent-router-webhooks/{__version__}",
        "Bot-Event-Id": due.event_id,
        "Bot-Event-Type": due.event_type,
        "Bot-Signature": sign(due.secret, timestamp, body),
    }
    return body, headers


class WebhookDispatcher:
    """Sends due deliveries on one daemon thread until `stop`; `step` is one round (tests call it)."""

    def __init__(
        self, database: Database, settings: Settings, metrics: DeliveryMetrics | None = None
    ) -> None:
        self.database = database
        self.settings = settings
        self.metrics = metrics
        self.timeout = settings.webhook_timeout_seconds
        # a claim outlives the sends it covers; a dispatcher killed mid-round leaves its rows to others then
        self.lease_seconds = CLAIM_LIMIT * (self.timeout + 1.0) + 5.0
        self._client = httpx.Client(timeout=self.timeout, follow_redirects=False)  # safe across threads
        self._pool = ThreadPoolExecutor(PARALLEL_ENDPOINTS, thread_name_prefix="webhook-send")
        self._dirty = False  # deliveries moved since the metrics last counted the outbox
        self._last_endpoint = 0  # the last subscription a round served: the next starts after it
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="webhook-dispatcher", daemon=True)
        self._counted = 0.0
        self._synced = False
        self._pruned = -PRUNE_SECONDS  # the first round prunes

    def start(self) -> WebhookDispatcher:
        """Send from now on (the thread's first round makes the BOT_WEBHOOKS subscriptions current)."""
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        self._pool.shutdown(wait=True)
        self._client.close()

    def _loop(self) -> None:
        failing = False
        while not self._stopping.is_set():
            try:
                sent = self.step()
                if failing:
                    log.warning("webhook dispatcher works again")
                failing = False
            except Exception as exc:  # the database is down: keep trying, say so once
                if not failing:
                    log.warning("webhook dispatcher failed (%s); retrying", exc.__class__.__name__)
                failing, sent = True, 0
            if not sent:
                self._stopping.wait(POLL_SECONDS)

    def step(self) -> int:
        """Claim the due deliveries and send each once; returns how many were tried."""
        if not self._synced:  # here, not at start: a database down at start must not stop the load
            webhooks.sync_settings(self.database, webhooks.parse_setting(self.settings.webhooks))
            self._synced = True
        if time.monotonic() - self._pruned > PRUNE_SECONDS:
            self._pruned = time.monotonic()
            deliveries.prune(self.database, older_than_days=KEEP_DELIVERED_DAYS)
        claimed = deliveries.claim(
            self.database,
            limit=CLAIM_LIMIT,
            lease_seconds=self.lease_seconds,
            endpoints=PARALLEL_ENDPOINTS,
            after=self._last_endpoint,
        )
        if claimed:
            self._last_endpoint = claimed[-1].subscription_id  # claims come in the rotated order
        by_endpoint: dict[int, list[Due]] = {}
        for due in claimed:
            by_endpoint.setdefault(due.subscription_id, []).append(due)
        groups = list(by_endpoint.values())
        if len(groups) == 1:
            self._send_all(groups[0])
        else:
            list(self._pool.map(self._send_all, groups))  # re-raises a worker's database error here
        self._count(busy=bool(claimed))
        return len(claimed)

    def _count(self, *, busy: bool) -> None:
        """The outbox's backlog and failures for the metrics: every COUNT_SECONDS, after deliveries moved
        at most every BUSY_COUNT_SECONDS, and at once when a busy spell ends (so the gauges settle)."""
        if self.metrics is None:
            return
        since = time.monotonic() - self._counted
        self._dirty = self._dirty or busy
        if since > COUNT_SECONDS or (self._dirty and (not busy or since > BUSY_COUNT_SECONDS)):
            self._counted, self._dirty = time.monotonic(), False
            found = deliveries.counts(self.database)
            self.metrics.observe_outbox(found["pending"], found["failed"])

    def _send_all(self, claimed: list[Due]) -> None:
        """One endpoint's claimed rows, in order; once one fails, the rest go back unsent and the
        endpoint's backlog waits for that row's retry. The delivered ones are recorded in one write at the
        end (a dispatcher killed before it sends them again: at least once)."""
        sent: list[int] = []
        try:
            for position, due in enumerate(claimed):
                if self._stopping.is_set():
                    return  # unsent rows keep their lease and are sent after it runs out
                failed = self._send(due)
                if failed is None:
                    sent.append(due.id)
                    continue
                rest = [later.id for later in claimed[position + 1 :]]
                deliveries.release(self.database, rest, at=failed.retry_at)
                deliveries.defer(self.database, due.subscription_id, until=failed.retry_at)
                return
        finally:
            deliveries.delivered(self.database, sent)
            for _ in sent:
                self._report("delivered")

    def _send(self, due: Due) -> deliveries.Failed | None:
        """POST one delivery; a failure is recorded here and returned (a success is the caller's to record)."""
        body, headers = request_for(due)
        error = None
        try:
            response = self._client.post(due.url, content=body, headers=headers)
            if not 200 <= response.status_code < 300:
                error = f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:  # never the URL's query or the secret: the class and first line
            error = f"{exc.__class__.__name__}: {(str(exc).splitlines() or [''])[0]}"[:200]
        if error is None:
            return None
        failed = deliveries.attempt_failed(
            self.database,
            due,
            error,
            max_attempts=self.settings.webhook_max_attempts,
            backoff_seconds=self.settings.webhook_retry_seconds,
            max_backoff=MAX_BACKOFF_SECONDS,
        )
        gave_up = failed.gave_up
        self._report("failed" if gave_up else "retry")
        level = logging.WARNING if gave_up else logging.INFO
        what = "gave up on" if gave_up else "will retry"
        log.log(
            level,
            "webhook %s %s %s (attempt %d): %s",
            what,
            due.event_type,
            due.event_id,
            due.attempts + 1,
            error,
        )
        return failed

    def _report(self, result: str) -> None:
        if self.metrics is not None:
            self.metrics.observe_delivery(result)


def verify(secret: str, header: str, body: bytes, *, tolerance: float = 300, now: Any = None) -> bool:
    """Whether `header` (Bot-Signature) signs `body` with `secret`, made within `tolerance` seconds: the
    receiver's check, as docs/webhooks.md shows it."""
    parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((now if now is not None else time.time()) - timestamp) > tolerance:
        return False
    expected = sign(secret, timestamp, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))
