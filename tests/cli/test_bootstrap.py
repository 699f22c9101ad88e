"""`bot bootstrap` as a user runs it: a draft folder `bot check` accepts, bad rows named, nothing else lost."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.test_commands import bot
from tests.conftest import write
from tests.insights import bootstrap_fixtures as fx


def test_bootstrap_writes_a_folder_bot_check_accepts(tmp_path: Path) -> None:
    history = write(tmp_path / "history.csv", fx.csv_text(bad_row=True, repeat=2))
    out = tmp_path / "drafts"
    done = bot("bootstrap", "--from", str(history), "--out", str(out))
    assert done.returncode == 0, done.stderr
    # the malformed timestamp is named with its row and field, and its question is kept
    assert f"field ignored: {history}: row 3: 'created_at': 'yesterday-ish' is not ISO 8601" in done.stderr
    assert "3 draft intents covering" in done.stdout and "0 records skipped" in done.stdout
    summary = json.loads((out / "drafts.json").read_text())
    assert summary["read"] == 2 * (len(fx.rows()) - 1) + 1 and summary["skipped"] == 0
    assert all(d["answer"] and d["size"] >= 3 for d in summary["drafts"])
    assert "purity estimate" in (out / "drafts.yaml").read_text()
    assert (out / "review.html").is_file() and "review.html to accept, rename, merge or drop" in done.stdout
    # the share of the history in no draft: said, in drafts.json, and the folder's off_topic_share
    assert f"plans for {summary['off_topic_share']:.0%} of messages no draft covers" in done.stdout
    assert f"\noff_topic_share: {summary['off_topic_share']:g}\n" in (out / "drafts.yaml").read_text()
    assert fx.ONE_OFF[0] in (out / "knowledge" / "drafted.yaml").read_text()
    checked = bot("check", "--intents", str(out))
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.startswith("ok: ") and "1 knowledge passages" in checked.stdout


def test_bootstrap_reads_a_chatwoot_export(tmp_path: Path) -> None:
    history = write(tmp_path / "conversations.json", fx.chatwoot_json())
    done = bot("bootstrap", "--from", str(history), "--out", str(tmp_path / "out"), "--min-size", "2")
    assert done.returncode == 0, done.stderr
    assert "'message_type': 7; allowed: 0/incoming, 1/outgoing" in done.stderr
    drafts = json.loads((tmp_path / "out" / "drafts.json").read_text())["drafts"]
    assert {d["answer"] for d in drafts} <= {answer for _, answer in fx.TOPICS.values()}


def test_a_non_empty_out_is_refused_before_reading(tmp_path: Path) -> None:
    write(tmp_path / "out" / "mine.yaml", "intents: []\n")
    done = bot("bootstrap", "--from", str(tmp_path / "absent.csv"), "--out", str(tmp_path / "out"))
    assert done.returncode == 2
    assert "the folder is not empty; choose a new one or pass --force" in done.stderr


@pytest.mark.parametrize(
    ("content", "options", "message"),
    [
        ('{"text": ""}\n', (), "no usable customer question (jsonl format): "),
        ("category\ncard\n", (), "row 1: no question column"),
        ("text\nhi\n", ("--format", "xml"), "'xml' is not one of"),
    ],
)
def test_unusable_input_is_one_line_and_exit_2(
    tmp_path: Path, content: str, options: tuple[str, ...], message: str
) -> None:
    history = write(tmp_path / ("h.jsonl" if content.startswith("{") else "h.csv"), content)
    done = bot("bootstrap", "--from", str(history), "--out", str(tmp_path / "out"), *options)
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_the_format_choices_are_the_readers() -> None:
    from bot.cli.bootstrap import HistoryFormat
    from bot.insights.history import FORMATS

    assert tuple(HistoryFormat) == FORMATS


def test_questions_and_answers_are_redacted_before_clustering() -> None:
    from bot.cli.bootstrap import _redacted
    from bot.insights.history import History, Turn

    history = History(
        turns=[
            Turn(
                "card 4111 1111 1111 1111 was charged twice",
                "We refunded it; receipt sent to sam@example.com.",
            ),
            Turn("where is my card", None),
        ]
    )
    questions, answers = _redacted(history)
    assert "4111" not in questions[0] and "charged twice" in questions[0]
    assert answers[0] is not None and "sam@example.com" not in answers[0] and "We refunded it" in answers[0]
    assert (questions[1], answers[1]) == ("where is my card", None)


def test_control_characters_and_raw_breaking_answers_still_make_a_folder_bot_check_accepts(
    tmp_path: Path,
) -> None:
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["text", "answer"])
    for question, answer in [pair for pair in fx.rows()[:-1] for _ in range(2)]:
        writer.writerow([question + "\x7f\x9f", answer + " Type {%endraw%}{{ 7 * 7 }} in the app."])
    history = write(tmp_path / "history.csv", out.getvalue())
    done = bot("bootstrap", "--from", str(history), "--out", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "out" / "drafts.yaml").read_text()
    assert "\x7f" not in text and "\x9f" not in text and "endraw%}{{ 7 * 7 }} in the app" in text
    checked = bot("check", "--intents", str(tmp_path / "out"))
    assert checked.returncode == 0 and "Traceback" not in checked.stderr, checked.stderr
