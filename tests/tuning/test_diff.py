"""The routing diff on logged traffic (#20, item 2): exactly the messages whose decision a change moves."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from bot.api import create_app
from bot.config import Settings
from bot.routing.engine import Engine
from bot.store.db import make_engine
from bot.store.models import DecisionLog, Review
from bot.tuning.diff import outcome
from tests.api_support import make_intents, row_counts, temporary_database

ESTIMATE = "The customer wants to know how long card delivery takes before ordering."
ESTIMATE_NEW = "The customer asks when their card will arrive, how many days the post takes, or where it is."
RATE = "The customer asks which exchange rate we use for foreign currency."
RATE_NEW = "The customer asks which exchange rate or conversion rate we use when converting euros, dollars or other currencies."
MESSAGES = [
    "Where is my new card?",
    "my card still hasn't arrived",
    "when will my card get here",
    "how long does it take to get a card?",
    "how many days until the card is delivered",
    "I ordered a card two weeks ago and nothing came",
    "is my card in the post yet",
    "what rate do you use to convert euros",
    "exchange rate for dollars please",
    "someone stole my wallet with my card",
    "I lost my card",
    "let me speak to a real person",
    "do you pay interest on my savings?",
    "what is the weather in Paris",
    "when will my card get here",  # asked twice: counted twice, encoded once
]


@pytest.fixture(params=["sqlite", "postgresql"])
def logged(
    request: pytest.FixtureRequest, tmp_path: Path, bundled_encoder, cache_dir: Path
) -> Iterator[tuple[TestClient, str, Path, Path]]:
    """An app whose database holds the messages above as customers' turns, and a candidate folder."""
    with temporary_database(request.param, tmp_path) as url:
        live = make_intents(tmp_path / "live")
        candidate = tmp_path / "candidate"
        shutil.copytree(live, candidate)
        bank = candidate / "bank.yaml"
        text = bank.read_text(encoding="utf-8").replace(ESTIMATE, ESTIMATE_NEW).replace(RATE, RATE_NEW)
        bank.write_text(text, encoding="utf-8")
        settings = Settings(intents_dir=live, cache_dir=cache_dir, database_url=url, learned_sync_seconds=0)
        engine = Engine(settings, encoder=bundled_encoder)
        engine.load()
        with TestClient(create_app(settings, engine=engine)) as client:
            for message in MESSAGES:
                assert client.post("/v1/chat", json={"message": message}).status_code == 200
            yield client, url, live, candidate


def direct(folder: Path, encoder, cache_dir: Path, texts: list[str]) -> list[str]:
    """Outcomes of each text routed alone under `folder`, by an engine of its own."""
    engine = Engine(Settings(intents_dir=folder, cache_dir=cache_dir), encoder=encoder)
    engine.load()
    return [outcome(d) for d in engine.route_many(texts)]


def test_a_description_change_shows_exactly_the_messages_it_moves(
    logged: tuple[TestClient, str, Path, Path], bundled_encoder, cache_dir: Path
) -> None:
    client, url, live, candidate = logged
    database = make_engine(url)
    with Session(database) as session:
        rows = session.exec(select(DecisionLog).order_by(DecisionLog.id)).all()  # type: ignore[arg-type]
    texts = [r.text for r in rows]
    before = direct(live, bundled_encoder, cache_dir, texts)
    after = direct(candidate, bundled_encoder, cache_dir, texts)
    expected = {r.id for r, b, a in zip(rows, before, after, strict=True) if b != a}
    assert 0 < len(expected) < len(rows)  # the change moves some messages, not all

    # an analyst reviewed two of the moved messages: one was wrong (the candidate gets it right), one right
    moved = [(r, b, a) for r, b, a in zip(rows, before, after, strict=True) if b != a]
    wrong, _, fixed_to = next(m for m in moved if " " in m[2])  # the candidate takes an intent
    confirmed = next(r for r, _, _ in moved if r.id != wrong.id)
    with Session(database) as session:
        session.add(Review(decision_id=wrong.id, verdict="wrong", intent=fixed_to.split(" ")[1]))
        session.add(Review(decision_id=confirmed.id, verdict="correct", intent=confirmed.intent))
        session.commit()
    counts = row_counts(url)

    response = client.post("/v1/admin/diff", json={"intents_dir": str(candidate), "examples": 50})
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["summary"] == "changed card_delivery_estimate (description), exchange_rate (description)"
    assert report["messages"] == len(MESSAGES) and report["distinct_texts"] == len(set(MESSAGES))
    assert report["changed"] == len(expected)
    shown = {e["decision_id"] for g in report["groups"] for e in g["examples"]}
    assert shown == expected
    for group in report["groups"]:
        for example in group["examples"]:
            row = next(r for r, b, a in moved if r.id == example["decision_id"])
            assert (group["before"], group["after"]) == (before[rows.index(row)], after[rows.index(row)])
        assert group["count"] == len(group["examples"])
    assert report["reviewed"] == 2 and (report["fixes"], report["breaks"]) == (1, 1)
    effects = {e["decision_id"]: e["effect"] for g in report["groups"] for e in g["examples"]}
    assert (effects[wrong.id], effects[confirmed.id]) == ("fixes", "breaks")
    assert row_counts(url) == counts  # nothing written to the live tables

    # the CLI replays the same messages against the live version stored in the database
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from bot.cli import main; main()",
            "diff",
            "--intents",
            str(candidate),
            "--json",
        ],
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "BOT_DATABASE_URL": url,
            "BOT_CACHE_DIR": str(cache_dir),
            "BOT_ENCODER_BACKEND": "torch",
        },
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    cli = json.loads(result.stdout)
    assert set(cli["changed_ids"]) == expected and (cli["fixes"], cli["breaks"]) == (1, 1)
    assert cli["live"] == "version 1"
    database.dispose()


