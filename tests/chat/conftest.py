"""The chat API on the shipped demo bank, for the conversation tests (resolving, waiting for a person)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from bot.api import create_app
from bot.routing.engine import Engine


@pytest.fixture()
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'bot.store.db'}"


@pytest.fixture()
def client(demo_engine: Engine, db_url: str) -> Iterator[TestClient]:
    """The app on the shipped demo intents, a fresh engine (learning changes it) and an empty database."""
    configured = demo_engine.settings.with_overrides(database_url=db_url)
    engine = Engine(configured, encoder=demo_engine.query_encoder)
    engine.load()
    with TestClient(create_app(configured, engine=engine)) as test_client:
        yield test_client


def chat(client: TestClient, message: str, **extra: object) -> dict[str, Any]:
    """One customer message through POST /v1/chat; the reply's body."""
    response = client.post("/v1/chat", json={"message": message, **extra})
    assert response.status_code == 200, response.text
    return dict(response.json())
