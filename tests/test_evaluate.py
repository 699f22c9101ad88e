"""Metrics on small cases computed by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.evaluate import DataFileError, Example, compute_metrics, read_dataset
from bot.router import Candidate, Decision
from tests.conftest import write


def decision(route: str, intent: str | None, top: str) -> Decision:
    return Decision(
        route=route,  # type: ignore[arg-type]
        intent=intent,
        confidence=0.9,
        candidates=(Candidate(top, 0.9, 0.9), Candidate("zzz", 0.1, 0.1)),
        reason="test.",
        threshold=0.5,
        margin=0.1,
    )


def test_metrics_by_hand() -> None:
    examples = [
        Example("a", "x"),
        Example("b", "x"),
        Example("c", "y"),
        Example("d", "y"),
        Example("e", "oos"),
    ]
    decisions = [
        decision("answer", "x", "x"),  # right, accepted
        decision("clarify", None, "x"),  # top-1 right, not accepted
        decision("answer", "x", "x"),  # wrong, accepted
        decision("handoff", "y", "y"),  # right, accepted as a handoff intent
        decision("retrieve", None, "y"),  # out of scope, not accepted
    ]
    m = compute_metrics(examples, decisions)
    assert m.n == 5
    assert m.top1_accuracy == pytest.approx(3 / 4)  # in-scope rows only: x, x, (x for y), y
    # per label: x precision 2/3 recall 1 -> F1 0.8; y precision 1 recall 1/2 -> F1 2/3
    assert m.macro_f1 == pytest.approx((0.8 + 2 / 3) / 2)
    assert m.in_scope_accuracy == pytest.approx(2 / 4)
    assert m.coverage == pytest.approx(3 / 5)
    assert m.answer_precision == pytest.approx(2 / 3)


def test_csv_reader_accepts_category_or_label_and_lowercases(tmp_path: Path) -> None:
    write(tmp_path / "a.csv", "text,category\nhello,Refund_not_showing_up\n")
    write(tmp_path / "b.csv", "label,text\noos,what is the weather\n")
    assert read_dataset(tmp_path / "a.csv") == [Example("hello", "refund_not_showing_up")]
    assert read_dataset(tmp_path / "b.csv")[0].in_scope is False
    write(tmp_path / "c.csv", "sentence,intent\nhi,x\n")
    with pytest.raises(DataFileError, match="needs columns 'text' and 'category'"):
        read_dataset(tmp_path / "c.csv")
    with pytest.raises(DataFileError, match="no such file"):
        read_dataset(tmp_path / "missing.csv")