def test_diff_requests_are_checked(logged: tuple[TestClient, str, Path, Path], tmp_path: Path) -> None:
    client, _, _, candidate = logged
    both = client.post("/v1/admin/diff", json={"intents_dir": str(candidate), "version_id": 1})
    assert both.status_code == 422 and "exactly one of" in both.json()["error"]["message"]
    missing = client.post("/v1/admin/diff", json={"intents_dir": str(tmp_path / "nope")})
    assert missing.status_code == 422 and "inside the candidate roots" in missing.json()["error"]["message"]
    # outside the roots (the folder holding the live intents), existing or not, the same answer: an admin
    # key cannot make the server read /etc, nor learn which folders exist
    for elsewhere in ("/etc", "/root", "/no/such/folder", str(tmp_path.parent)):
        refused_outside = client.post("/v1/admin/diff", json={"intents_dir": elsewhere}).json()["error"]
        assert refused_outside["message"] == missing.json()["error"]["message"]
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    shutil.copytree(candidate, outside)
    (candidate.parent / "link").symlink_to(outside)  # a link inside the roots to a folder outside them
    linked = client.post("/v1/admin/diff", json={"intents_dir": str(candidate.parent / "link")})
    assert linked.status_code == 422 and "candidate roots" in linked.json()["error"]["message"]
    too_many = client.post("/v1/admin/diff", json={"version_id": 1, "limit": 200_000})
    assert too_many.status_code == 422
    naive = client.post("/v1/admin/diff", json={"version_id": 1, "since": "2026-11-01T00:00:00"})
    assert naive.status_code == 422 and "timezone" in naive.json()["error"]["message"]
    broken = tmp_path / "broken"
    shutil.copytree(candidate, broken)
    (broken / "bank.yaml").write_text("intents:\n  - name: Bad Name\n    description: x\n", encoding="utf-8")
    refused = client.post("/v1/admin/diff", json={"intents_dir": str(broken)})
    assert refused.status_code == 422 and refused.json()["error"]["message"].startswith(
        f"{broken / 'bank.yaml'}:"
    )
    # the live version against itself changes nothing; a future 'since' replays nothing
    same = client.post("/v1/admin/diff", json={"version_id": 1}).json()
    assert same["changed"] == 0 and same["messages"] == len(MESSAGES)
    later = client.post("/v1/admin/diff", json={"version_id": 1, "since": "2099-01-01T00:00:00Z"}).json()
    assert later["messages"] == 0


def test_one_diff_runs_at_a_time(logged: tuple[TestClient, str, Path, Path]) -> None:
    """A diff replays thousands of messages through the encoder: a second one waits its turn (429), so
    diffs cannot crowd out customers' chats."""
    from bot.runtime import candidates

    client = logged[0]
    with candidates.one_diff_at_a_time():  # as if another admin's diff were running
        busy = client.post("/v1/admin/diff", json={"version_id": 1})
    assert busy.status_code == 429 and busy.headers["Retry-After"] == "10"
    assert busy.json()["error"]["type"] == "busy"
    assert client.post("/v1/admin/diff", json={"version_id": 1}).status_code == 200  # free again
