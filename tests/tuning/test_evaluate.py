"""Metrics on small cases computed by hand, data readers, the few-shot draw, and `bot eval` end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bot.routing.policy import Candidate, Decision
from bot.tuning.datasets import few_shot, without_texts
from bot.tuning.evaluate import (
    DataFileError,
    Example,
    compute_metrics,
    confused_pairs,
    per_intent,
    read_dataset,
)
from bot.tuning.report import precision_coverage_curve
from tests.conftest import write

SMALL = """\
small_talk: false  # the test pins its intents: no built-in small talk (#27 item 5)
intents:
  - name: card_arrival
    description: The customer ordered a card and wants to know when it arrives or where it is.
    answer: Cards arrive in 3-5 working days.
  - name: exchange_rate
    description: The customer asks which exchange rate we use for foreign currency.
    answer: We use the interbank rate.
"""


def bot(*args: str, cache: Path) -> subprocess.CompletedProcess[str]:
    """The `bot` command in a subprocess, as a user runs it, with its own embedding cache."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "BOT_CACHE_DIR": str(cache)}
    command = [sys.executable, "-c", "from bot.cli import main; main()", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)


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


def scored(route: str, intent: str | None, top: str, confidence: float) -> Decision:
    return Decision(
        route=route,  # type: ignore[arg-type]
        intent=intent,
        confidence=confidence,
        candidates=(Candidate(top, confidence, confidence),),
        reason="test.",
        threshold=0.5,
        margin=0.1,
    )


def test_out_of_scope_metrics_by_hand() -> None:
    examples = [Example("a", "x"), Example("b", "y"), Example("c", "oos"), Example("d", "oos")]
    decisions = [
        scored("answer", "x", "x", 0.9),  # right
        scored("handoff", None, "x", 0.4),  # in scope but rejected
        scored("answer", "y", "y", 0.6),  # out of scope yet answered: a false accept
        scored("retrieve", None, "x", 0.2),  # out of scope and rejected
    ]
    m = compute_metrics(examples, decisions)
    assert m.oos_recall == pytest.approx(1 / 2)  # one of two oos rows rejected
    assert m.oos_precision == pytest.approx(1 / 2)  # of two rejected rows, one was oos
    # in-scope confidences 0.9, 0.4 vs oos 0.6, 0.2: pairs won 0.9>0.6, 0.9>0.2, 0.4>0.2 -> 3 of 4
    assert m.auroc == pytest.approx(3 / 4)
    assert m.answer_precision == pytest.approx(1 / 2) and m.coverage == pytest.approx(2 / 4)
    assert m.in_scope_accuracy == pytest.approx(1 / 2)


def test_out_of_scope_metrics_are_null_without_such_rows() -> None:
    m = compute_metrics([Example("a", "x")], [scored("answer", "x", "x", 0.9)]).as_dict()
    assert (m["oos_recall"], m["oos_precision"], m["auroc"]) == (None, None, None)
    assert json.loads(json.dumps(m))["auroc"] is None


def test_per_intent_and_confusions() -> None:
    examples = [Example("a", "x"), Example("b", "x"), Example("c", "y")]
    decisions = [
        scored("answer", "x", "x", 0.9),
        scored("answer", "y", "y", 0.9),
        scored("answer", "y", "y", 0.9),
    ]
    rows = {r.intent: r for r in per_intent(examples, decisions)}
    assert (rows["x"].precision, rows["x"].recall, rows["x"].support) == (1.0, 0.5, 2)
    assert rows["y"].precision == pytest.approx(0.5)
    assert confused_pairs(examples, decisions) == [("x", "y", 1, ["b"])]


def test_clinc_json_split_reads_its_out_of_scope_rows(tmp_path: Path) -> None:
    data = {
        "train": [["hi", "greeting"]],
        "val": [["hello", "greeting"]],
        "test": [["hey there", "Greeting"], ["", "greeting"]],
        "oos_val": [["weather?", "oos"]],
        "oos_test": [["how tall is everest", "oos"]],
    }
    path = write(tmp_path / "clinc.json", json.dumps(data))
    assert read_dataset(path, "test") == [
        Example("hey there", "greeting"),
        Example("how tall is everest", "oos"),
    ]
    assert [e.in_scope for e in read_dataset(path, "val")] == [True, False]
    with pytest.raises(DataFileError, match="unknown split 'dev'"):
        read_dataset(path, "dev")
    write(tmp_path / "bad.json", json.dumps({"test": [["only text"]]}))
    with pytest.raises(DataFileError, match=r"test\[0\] must be \[text, label\]"):
        read_dataset(tmp_path / "bad.json", "test")


def test_labels_become_intent_names(tmp_path: Path) -> None:
    write(tmp_path / "a.csv", "text,category\nwhere is my refund,reverted_card_payment?\n")
    assert read_dataset(tmp_path / "a.csv")[0].label == "reverted_card_payment"


