"""`calibration.yaml`: fitted scoring and thresholds that belong to one intent folder and one model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.errors import IntentFileError
from bot.intents import first_error, read_yaml

CALIBRATION_FILE = "calibration.yaml"
Unit = Annotated[float, Field(ge=0.0, le=1.0)]


class Calibration(BaseModel):
    """What `bot calibrate` fits; the engine applies it when it loads the folder with the same model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model_id: str
    slope: float = Field(gt=0.0)
    center: float
    threshold: Unit
    margin: Unit
    aggregation_weight: Unit = 0.0
    aggregation_depth: int = Field(3, ge=1, le=20)
    intent_thresholds: dict[str, Unit] = Field(default_factory=dict)


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
    return calibration if calibration.model_id == model_id else None
