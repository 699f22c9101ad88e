"""A character YAML refuses before parsing (a C0 control such as \\x01) is a located intents-file error,
not a raw ruamel traceback, both from load_intents and from `bot check`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.content.intents import load_intents
from bot.errors import IntentFileError
from tests.conftest import write

CONTROL = "intents:\n  - name: a\n    description: Some\x01thing.\n    answer: Hi.\n"


def test_load_intents_names_the_file_and_line_of_a_control_character(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", CONTROL)
    with pytest.raises(IntentFileError) as caught:
        load_intents(tmp_path)
    assert caught.value.path == tmp_path / "a.yaml"
    assert caught.value.line == 3
    assert "#x0001" in caught.value.message and "Traceback" not in str(caught.value)


def test_bot_check_reports_a_control_character_without_a_traceback(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", CONTROL)
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from bot.cli import main; main()",
            "check",
            "--syntax-only",
            "--intents",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert f"{tmp_path / 'a.yaml'}:3" in output
    assert "Traceback" not in output