def test_few_shot_draws_k_per_intent_reproducibly() -> None:
    rows = [Example(f"{label} {i}", label) for label in ("a", "b") for i in range(20)] + [Example("z", "oos")]
    first = few_shot(rows, 3, seed=7)
    assert sorted(first) == ["a", "b"] and all(len(v) == 3 for v in first.values())
    assert few_shot(rows, 3, seed=7) == first and few_shot(rows, 3, seed=8) != first
    assert len(few_shot(rows, 50, seed=0)["a"]) == 20  # a label with fewer rows gives them all
    kept = without_texts(rows, first)
    assert len(kept) == len(rows) - 6 and not {e.text for e in kept} & {t for v in first.values() for t in v}


def test_precision_coverage_curve_by_hand() -> None:
    coverage, precision, _ = precision_coverage_curve(np.array([0.9, 0.2, 0.6, 0.4]), np.array([1, 0, 1, 0]))
    np.testing.assert_allclose(coverage, [0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(precision, [1.0, 1.0, 2 / 3, 0.5])


@pytest.mark.slow
def test_eval_few_shot_json_and_report(tmp_path: Path) -> None:
    """The CLI on the real encoder: few-shot from a JSON train split, oos rows, a report with plots."""
    data = {
        "train": [
            ["my card never came in the post", "card_arrival"],
            ["which rate do you use for euros", "exchange_rate"],
        ],
        "test": [
            ["my new card still hasn't come", "card_arrival"],
            ["what rate do you use to exchange money", "exchange_rate"],
        ],
        "oos_test": [["recommend me a pizza topping", "oos"]],
    }
    path = write(tmp_path / "clinc.json", json.dumps(data))
    folder = write(tmp_path / "intents" / "bank.yaml", SMALL).parent
    result = bot(
        "eval", "--data", str(path), "--train", str(path), "--shots", "1", "--intents", str(folder),
        "--report", str(tmp_path / "report"), "--json", cache=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()
    metrics = json.loads(line)
    assert metrics["n"] == 3 and metrics["top1_accuracy"] == 1.0
    assert set(metrics) >= {"oos_recall", "oos_precision", "auroc", "answer_precision", "coverage"}
    assert 0.0 <= metrics["auroc"] <= 1.0
    report = (tmp_path / "report" / "report.md").read_text()
    assert "| card_arrival |" in report and "precision_coverage.png" in report
    assert (tmp_path / "report" / "confidence_histogram.png").stat().st_size > 1000


@pytest.mark.slow
def test_eval_leave_one_out_judges_examples_as_new_messages(tmp_path: Path) -> None:
    """Rows that are also examples find themselves at cosine 1 and look surer than any new message;
    --leave-one-out takes that away, and keeps the drawn rows that the plain protocol would drop."""
    rows = (
        "text,category\n"
        "my card never came in the post,card_arrival\n"
        "which rate do you use for euros,exchange_rate\n"
        "what exchange rate will I get for dollars,card_arrival\n"  # deliberately the wrong intent
    )
    train = write(tmp_path / "train.csv", rows)
    copy = write(tmp_path / "copy.csv", rows)  # another path, so the plain protocol keeps every row
    folder = write(tmp_path / "intents" / "bank.yaml", SMALL).parent
    common = ("--train", str(train), "--shots", "5", "--intents", str(folder), "--json")
    plain = bot("eval", "--data", str(copy), *common, cache=tmp_path)
    assert plain.returncode == 0, plain.stderr
    loo = bot("eval", "--data", str(train), "--leave-one-out", *common, cache=tmp_path)
    assert loo.returncode == 0, loo.stderr
    seen, unseen = json.loads(plain.stdout), json.loads(loo.stdout)
    assert unseen["n"] == seen["n"] == 3  # the drawn rows are judged, not dropped
    assert seen["coverage"] == 1.0  # self-matches clear every threshold
    assert unseen["coverage"] < seen["coverage"]


@pytest.mark.slow
def test_eval_warns_about_labels_that_are_not_intents(tmp_path: Path) -> None:
    write(
        tmp_path / "intents" / "a.yaml",
        "intents:\n  - name: greeting\n    description: The customer says hello.\n",
    )
    data = write(
        tmp_path / "rows.csv", "text,category\nhello there,greeting\nwhere is my card,card_arrival\n"
    )
    done = bot(
        "eval",
        "--data",
        str(data),
        "--intents",
        str(tmp_path / "intents"),
        "--json",
        cache=tmp_path / "cache",
    )
    assert done.returncode == 0, done.stderr
    assert (
        "warning: 1 labels in rows.csv are not intents of this folder and count as wrong: card_arrival"
        in done.stderr
    )
