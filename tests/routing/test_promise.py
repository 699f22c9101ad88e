"""The promise's lower bound (#27 item 4): below the point estimate, wider for a smaller folder, stored with
a self-calibration, and `bot check` states it. Pure numbers, then one real fit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bot.routing.calibration import save_calibration
from bot.routing.engine import Engine
from bot.routing.promise import Z, effective_count, wilson_high, wilson_low
from bot.routing.pseudo_queries import CROSS_FIT_BIAS, FROZEN_BIAS, TRAINED_BIAS
from bot.routing.self_calibration import Outcome
from tests.conftest import write
from tests.routing.test_self_calibration import HOME, engine_on


def test_wilson_bounds_bracket_the_share_and_know_zero_errors_are_not_certainty() -> None:
    assert wilson_low(1.0, 20) == pytest.approx(1 / (1 + Z * Z / 20))  # 20 of 20 right: 0.88, not 1.00
    for share in (0.0, 0.3, 0.9, 1.0):
        assert wilson_low(share, 50) <= share <= wilson_high(share, 50)
    assert wilson_low(0.9, 0) == 0.0 and wilson_high(0.1, 0) == 1.0  # no evidence, no promise
    assert effective_count(np.array([1.0, 1.0, 1.0])) == pytest.approx(3.0)
    assert effective_count(np.array([10.0, 1.0, 1.0])) < 2.0  # one row dominates


@pytest.mark.parametrize("bias", [FROZEN_BIAS, TRAINED_BIAS, CROSS_FIT_BIAS])
def test_the_bound_is_below_the_estimate_and_widens_as_the_folder_shrinks(bias) -> None:
    outcome = Outcome(right_in=0.62, wrong_in=0.04, accepted_out=0.25)
    for rate in (0.0, 0.03, 0.2):
        estimate = outcome.precision(rate, bias)
        lows = [outcome.precision_low(queries, rate, bias) for queries in (30, 120, 600, 6000)]
        assert all(low < estimate for low in lows)
        assert lows == sorted(lows) and lows[-1] - lows[0] > 0.05  # fewer pseudo-queries: a wider interval
    perfect = Outcome(right_in=0.7, wrong_in=0.0, accepted_out=0.0)  # no pseudo-query answered wrong
    assert perfect.precision(0.03, bias) == 1.0
    assert perfect.precision_low(30, 0.03, bias) < 0.95  # 30 cannot vouch for 1.00
    assert Outcome(0.0, 0.0, 0.3).precision_low(30, 0.03, bias) == 0.0  # answers nothing: promises nothing


def test_a_self_calibration_stores_its_bound_and_bot_check_and_the_api_say_it(
    tmp_path: Path, bundled_encoder, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from fastapi.testclient import TestClient

    from bot.api import create_app
    from bot.cli import intents as cli_intents

    folder = write(tmp_path / "intents" / "home.yaml", HOME).parent
    engine = engine_on(folder, tmp_path / "cache", bundled_encoder)
    engine.load()
    fitted = engine.state.calibration
    assert fitted is not None and fitted.expected_precision is not None
    assert fitted.expected_precision_low is not None
    assert 0.0 < fitted.expected_precision_low < fitted.expected_precision  # 15 examples: a wide interval
    again = engine_on(folder, tmp_path / "cache", bundled_encoder)
    again.load()
    assert again.state.calibration == fitted  # cached with it

    def loaded(_: object) -> Engine:
        return engine

    monkeypatch.setattr(cli_intents, "engine_for", loaded)
    cli_intents.expectations(engine.settings, 3)
    said = capsys.readouterr().out
    low, point = fitted.expected_precision_low, fitted.expected_precision
    assert f"expected: answer precision at least {low:.2f} ({point:.2f} expected), coverage" in said
    # a calibration file written before the bound: the point estimate alone, as before (no crash)
    older = fitted.model_copy(update={"expected_precision_low": None, "expected_clarify": None})
    save_calibration(folder, older.model_copy(update={"source": "labelled"}))
    engine.load()
    cli_intents.expectations(engine.settings, 3)
    assert f"expected: answer precision {point:.2f}, coverage" in capsys.readouterr().out
    (folder / "calibration.yaml").unlink()  # back to the self-calibration (cached), bound included
    engine.load()

    settings = engine.settings.with_overrides(database_url=f"sqlite:///{tmp_path / 'promise.db'}")
    with TestClient(create_app(settings, engine=engine)) as client:
        stated = client.get("/v1/stats").json()["operating_point"]
    assert (stated["expected_precision_low"], stated["expected_precision"]) == (low, point)
    assert stated["expected_clarify"] == fitted.expected_clarify
