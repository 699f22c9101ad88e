"""`bot check --data LOGS [--set-share]` (#31 item 3): the traffic's off-topic share against the assumed
one, and writing it into the folder."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest

from bot.content.intents import load_intents
from bot.errors import ConfigError
from bot.insights.log_export import COLUMNS
from bot.insights.off_topic_traffic import file_traffic
from tests.api_support import DEMO_INTENTS
from tests.cli.test_commands import bot


def write_logs(path: Path, n: int = 400, off_topic: float = 0.4) -> None:
    """An export-shaped CSV: `off_topic` of the decisions at low confidence."""
    rng = np.random.default_rng(3)
    off = round(off_topic * n)
    confidences = [*rng.uniform(0.8, 0.99, n - off), *rng.uniform(0.02, 0.25, off)]
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        for i, confidence in enumerate(confidences):
            writer.writerow(
                {
                    "id": i + 1,
                    "text": f"m{i}",
                    "route": "answer" if confidence > 0.5 else "handoff",
                    "intent": "card_arrival" if confidence > 0.5 else "",
                    "confidence": f"{confidence:.4f}",
                    "chosen": "False",
                    "reviewed": "True" if i % 20 == 0 else "False",
                    "review_verdict": "correct" if i % 20 == 0 else "",
                    "review_intent": ("card_arrival" if confidence > 0.5 else "") if i % 20 == 0 else "",
                }
            )


def test_check_with_data_says_the_share_is_off_and_set_share_writes_it(
    tmp_path: Path, cache_dir: Path
) -> None:
    folder = tmp_path / "intents"
    shutil.copytree(DEMO_INTENTS, folder)
    logs = tmp_path / "logs.csv"
    write_logs(logs)
    labelled = bot("check", "--intents", str(folder), "--data", str(logs), "--set-share", cache=cache_dir)
    assert labelled.returncode == 1 and "not written: nothing to write into the folder" in labelled.stderr
    assert "the operating point comes from the folder's calibration.yaml" in labelled.stdout
    assert "`bot calibrate --data FILE --oos-rate 0." in labelled.stdout
    (folder / "calibration.yaml").unlink()  # self-calibrated from here on: the key refits it
    shown = bot("check", "--intents", str(folder), "--data", str(logs), cache=cache_dir)
    assert shown.returncode == 0, shown.stderr
    line = next(x for x in shown.stdout.splitlines() if x.startswith("off-topic share"))
    assert line.startswith(f"off-topic share (400 logged decisions of {logs}, ")
    assert "traffic looks about " in line and "the operating point assumes 3%: refit at " in line
    assert "reviewed: " in shown.stdout and f"`bot check --data {logs} --set-share` writes" in shown.stdout
    assert load_intents(folder).off_topic_share is None
    written = bot("check", "--intents", str(folder), "--data", str(logs), "--set-share", cache=cache_dir)
    assert written.returncode == 0, written.stderr
    share = load_intents(folder).off_topic_share
    assert share is not None and 0.2 <= share <= 0.6
    assert f"wrote off_topic_share: {share:.2f} into " in written.stdout


def test_set_share_needs_data(tmp_path: Path) -> None:
    found = bot("check", "--set-share")
    assert found.returncode == 2 and "--data" in found.stderr


def test_a_json_line_that_is_not_an_object_is_named(tmp_path: Path) -> None:
    """A JSON-lines export with a list on line 2 is a user error naming the file and line, not a traceback."""
    logs = tmp_path / "logs.jsonl"
    logs.write_text('{"confidence": 0.9}\n\n[0.4]\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"logs\.jsonl: line 3 is a JSON list, not an object"):
        file_traffic(logs)
    logs.write_text('{"confidence": 0.9}\n{"confidence": 0.2}\n', encoding="utf-8")
    assert file_traffic(logs).confidences.tolist() == [0.9, 0.2]
