"""Migration 0011 (#32 item 3) up, down and up again on SQLite and PostgreSQL: the decision's anger column
and the surge table appear and go, rows written before keep their data, and a surge is unique per intent
and day."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from bot.store.db import _alembic_config, current_revision, make_engine, upgrade
from tests.api_support import temporary_database


def _columns(engine: sa.Engine, table: str) -> set[str]:
    return {c["name"] for c in sa.inspect(engine).get_columns(table)}


def _alembic(engine: sa.Engine, verb: str, revision: str) -> None:
    config = _alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        getattr(command, verb)(config, revision)


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_upgrade_downgrade_upgrade(kind: str, tmp_path: Path) -> None:
    with temporary_database(kind, tmp_path) as url:
        engine = make_engine(url)
        _alembic(engine, "upgrade", "0010")
        now = datetime.now(UTC)
        with engine.begin() as connection:  # a decision stored before the column existed
            connection.execute(
                sa.text(
                    "INSERT INTO conversation (id, channel, metadata, status, fallback_streak, "
                    "pending_options, created_at, updated_at) VALUES ('c1', 'web', '{}', 'bot', 0, '[]', :t, :t)"
                ),
                {"t": now},
            )
            connection.execute(
                sa.text(
                    "INSERT INTO decision (conversation_id, text, route, confidence, candidates, "
                    "options, answer, reason, threshold, margin, context_used, chosen, model_id, intents_version, "
                    "calibration_id, latency_ms, reviewed, created_at) VALUES ('c1', 'old', 'answer', 0.9, '[]', '[]', "
                    "'', 'r', 0.5, 0.05, false, false, 'm', 'v', '', 1.0, false, :t)"
                ),
                {"t": now},
            )
        assert upgrade(engine) == "0011" == current_revision(engine)
        assert "anger" in _columns(engine, "decision")
        with engine.begin() as connection:
            assert connection.execute(sa.text("SELECT text, anger FROM decision")).all() == [("old", None)]
            surge = (
                "INSERT INTO sentiment_surge (intent, day, messages, negative, share, baseline_messages, "
                "baseline_negative, baseline_share, p_value, samples, created_at) VALUES ('refund', '2026-11-20', "
                "60, 30, 0.5, 800, 48, 0.06, 0.00001, '[]', :t)"
            )
            connection.execute(sa.text(surge), {"t": now})
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
            connection.execute(sa.text(surge), {"t": now})  # the same topic and day again
        _alembic(engine, "downgrade", "0010")
        assert current_revision(engine) == "0010"
        assert "anger" not in _columns(engine, "decision")
        assert "sentiment_surge" not in sa.inspect(engine).get_table_names()
        with engine.begin() as connection:
            assert connection.execute(sa.text("SELECT text FROM decision")).scalars().all() == ["old"]
        assert upgrade(engine) == "0011"
        engine.dispose()
