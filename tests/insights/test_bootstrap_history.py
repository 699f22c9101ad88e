"""Reading past conversations for `bot bootstrap`: each format, and a malformed record costs only itself."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.insights import history
from bot.insights.history import HistoryError, detect, read_history
from tests.conftest import write
from tests.insights import bootstrap_fixtures as fx

TOTAL = len(fx.rows())


def test_csv_with_aliased_columns(tmp_path: Path) -> None:
    found = read_history(write(tmp_path / "h.csv", fx.csv_text()))
    assert len(found.turns) == TOTAL and not found.problems
    first = found.turns[0]
    assert first.text == fx.rows()[0][0] and first.answer == fx.rows()[0][1]
    assert first.timestamp == datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
    assert first.tags == ("cards", "web")


def test_a_malformed_timestamp_is_named_and_its_question_kept(tmp_path: Path) -> None:
    path = write(tmp_path / "h.csv", fx.csv_text(bad_row=True))
    found = read_history(path)
    assert len(found.turns) == TOTAL and found.turns[1].timestamp is None
    [problem] = found.problems
    assert problem.kept and found.skipped == 0
    assert str(problem) == (
        f"{path}: row 3: 'created_at': 'yesterday-ish' is not ISO 8601 (2024-05-01T09:30:00Z) or Unix seconds"
    )


def test_us_dates_and_bad_tags_lose_no_question(tmp_path: Path) -> None:
    rows = "text,date,tags\nwhere is my card,05/01/2024,cards\nfee?,2024-05-01,\n"
    found = read_history(write(tmp_path / "h.csv", rows))
    assert [(t.text, t.timestamp is None, t.tags) for t in found.turns] == [
        ("where is my card", True, ("cards",)),
        ("fee?", False, ()),
    ]
    found = read_history(write(tmp_path / "h.jsonl", '{"text": "refund", "tags": [1]}\n'))
    assert [t.text for t in found.turns] == ["refund"] and [p.field for p in found.problems] == ["tags"]
    [line] = history.each_problem(found, 5)
    assert line.startswith("field ignored: ")


def test_csv_rows_with_extra_cells_or_no_text(tmp_path: Path) -> None:
    path = write(
        tmp_path / "h.csv", 'text,answer\nwhere is my card,soon\n,orphan answer\na,b,c\n"ok then",\n'
    )
    found = read_history(path)
    assert [t.text for t in found.turns] == ["where is my card", "ok then"]
    assert [str(p).removeprefix(f"{path}: ") for p in found.problems] == [
        "row 3: 'text': missing or empty",
        "row 4: 'row': more cells than the header has columns",
    ]


def test_csv_without_a_question_column_names_the_accepted_ones(tmp_path: Path) -> None:
    with pytest.raises(HistoryError, match=r"row 1: no question column .* accepted names: text, question"):
        read_history(write(tmp_path / "h.csv", "category,when\ncard,2024\n"))


def test_jsonl_bad_lines_are_skipped_with_their_line_number(tmp_path: Path) -> None:
    lines = [
        json.dumps(
            {
                "message": "card stuck in the ATM",
                "response": "We will send a new one.",
                "timestamp": 1714550000,
            }
        ),
        "{not json",
        json.dumps({"message": 42}),
        json.dumps(["a list"]),
        "",
        json.dumps({"question": "x" * (history.MAX_CHARS + 1)}),
        json.dumps({"text": "fee for transfers?", "tags": "fees|transfers"}),
    ]
    path = write(tmp_path / "h.jsonl", "\n".join(lines))
    found = read_history(path)
    assert [(t.text, t.tags) for t in found.turns] == [
        ("card stuck in the ATM", ()),
        ("fee for transfers?", ("fees", "transfers")),
    ]
    assert found.turns[0].timestamp == datetime.fromtimestamp(1714550000, tz=UTC)
    where = [(p.where, p.field) for p in found.problems]
    assert where == [("line 2", "line"), ("line 3", "message"), ("line 4", "line"), ("line 6", "question")]
    assert "at most 2000 are read" in found.problems[-1].reason


def test_chatwoot_export(tmp_path: Path) -> None:
    path = write(tmp_path / "chatwoot.json", fx.chatwoot_json())
    assert detect(path, path.read_text()) == "chatwoot"
    found = read_history(path)
    assert len(found.turns) == TOTAL
    question, answer = fx.rows()[0]
    first = found.turns[0]
    # the greeting and the question before the first reply make one question; the private note and the
    # activity line are never the answer
    assert (first.text, first.answer, first.tags) == (f"hi {question}", answer, ("web",))
    [problem] = found.problems
    assert (problem.where, problem.field) == ("record 2, message 1", "message_type")
    assert "allowed: 0/incoming, 1/outgoing" in problem.reason


def test_chatwoot_messages_endpoint_shape(tmp_path: Path) -> None:
    payload = {
        "meta": {},
        "payload": [
            {
                "conversation_id": 5,
                "message_type": "incoming",
                "content": "can I pay by cheque",
                "created_at": 1,
            },
            {
                "conversation_id": 5,
                "message_type": "outgoing",
                "content": "No, cheques are not accepted.",
                "created_at": 2,
            },
            {"conversation_id": 6, "message_type": 0, "content": "", "created_at": 3},
        ],
    }
    found = read_history(write(tmp_path / "m.json", json.dumps(payload)), "chatwoot")
    assert [(t.text, t.answer) for t in found.turns] == [
        ("can I pay by cheque", "No, cheques are not accepted.")
    ]
    assert [(p.where, p.field) for p in found.problems] == [("record 3", "content")]


def test_zendesk_export(tmp_path: Path) -> None:
    path = write(tmp_path / "tickets.jsonl", fx.zendesk_jsonl())
    assert detect(path, path.read_text()) == "zendesk"
    found = read_history(path)
    assert len(found.turns) == TOTAL - 1
    question, answer = fx.rows()[0]
    assert (found.turns[0].text, found.turns[0].answer, found.turns[0].tags) == (question, answer, ("web",))
    [problem] = found.problems
    assert (problem.where, problem.field) == ("line 3 (ticket 103)", "requester_id")


def test_zendesk_tickets_document_with_a_description_only(tmp_path: Path) -> None:
    tickets = {"tickets": [{"id": 1, "requester_id": 2, "description": "refund please", "tags": ["refund"]}]}
    found = read_history(write(tmp_path / "t.json", json.dumps(tickets)))
    assert [(t.text, t.answer, t.tags) for t in found.turns] == [("refund please", None, ("refund",))]


def test_nothing_usable_fails_with_the_reasons(tmp_path: Path) -> None:
    path = write(tmp_path / "h.jsonl", '{"text": ""}\n{"text": 3}\n')
    with pytest.raises(
        HistoryError, match=r"no usable customer question \(jsonl format\): .*line 1: 'text': missing"
    ):
        read_history(path)


def test_a_file_over_the_size_bound_is_refused_unread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(history, "MAX_BYTES", 10)
    with pytest.raises(HistoryError, match="at most 10 are read; split the file"):
        read_history(write(tmp_path / "h.csv", fx.csv_text()))


def test_record_count_bound(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(history, "MAX_RECORDS", 5)
    with pytest.raises(HistoryError, match=r"row 7: more than 5 records"):
        read_history(write(tmp_path / "h.csv", fx.csv_text()))


def test_hostile_csv_and_json_lines_cost_only_their_record(tmp_path: Path) -> None:
    huge = "x" * 200_000
    path = write(tmp_path / "h.csv", f'text,answer\nwhere is my card,soon\n"{huge}",b\nfee?,none\n')
    found = read_history(path)
    assert [t.text for t in found.turns] == ["where is my card", "fee?"]
    [problem] = found.problems
    assert (problem.path, problem.where, problem.field) == (path, "row 3", "row")
    assert "field larger than field limit" in problem.reason
    lines = ['{"text": "a card", "n": ' + "9" * 5000 + "}", "[" * 100_000, '{"text": "a fee"}']
    found = read_history(write(tmp_path / "h.jsonl", "\n".join(lines)))
    assert [t.text for t in found.turns] == ["a fee"]
    assert [(p.where, p.reason) for p in found.problems] == [
        ("line 1", "not readable JSON: a number with more than 4300 digits"),
        ("line 2", "not readable JSON: nested too deeply"),
    ]


def test_chatwoot_unhashable_types_and_ids_are_skipped_with_a_reason(tmp_path: Path) -> None:
    messages = [
        {"conversation_id": 1, "message_type": [0], "content": "x"},
        {"conversation_id": [1], "message_type": 0, "content": "x"},
        {"conversation_id": 2, "message_type": 0, "content": "where is my card"},
    ]
    conversations = [{"id": [9], "labels": ["web"], "messages": messages}]
    found = read_history(write(tmp_path / "c.json", json.dumps(conversations)), "chatwoot")
    assert [t.text for t in found.turns] == ["where is my card"]
    assert [(p.where, p.field) for p in found.problems] == [
        ("record 1, message 1", "message_type"),
        ("record 1, message 2", "conversation_id"),
    ]
    found = read_history(
        write(
            tmp_path / "z.jsonl", "[" * 100_000 + '\n{"id": 1, "requester_id": 2, "description": "refund"}\n'
        ),
        "zendesk",
    )
    assert [t.text for t in found.turns] == ["refund"] and found.problems[
        0
    ].reason == "not readable JSON: nested too deeply"


def test_tsv_is_read_with_tabs(tmp_path: Path) -> None:
    path = write(tmp_path / "h.tsv", "text\tanswer\nwhere is my card, please\tsoon, within 5 days\n")
    [turn] = read_history(path).turns
    assert (turn.text, turn.answer) == ("where is my card, please", "soon, within 5 days")


def test_chatwoot_messages_count_toward_the_record_bound_and_a_joined_question_is_cut(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.insights import history_exports

    many = [{"conversation_id": 1, "message_type": 0, "content": "x" * 1500} for _ in range(6)]
    path = write(tmp_path / "c.json", json.dumps(many))
    [turn] = read_history(path, "chatwoot").turns  # six messages of 1,500 joined: cut to the bound
    assert len(turn.text) == history.MAX_CHARS
    monkeypatch.setattr(history_exports, "MAX_RECORDS", 5)
    with pytest.raises(HistoryError, match=r"record 6: more than 5 records"):
        read_history(path, "chatwoot")


def test_export_tickets_and_messages_keep_their_question_without_a_bad_time(tmp_path: Path) -> None:
    ticket = {"id": 1, "requester_id": 2, "description": "refund please", "created_at": "01/05/2024"}
    found = read_history(write(tmp_path / "t.json", json.dumps({"tickets": [ticket]})))
    assert [(t.text, t.timestamp) for t in found.turns] == [("refund please", None)]
    assert [(p.field, p.kept) for p in found.problems] == [("created_at", True)]
    messages = [{"conversation_id": 1, "message_type": 0, "content": "card?", "created_at": "soon"}]
    found = read_history(write(tmp_path / "c.json", json.dumps(messages)), "chatwoot")
    assert [t.text for t in found.turns] == ["card?"] and found.skipped == 0
