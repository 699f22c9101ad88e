"""`tone.yaml`: the plain-language descriptions of an angry and of a calm message that a folder routes with.

Anger is detected zero-shot, like intents: a message nearer to the angry descriptions than to the calm
ones escalates to a person (`BOT_ANGER_THRESHOLD`). What "calm" means depends on the business (a bank's
customers ask about cards, a home assistant's users about lights), so a folder may describe its own
tone; a folder without `tone.yaml` uses the generic phrases below.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from ruamel.yaml.comments import CommentedMap

from bot.content.intents import first_error
from bot.content.yaml_io import excerpt, read_yaml
from bot.errors import IntentFileError

TONE_FILE = "tone.yaml"

GENERIC_ANGRY = (
    "The customer is angry and furious about the terrible service.",
    "The customer is fed up, says this is a disgrace and a joke, and demands to make a formal complaint.",
    "The customer is outraged and says this is the worst company ever, useless and incompetent.",
    "The customer threatens to go to the ombudsman, the regulator or take legal action.",
    "This is ridiculous, I am sick of this, absolutely unacceptable!!!",
    "You people are useless, nobody ever helps, I am done with you.",
)
GENERIC_CALM = (
    "The customer asks a neutral question about their account or order.",
    "The customer politely asks for help with a problem.",
    "The customer calmly reports that something did not work and asks what to do.",
    "The customer wants to know how a feature works.",
    "The customer is a little worried and asks when something will be fixed.",
    "The customer wants to close or delete their account.",
    "The customer says hello, thank you or goodbye.",
)

Phrase = str


class ToneSpec(BaseModel):
    """The keys `tone.yaml` allows."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    angry: tuple[Phrase, ...] = Field(min_length=1)
    calm: tuple[Phrase, ...] = Field(min_length=1)


@dataclass(frozen=True)
class TonePhrases:
    """The phrases to embed, and where they came from (a file, or the generic defaults)."""

    angry: tuple[str, ...]
    calm: tuple[str, ...]
    source: str


def load_tone(folder: Path) -> TonePhrases:
    """The folder's `tone.yaml` if it has one (validated, `path:line` errors), else the generic phrases."""
    path = Path(folder) / TONE_FILE
    if not path.is_file():
        return TonePhrases(GENERIC_ANGRY, GENERIC_CALM, "generic")
    data = read_yaml(path)
    if not isinstance(data, CommentedMap):
        raise IntentFileError(path, 1, "the file must be a mapping with the keys 'angry' and 'calm'")
    try:
        spec = ToneSpec.model_validate(dict(data))
    except ValidationError as exc:
        first = first_error(exc)
        key = str(first["loc"][0]) if first["loc"] else "angry"
        line = data.lc.key(key)[0] + 1 if key in data else data.lc.line + 1
        if first["type"] == "extra_forbidden":
            message = f"unknown key '{key}'; allowed: angry, calm"
        elif first["type"] == "missing":
            message = f"missing required key '{key}' (a list of phrases)"
        elif first["type"] in ("tuple_type", "list_type"):  # YAML has lists; pydantic would say "tuple"
            message = (
                f'\'{key}\' must be a list of phrases (like ["one", "two"]), got {excerpt(first["input"])}'
            )
        else:
            message = f"'{'.'.join(str(p) for p in first['loc'])}': {first['msg'].lower()}"
        raise IntentFileError(path, line, message) from None
    blank = [key for key in ("angry", "calm") for phrase in getattr(spec, key) if not phrase.strip()]
    if blank:
        raise IntentFileError(path, data.lc.key(blank[0])[0] + 1, f"'{blank[0]}' has an empty phrase")
    return TonePhrases(spec.angry, spec.calm, str(path))
