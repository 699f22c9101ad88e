"""Shadow runs (#20, item 3): a candidate decides every live message too; customers only ever see live."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from bot.api import create_app
from bot.config import Settings
from bot.routing.engine import Engine
from bot.routing.outcomes import outcome
from bot.store.db import make_engine
from bot.store.models import ShadowDecision
from tests.api_support import make_intents, temporary_database
from tests.tuning.test_diff import ESTIMATE, ESTIMATE_NEW, MESSAGES, RATE, RATE_NEW, direct


def eventually(check: Callable[[], bool], seconds: float = 60) -> bool:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def candidate_of(live: Path, folder: Path) -> Path:
    shutil.copytree(live, folder)
    bank = folder / "bank.yaml"
    bank.write_text(bank.read_text().replace(ESTIMATE, ESTIMATE_NEW).replace(RATE, RATE_NEW))
    return folder


@pytest.fixture(params=["sqlite", "postgresql"])
def shadowed(
    request: pytest.FixtureRequest, tmp_path: Path, bundled_encoder, cache_dir: Path
) -> Iterator[tuple[TestClient, str, Path, Path]]:
    """An app on the small intents whose BOT_SHADOW_INTENTS_DIR is the changed copy of test_diff."""
    with temporary_database(request.param, tmp_path) as url:
        live = make_intents(tmp_path / "live")
        candidate = candidate_of(live, tmp_path / "candidate")
        settings = Settings(
            intents_dir=live, cache_dir=cache_dir, database_url=url, shadow_intents_dir=candidate
        )
        engine = Engine(settings, encoder=bundled_encoder)
        engine.load()
        with TestClient(create_app(settings, engine=engine)) as client:
            yield client, url, live, candidate


def test_shadow_decisions_are_stored_and_never_returned_to_a_widget(
    shadowed: tuple[TestClient, str, Path, Path], bundled_encoder, cache_dir: Path
) -> None:
    client, url, live, candidate = shadowed
    before = direct(live, bundled_encoder, cache_dir, MESSAGES)
    after = direct(candidate, bundled_encoder, cache_dir, MESSAGES)
    assert before != after  # otherwise shadow and live could not be told apart

    replies = [client.post("/v1/chat", json={"message": m}).json() for m in MESSAGES]
    # customers get live's decisions, also where the shadow decides otherwise
    assert [outcome(r["route"], r["intent"], r["source"]) for r in replies] == before
    assert eventually(lambda: client.get("/v1/shadow").json()["run"]["decided"] == len(MESSAGES))

    database = make_engine(url)
    with Session(database) as session:
        rows = session.exec(select(ShadowDecision).order_by(col(ShadowDecision.id))).all()
    by_decision = {row.decision_id: outcome(row.route, row.intent, row.source) for row in rows}
    assert [by_decision[r["decision_id"]] for r in replies] == after
    database.dispose()

    # what a widget can read of a conversation the shadow decided differently is live's answer only
    moved = next(r for r, b, a in zip(replies, before, after, strict=True) if b != a)
    thread = client.get(f"/v1/conversations/{moved['conversation_id']}/messages").json()
    assert [(m["role"], m["text"]) for m in thread["messages"]] == [
        ("user", MESSAGES[replies.index(moved)]),
        ("bot", moved["answer"]),
    ]
    logged = client.get("/v1/logs", params={"limit": 200, "reviewed": "false"}).json()
    assert logged["total"] == len(MESSAGES)  # the shadow's decisions are not in the decision log

    shadow = client.get("/v1/shadow").json()
    changed = sum(b != a for b, a in zip(before, after, strict=True))
    comparison = shadow["comparison"]
    assert comparison["messages"] == len(MESSAGES)
    assert comparison["agreed"] == len(MESSAGES) - changed
    assert sum(d["count"] for d in comparison["disagreements"]) == changed
    assert {(d["live"], d["shadow"]) for d in comparison["disagreements"]} == {
        (b, a) for b, a in zip(before, after, strict=True) if b != a
    }
    assert shadow["run"]["candidate"] == f"version 2 ({candidate})" and shadow["run"]["dropped"] == 0

    # the analyst confirms a live answer the shadow changes: live is right on it, the shadow is not
    review = client.post(
        f"/v1/logs/{moved['decision_id']}/review", json={"verdict": "correct", "intent": moved["intent"]}
    )
    assert review.status_code == 200
    comparison = client.get("/v1/shadow").json()["comparison"]
    assert (comparison["reviewed"], comparison["live_correct"], comparison["shadow_correct"]) == (1, 1, 0)

    # promote: the shadow's version goes live in one call, and the shadow stops
    promoted = client.post("/v1/admin/shadow/promote")
    assert promoted.status_code == 200, promoted.text
    assert promoted.json()["version"]["id"] == 2 and promoted.json()["version"]["live"]
    assert client.get("/v1/shadow").json()["run"] is None
    intents = client.get("/v1/intents").json()["intents"]  # the candidate's texts route now
    assert next(i["description"] for i in intents if i["name"] == "card_delivery_estimate") == ESTIMATE_NEW
    assert client.get("/v1/versions").json()["activations"][0]["action"] == "promote"


def test_a_shadow_starts_and_stops_at_runtime_and_bad_requests_are_refused(
    tmp_path: Path, bundled_encoder, cache_dir: Path
) -> None:
    live = make_intents(tmp_path / "live")
    settings = Settings(intents_dir=live, cache_dir=cache_dir, database_url=f"sqlite:///{tmp_path / 'db'}")
    engine = Engine(settings, encoder=bundled_encoder)
    engine.load()
    with TestClient(create_app(settings, engine=engine)) as client:
        assert client.get("/v1/shadow").json() == {"run": None, "comparison": None}
        refused = client.post("/v1/admin/shadow/promote")
        assert refused.status_code == 409 and "no shadow run" in refused.json()["error"]["message"]
        missing = client.post("/v1/admin/shadow", json={"intents_dir": str(tmp_path / "nope")})
        assert missing.status_code == 422 and "candidate roots" in missing.json()["error"]["message"]
        elsewhere = client.post("/v1/admin/shadow", json={"intents_dir": "/etc"})
        assert elsewhere.status_code == 422 and "candidate roots" in elsewhere.json()["error"]["message"]
        broken = candidate_of(live, tmp_path / "broken")
        (broken / "bank.yaml").write_text("intents:\n  - name: Bad Name\n    description: x\n")
        invalid = client.post("/v1/admin/shadow", json={"intents_dir": str(broken)})
        assert invalid.status_code == 422 and invalid.json()["error"]["message"].startswith(
            str(broken / "bank.yaml")
        )

        started = client.post("/v1/admin/shadow", json={"version_id": 1})  # live against itself
        assert started.status_code == 200 and started.json()["run"]["candidate"] == "version 1"
        for message in MESSAGES[:5]:
            client.post("/v1/chat", json={"message": message})
        assert eventually(lambda: client.get("/v1/shadow").json()["run"]["decided"] == 5)
        assert client.get("/v1/shadow").json()["comparison"]["agreement"] == 1.0
        stopped = client.delete("/v1/admin/shadow").json()
        assert stopped["run"]["running"] is False and stopped["comparison"]["messages"] == 5
        client.post("/v1/chat", json={"message": MESSAGES[5]})
        assert client.get("/v1/shadow").json()["run"] is None
        # an earlier run's comparison stays readable by its intents version
        earlier = client.get(
            "/v1/shadow", params={"intents_version": stopped["run"]["intents_version"]}
        ).json()
        assert earlier["comparison"]["messages"] == 5


def test_a_shadow_waits_while_live_requests_are_queued_and_drains_when_stopped(
    shadowed: tuple[TestClient, str, Path, Path],
) -> None:
    """Its own work would take CPU and GIL time from live requests, so it runs only in lulls; stopping
    it still decides and stores everything it queued."""
    client, url, _, _ = shadowed
    run = client.app.state.runtime.shadow.run  # type: ignore[attr-defined]
    busy = [True]
    run._live_busy = lambda: busy[0]  # stands in for the pipeline's queues, so the test controls "busy"
    for message in MESSAGES[:5]:
        assert client.post("/v1/chat", json={"message": message}).status_code == 200
    time.sleep(0.3)
    assert run.snapshot().decided == 0  # live is busy: the shadow holds its batch and decides nothing
    busy[0] = False
    assert eventually(lambda: run.snapshot().decided == 5, seconds=30)  # a lull: it catches up
    busy[0] = True
    for message in MESSAGES[5:8]:
        assert client.post("/v1/chat", json={"message": message}).status_code == 200
    stopped = client.delete("/v1/admin/shadow")  # busy or not, what was queued is decided and stored
    assert stopped.status_code == 200 and run.snapshot().decided == 8
    database = make_engine(url)
    with Session(database) as session:
        assert len(session.exec(select(ShadowDecision)).all()) == 8
    database.dispose()
