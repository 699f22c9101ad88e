"""`calibration.yaml`: fitted scoring and thresholds that belong to one intent folder and one model.

This module owns the file format, reading and writing it, and naming a calibration by its content;
fitting one from labelled data is `bot.tuning.calibrate`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.config import DEFAULT_AGGREGATION_WEIGHT, DEFAULT_PROTOTYPE_WEIGHT
from bot.content.intents import first_error
from bot.content.yaml_io import read_yaml
from bot.errors import IntentFileError

CALIBRATION_FILE = "calibration.yaml"
Unit = Annotated[float, Field(ge=0.0, le=1.0)]
# Where a calibration came from: a labelled file (`bot calibrate --data FILE`), analysts' reviews
# (`bot calibrate --data reviewed`), or the intents folder itself (self-calibration, no labels).
CalibrationSource = Literal["labelled", "reviews", "self"]


class Calibration(BaseModel):
    """What `bot calibrate` fits; the engine applies it when it loads the folder with the same model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model_id: str
    slope: float = Field(gt=0.0)
    center: float
    threshold: Unit
    margin: Unit
    aggregation_weight: Unit = DEFAULT_AGGREGATION_WEIGHT
    aggregation_depth: int = Field(3, ge=1, le=20)
    prototype_weight: Unit = DEFAULT_PROTOTYPE_WEIGHT
    intent_thresholds: dict[str, Unit] = Field(default_factory=dict)
    # Provenance, so a reader can tell what the figures above were fitted on and what they promise.
    intents_version: str | None = None
    data: str | None = None
    source: CalibrationSource = "labelled"
    oos_rate: Unit | None = None  # the out-of-scope share of traffic the expected figures assume
    target_precision: Unit | None = None
    expected_precision: Unit | None = None
    # what the data behind `expected_precision` can vouch for: a lower bound (one-sided 95%) that holds for
    # a folder with few examples too (`bot.routing.promise`); None in files written before it existed
    expected_precision_low: Unit | None = None
    expected_coverage: Unit | None = None
    # expected share of messages asked which intent is meant (a near tie within the margin); self-calibration
    expected_clarify: Unit | None = None
    # expected (precision, coverage) at other out-of-scope shares of traffic, keyed by the share
    expected_by_oos_rate: dict[str, tuple[Unit, Unit]] = Field(default_factory=dict)


def content_id(values: Mapping[str, Any]) -> str:
    """A 12-character hash of JSON-able values, independent of key order."""
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:12]


# Fields added after calibration files were in use: left out of the id while unset, so a file written
# before them keeps its id (and decisions logged with it still match it).
LATER_FIELDS = frozenset({"expected_precision_low", "expected_clarify"})


def calibration_id(calibration: Calibration) -> str:
    """Names a calibration by its content, so a logged decision can be matched to its calibration.yaml."""
    unset = {name for name in LATER_FIELDS if getattr(calibration, name) is None}
    return content_id(calibration.model_dump(mode="json", exclude=unset))


def base_model_id(model_id: str) -> str:
    """The model without its backend (`...+onnx`, `...+onnx-int8r`): what a calibration file names, so
    one fitted on any backend applies to all of them."""
    return model_id.split("+", 1)[0]


def same_model(fitted_for: str, model_id: str) -> bool:
    """Whether a calibration fitted for `fitted_for` applies to `model_id`: the same model on any backend
    (torch, or its ONNX exports, whose vectors agree with torch's to 0.99 cosine or better, see
    tests/routing/test_encoders.py), so a folder routes alike on every backend, whichever one calibrated it."""
    return base_model_id(fitted_for) == base_model_id(model_id)


def load_calibration(folder: Path, model_id: str) -> Calibration | None:
    """The folder's calibration if it exists and was fitted for `model_id`; None otherwise."""
    path = folder / CALIBRATION_FILE
    if not path.is_file():
        return None
    data = read_yaml(path)
    try:
        calibration = Calibration.model_validate(dict(data or {}))
    except ValidationError as exc:
        first = first_error(exc)
        key = ".".join(str(p) for p in first["loc"])
        raise IntentFileError(path, None, f"'{key}': {first['msg'].lower()}") from None
    return calibration if same_model(calibration.model_id, model_id) else None


def save_calibration(folder: Path, calibration: Calibration) -> Path:
    """Write `calibration.yaml` into the intents folder (plain YAML, keys in schema order)."""
    from ruamel.yaml import YAML

    path = folder / CALIBRATION_FILE
    yaml = YAML()
    yaml.default_flow_style = False
    with path.open("w", encoding="utf-8") as handle:
        handle.write("# Written by `bot calibrate`; refit after changing intents, data or model.\n")
        yaml.dump(calibration.model_dump(mode="json"), handle)
    return path
