"""Administrators' webhooks: subscriptions, and the outbox's deliveries that failed (listed, re-sent).

docs/webhooks.md describes the events, their signature and the dispatcher that sends them.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from bot.api.deps import DatabaseDep, require
from bot.api.schemas import DeliveriesOut, DeliveryOut, WebhookIn, WebhookOut, WebhooksOut
from bot.store import deliveries, webhooks
from bot.store.models import WebhookSubscription

Id = Annotated[int, Path(ge=1, le=2**31 - 1)]

router = APIRouter(prefix="/v1/admin/webhooks", tags=["admin"], dependencies=[Depends(require())])


def _out(row: WebhookSubscription, *, show_secret: bool = False) -> WebhookOut:
    return WebhookOut(
        id=row.id or 0,
        url=row.url,
        secret=row.secret if show_secret else webhooks.masked(row.secret),
        events=row.events,
        source="settings" if row.source == "settings" else "api",
        created_at=row.created_at,
    )


@router.post("", response_model=WebhookOut, status_code=201)
def add_webhook(body: WebhookIn, database: DatabaseDep) -> WebhookOut:
    """Send events to a URL from now on; the answer shows the secret this once, listings mask it."""
    spec = webhooks.check_spec(body.url, body.secret, list(body.events))
    return _out(webhooks.add(database, spec), show_secret=True)


@router.get("", response_model=WebhooksOut)
def list_webhooks(database: DatabaseDep) -> WebhooksOut:
    """The subscriptions events go to (those of BOT_WEBHOOKS too), secrets masked."""
    return WebhooksOut(items=[_out(row) for row in webhooks.active(database)])


@router.delete("/{webhook_id}", status_code=204)
def delete_webhook(webhook_id: Id, database: DatabaseDep) -> None:
    """Stop sending to a subscription; its deliveries not yet made are kept as failed."""
    webhooks.remove(database, webhook_id)


@router.get("/failed", response_model=DeliveriesOut)
def failed_deliveries(
    database: DatabaseDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> DeliveriesOut:
    """Deliveries that exhausted their retries (or whose subscription was deleted), newest first."""
    rows, total = deliveries.list_failed(database, limit=limit, offset=offset)
    items = [DeliveryOut.model_validate(row) for row in rows]
    return DeliveriesOut(items=items, total=total, limit=limit, offset=offset)


@router.get("/events/{delivery_id}", response_model=DeliveryOut)
def delivery(delivery_id: Id, database: DatabaseDep) -> DeliveryOut:
    """One delivery in any state: pending (with its attempts so far), delivered or failed."""
    return DeliveryOut.model_validate(deliveries.get(database, delivery_id))


@router.post("/events/{delivery_id}/resend", response_model=DeliveryOut)
def resend(delivery_id: Id, database: DatabaseDep) -> DeliveryOut:
    """Queue a failed delivery again with fresh retries (same event id: receivers de-duplicate by it)."""
    return DeliveryOut.model_validate(deliveries.resend(database, delivery_id))
