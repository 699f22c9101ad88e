"""Webhook subscriptions: where events are sent, added by the admin API or read from BOT_WEBHOOKS.

Both kinds live in one table, so the turn writer finds every subscriber with one query in its own
transaction (bot.store.outbox). BOT_WEBHOOKS is a JSON list, `[{"url": ..., "secret": ..., "events":
[...]}]`; each start makes the table's `settings` rows match it. Secrets are kept to sign deliveries and
are never returned after they are set (`masked`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal, get_args
from urllib.parse import urlsplit

from sqlalchemy import Engine as Database
from sqlalchemy import text, update
from sqlmodel import Session, col, select

from bot.errors import ConfigError, InvalidInputError, NotFoundError
from bot.store.db import session_scope
from bot.store.models import WebhookDelivery, WebhookSubscription

# What a subscription can ask for (docs/webhooks.md describes each one's payload)
# the one list of event types: the API's schema takes the Literal, the checks here the tuple
EventType = Literal[
    "ticket.opened",
    "ticket.claimed",
    "ticket.replied",
    "ticket.resolved",
    "conversation.message",
    "review.created",
    "sentiment.surge",  # a topic's negative share jumped (bot.store.sentiment, #32 item 3)
]
EVENT_TYPES: tuple[str, ...] = get_args(EventType)
MIN_SECRET_CHARS = 16  # an HMAC key shorter than this is guessable
# PostgreSQL advisory-lock key: replicas (and workers) starting together sync BOT_WEBHOOKS one at a time
SETTINGS_LOCK = 774_230


@dataclass(frozen=True)
class WebhookSpec:
    """A subscription as asked for: checked, not yet stored."""

    url: str
    secret: str
    events: tuple[str, ...]  # empty: every event type


def check_spec(url: str, secret: str, events: list[str] | tuple[str, ...], *, field: str = "") -> WebhookSpec:
    """The spec, or `InvalidInputError` naming what is wrong (`field` prefixes the names)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidInputError(f"{field}url", f"'{url}' is not an http(s) URL")
    if len(secret) < MIN_SECRET_CHARS:
        raise InvalidInputError(f"{field}secret", f"a secret needs at least {MIN_SECRET_CHARS} characters")
    unknown = [e for e in events if e not in EVENT_TYPES]
    if unknown:
        raise InvalidInputError(
            f"{field}events", f"unknown event types {unknown}; allowed: {', '.join(EVENT_TYPES)}"
        )
    return WebhookSpec(url, secret, tuple(dict.fromkeys(events)))


def parse_setting(value: str) -> list[WebhookSpec]:
    """BOT_WEBHOOKS (a JSON list of {url, secret, events}) as specs; `ConfigError` says what is wrong."""
    if not value.strip():
        return []
    try:
        items: Any = json.loads(value)
    except ValueError as exc:
        raise ConfigError(
            f"BOT_WEBHOOKS is not JSON ({exc}); expected [{{'url', 'secret', 'events'}}]"
        ) from None
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise ConfigError("BOT_WEBHOOKS must be a JSON list of objects with url, secret and events")
    specs = []
    for n, item in enumerate(items):
        try:
            specs.append(
                check_spec(
                    str(item.get("url", "")),
                    str(item.get("secret", "")),
                    list(item.get("events") or []),
                    field=f"BOT_WEBHOOKS[{n}].",
                )
            )
        except InvalidInputError as exc:  # the message names the entry, never the secret
            raise ConfigError(str(exc)) from None
    return specs


def masked(secret: str) -> str:
    """How a stored secret is shown: its last 4 characters only."""
    return "****" + secret[-4:]


def add(database: Database, spec: WebhookSpec, *, source: str = "api") -> WebhookSubscription:
    """Store a subscription; events from now on go to it too."""
    with session_scope(database) as session:
        row = WebhookSubscription(url=spec.url, secret=spec.secret, events=list(spec.events), source=source)
        session.add(row)
        session.flush()
        return row


def active(database: Database) -> list[WebhookSubscription]:
    """The subscriptions events go to, oldest first."""
    with Session(database) as session:
        return list(session.exec(_active_query()).all())


def _active_query() -> Any:
    return (
        select(WebhookSubscription)
        .where(col(WebhookSubscription.active))
        .order_by(col(WebhookSubscription.id))
    )


def remove(database: Database, subscription_id: int) -> None:
    """Stop sending to a subscription; its deliveries not yet made are marked failed (and can be listed)."""
    with session_scope(database) as session:
        row = session.get(WebhookSubscription, subscription_id)
        if row is None or not row.active:
            raise NotFoundError(f"unknown webhook {subscription_id}")
        _deactivate(session, [subscription_id])


def _deactivate(session: Session, ids: list[int]) -> None:
    session.execute(
        update(WebhookSubscription).where(col(WebhookSubscription.id).in_(ids)).values(active=False)
    )
    session.execute(
        update(WebhookDelivery)
        .where(col(WebhookDelivery.subscription_id).in_(ids), col(WebhookDelivery.status) == "pending")
        .values(status="failed", last_error="the subscription was deleted", lease_until=None)
    )


def sync_settings(database: Database, specs: list[WebhookSpec]) -> None:
    """Make the `settings` subscriptions match BOT_WEBHOOKS: new ones added, changed ones updated (their
    pending deliveries are then signed with the new secret), ones no longer listed removed.

    Replicas starting together must not both add a subscription (every event would go twice), so they
    take turns: on PostgreSQL by an advisory lock, on SQLite by writing first (an UPDATE of no row takes
    the database's write lock before anything is read)."""
    with session_scope(database) as session:
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SETTINGS_LOCK})
        else:
            session.execute(text("UPDATE webhook_subscription SET active = active WHERE 1 = 0"))
        stored = list(
            session.exec(_active_query().where(col(WebhookSubscription.source) == "settings")).all()
        )
        by_url = {row.url: row for row in stored}
        wanted = {spec.url: spec for spec in specs}
        for url, spec in wanted.items():
            row = by_url.get(url)
            if row is None:
                session.add(
                    WebhookSubscription(
                        url=url, secret=spec.secret, events=list(spec.events), source="settings"
                    )
                )
            elif row.secret != spec.secret or row.events != list(spec.events):
                row.secret, row.events = spec.secret, list(spec.events)
                session.add(row)
        gone = [row.id for row in stored if row.url not in wanted and row.id is not None]
        if gone:
            _deactivate(session, gone)
