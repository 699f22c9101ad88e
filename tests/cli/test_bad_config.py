"""Bad configuration: one clear line and a non-zero exit at start-up; random YAML damage never goes live."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import Settings
from bot.content.intents import load_intents
from bot.errors import IntentFileError
from bot.routing.engine import Engine
from tests.api_support import make_intents
from tests.conftest import INTENTS, FakeEncoder


def serve(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from bot.cli import main; main()", "serve", "--port", "1"],
        capture_output=True,
        text=True,
        env={**os.environ, "BOT_CACHE_DIR": str(tmp_path / "cache"), **env},
        timeout=180,
    )


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"BOT_MODEL": "/no/such/model"}, "error: model folder '/no/such/model' does not exist"),
        ({"BOT_INTENTS_DIR": "/no/such/intents"}, "error: /no/such/intents: intents folder does not exist"),
        ({"BOT_THRESHOLD": "2"}, "error: setting 'threshold': Input should be less than or equal to 1"),
        ({"BOT_API_KEYS": "boss:x"}, "error: BOT_API_KEYS entry 'boss:…' must be ROLE:KEY"),
    ],
)
def test_start_up_errors_are_one_line(tmp_path: Path, env: dict[str, str], expected: str) -> None:
    result = serve(tmp_path, **env)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(expected), result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_broken_yaml_and_unreachable_database_stop_the_start(tmp_path: Path) -> None:
    folder = make_intents(tmp_path / "intents")
    (folder / "bank.yaml").write_text((folder / "bank.yaml").read_text().replace("answer:", "answr:", 1))
    broken = serve(tmp_path, BOT_INTENTS_DIR=str(folder))
    assert broken.returncode == 2 and broken.stderr.startswith(
        f"error: {folder / 'bank.yaml'}:5: unknown key 'answr'"
    )

    good = make_intents(tmp_path / "good")
    dead = serve(
        tmp_path, BOT_INTENTS_DIR=str(good), BOT_DATABASE_URL="postgresql+psycopg://bot@127.0.0.1:1/bot"
    )
    assert dead.returncode == 2 and dead.stderr.startswith(
        "error: cannot migrate database postgresql+psycopg://bot@"
    )
    assert "Traceback" not in broken.stderr + dead.stderr


def corrupt(text: str, rng: random.Random) -> str:
    """One random edit of the kind a hurried person makes in a YAML file."""
    lines = text.splitlines(keepends=True)
    i = rng.randrange(len(lines))
    kind = rng.randrange(7)
    if kind == 0:
        lines[i] = lines[i].replace(":", "", 1)
    elif kind == 1:
        lines[i] = " " + lines[i]
    elif kind == 2:
        lines[i] = lines[i].replace("  ", "\t", 1)
    elif kind == 3:
        del lines[i]
    elif kind == 4:
        lines.insert(i, lines[i])
    elif kind == 5:
        position = rng.randrange(max(1, len(lines[i])))
        lines[i] = (
            lines[i][:position]
            + rng.choice(["{", "[", '"', "'", "- ", "{{", "{%", "&x", "*y"])
            + lines[i][position:]
        )
    else:
        j = rng.randrange(len(lines))
        lines[i], lines[j] = lines[j], lines[i]
    return "".join(lines)


def test_random_yaml_damage_is_reported_or_harmless(tmp_path: Path) -> None:
    """300 random corruptions: each either loads or gives an IntentFileError with path:line; the live set stays."""
    source = (INTENTS / "cards.yaml").read_text()
    folder = tmp_path / "intents"
    folder.mkdir()
    engine = Engine(Settings(intents_dir=folder, cache_dir=tmp_path / "cache"), encoder=FakeEncoder())
    (folder / "cards.yaml").write_text(source)
    engine.load()
    live = engine.intents.version
    rng = random.Random(7)
    rejected = 0
    for _ in range(300):
        (folder / "cards.yaml").write_text(corrupt(source, rng))
        try:
            load_intents(folder)
        except IntentFileError as exc:
            rejected += 1
            assert str(exc).startswith(str(folder)) and "\n" not in str(exc)
            with pytest.raises(IntentFileError):
                engine.load()
            assert engine.intents.version == live
    assert rejected > 100  # most damage is caught; the rest is still-valid YAML


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"BOT_RATE_LIMIT_PER_IP": "lots"},
            "error: BOT_RATE_LIMIT_PER_IP 'lots' must look like '120/minute'",
        ),
        (
            {"BOT_RATE_LIMIT_STORAGE": "carrier-pigeon://x"},
            "error: BOT_RATE_LIMIT_STORAGE 'carrier-pigeon://x'",
        ),
    ],
)
def test_bad_rate_limit_settings_are_one_line(tmp_path: Path, env: dict[str, str], expected: str) -> None:
    from bot.api import create_app
    from bot.errors import ConfigError

    with pytest.raises(ConfigError) as caught:
        create_app(
            Settings(cache_dir=tmp_path, **{k.removeprefix("BOT_").lower(): v for k, v in env.items()})
        )
    assert f"error: {caught.value}".startswith(expected)


@pytest.mark.parametrize(
    "command", [["db", "upgrade"], ["logs", "export", "--format", "csv"], ["review", "export"]]
)
def test_every_command_reports_bad_settings_in_one_line(command: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-c", "from bot.cli import main; main()", *command],
        capture_output=True,
        text=True,
        env={**os.environ, "BOT_THRESHOLD": "abc"},
        timeout=120,
    )
    assert result.returncode == 2 and result.stderr.startswith("error: setting 'threshold'"), result.stderr
