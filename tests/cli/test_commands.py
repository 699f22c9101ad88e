"""The `bot` command as a user runs it: one-line errors with exit code 2, JSON on stdout only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import INTENTS, banking77, write


def bot(*args: str, cache: Path | None = None, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    if cache is not None:
        env["BOT_CACHE_DIR"] = str(cache)
    return subprocess.run(
        [sys.executable, "-c", "from bot.cli import main; main()", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


GOOD = "intents:\n  - name: a\n    description: Something.\n    answer: Hi.\n"


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        (
            {"a.yaml": GOOD.replace("answer:", "answr:")},
            "a.yaml:4: unknown key 'answr' (did you mean 'answer'?)",
        ),
        ({"a.yaml": GOOD, "b.yaml": GOOD}, "b.yaml:2: duplicate intent name 'a'; first defined at"),
        (
            {"a.yaml": "intents:\n  - name: a\n    answer: Hi.\n"},
            "a.yaml:2: missing required key 'description'",
        ),
        ({"a.yaml": GOOD.replace("Hi.", "'{{ oops'")}, "a.yaml:4: answer of 'a': template syntax error"),
        ({"a.yaml": GOOD + "  - name: [\n"}, "a.yaml:6: YAML syntax error"),
        (
            {"a.yaml": GOOD.replace("Hi.", "'{{ message | shout }}'")},
            "a.yaml:4: answer of 'a': unknown filter 'shout'",
        ),
        (
            {"a.yaml": GOOD.replace("Hi.", "'In {{ days }} days'")},
            "a.yaml:4: answer of 'a': unknown name 'days'",
        ),
        (  # a knowledge entry's misspelt key: its own line and a suggestion, as intents files get
            {"a.yaml": GOOD, "knowledge/faq.yaml": "entries:\n  - question: Q?\n    answr: A.\n"},
            "knowledge/faq.yaml:3: unknown key 'answr' (did you mean 'answer'?); allowed: question, answer, source",
        ),
        (
            {"a.yaml": GOOD, "knowledge/faq.yaml": "entires:\n  - question: Q?\n    answer: A.\n"},
            "knowledge/faq.yaml:1: unknown key 'entires' (did you mean 'entries'?); allowed: entries",
        ),
        (  # pydantic says "a valid tuple"; the file has lists
            {"a.yaml": GOOD, "tone.yaml": "angry: I am mad\ncalm: [fine]\n"},
            "tone.yaml:1: 'angry' must be a list of phrases (like [\"one\", \"two\"]), got 'I am mad'",
        ),
    ],
)
def test_check_reports_one_line_and_exit_2(tmp_path: Path, files: dict[str, str], expected: str) -> None:
    for name, text in files.items():
        write(tmp_path / name, text)
    result = bot("check", "--intents", str(tmp_path))
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert lines[0].startswith(f"error: {tmp_path}/") and expected in lines[0]


def test_check_accepts_the_shipped_intents() -> None:
    result = bot("check", "--intents", str(INTENTS))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok: ")


def test_bad_setting_is_one_line(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", GOOD)
    result = subprocess.run(
        [sys.executable, "-c", "from bot.cli import main; main()", "check", "--intents", str(tmp_path)],
        capture_output=True,
        text=True,
        env={**os.environ, "BOT_THRESHOLD": "high"},
    )
    assert result.returncode == 2 and result.stderr.startswith("error: setting 'threshold'")


@pytest.mark.slow
def test_route_quick_start_offline(tmp_path: Path) -> None:
    result = bot(
        "route", "my new card still hasn't come", "--intents", str(INTENTS), "--json", cache=tmp_path
    )
    assert result.returncode == 0, result.stderr
    decision = json.loads(result.stdout)
    assert (decision["route"], decision["intent"]) == ("answer", "card_arrival")
    assert decision["answer"] and decision["reason"] and decision["candidates"][0]["intent"] == "card_arrival"
    assert set(decision) >= {"route", "intent", "confidence", "candidates", "answer", "reason"}


@pytest.mark.slow
def test_eval_prints_json_on_stdout_and_progress_on_stderr(tmp_path: Path) -> None:
    data = write(
        tmp_path / "d.csv",
        "text,category\nmy new card still hasn't come,card_arrival\nwhat rate do you use to exchange money,exchange_rate\n",
    )
    result = bot("eval", "--data", str(data), "--intents", str(INTENTS), "--json", cache=tmp_path)
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()
    metrics = json.loads(line)
    assert metrics["n"] == 2 and metrics["top1_accuracy"] == 1.0
    assert set(metrics) >= {"n", "top1_accuracy", "macro_f1", "in_scope_accuracy", "coverage"}


@pytest.mark.slow
def test_zero_shot_banking77_test_accuracy(tmp_path: Path) -> None:
    """The figure in the README: shipped intents, bundled model, BANKING77 test, no examples from it."""
    result = bot(
        "eval", "--data", str(banking77("test.csv")), "--intents", str(INTENTS), "--json", cache=tmp_path
    )
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)
    assert metrics["n"] == 3080
    assert metrics["top1_accuracy"] >= 0.72


@pytest.mark.parametrize(
    "command", [(), ("check",), ("route",), ("shell",), ("db",), ("db", "upgrade"), ("logs", "export")]
)
def test_help_shows_no_type_for_flags(command: tuple[str, ...]) -> None:
    """Typer's rich help printed `--help <bool>` (and `--json <bool>`) for options that take no value."""
    result = bot(*command, "--help")
    assert result.returncode == 0, result.stderr
    assert "--help" in result.stdout and "<bool>" not in result.stdout, result.stdout
