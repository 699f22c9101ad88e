"""Intent YAML: the schema, a loader that reports `path:line` errors, and the intent set's content hash."""

from __future__ import annotations

import difflib
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, ValidationError, field_validator
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from bot.content.answers import AnswerTemplate, compile_template
from bot.content.yaml_io import excerpt, read_yaml
from bot.errors import IntentFileError, TemplateError

if TYPE_CHECKING:  # small_talk builds on this module's Intent; it is imported where it is used
    from bot.content.off_topic import OffTopicShare
    from bot.content.small_talk import SmallTalk, SmallTalkSetting

NAME_PATTERN = r"^[a-z0-9_]+$"
# live in the folder but are not intent files: fitted calibration (bot calibrate), anger phrases (bot.content.tone)
RESERVED_FILES = frozenset({"calibration.yaml", "tone.yaml"})
NonEmptyStr = Annotated[StrictStr, Field(min_length=1, max_length=2000)]
# Folder size limits (issue #26): far above any real business, low enough that the self-training's
# cost and an engine's memory stay bounded (docs/evaluation.md "Bounded self-training (#26)"). A
# customer message is a sentence or two; BANKING77's longest is 433 characters, its 77 intents have
# 10,003 training messages in all, and a bank's or a shop's intents number in the hundreds.
MAX_INTENTS = 2000
MAX_EXAMPLES_PER_INTENT = 200
MAX_EXAMPLES = 10_000  # in the whole folder
MAX_EXAMPLE_CHARS = 1000
ExampleStr = Annotated[StrictStr, Field(min_length=1, max_length=MAX_EXAMPLE_CHARS)]


class IntentSpec(BaseModel):
    """One intent as written in YAML."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[StrictStr, Field(pattern=NAME_PATTERN, max_length=100)]
    description: NonEmptyStr
    title: NonEmptyStr | None = None
    examples: Annotated[tuple[ExampleStr, ...], Field(max_length=MAX_EXAMPLES_PER_INTENT)] = ()
    answer: StrictStr | None = None
    threshold: Annotated[float, Field(ge=0.0, le=1.0)] | None = None
    handoff: StrictBool = False
    tags: tuple[NonEmptyStr, ...] = ()

    @field_validator("description", "title", "examples", "answer", mode="before")
    @classmethod
    def _strip(cls, value: Any) -> Any:
        """Blank text counts as missing, so `description: "  "` is rejected like an empty one."""
        if isinstance(value, str):
            return value.strip()
        if isinstance(value, list | tuple):
            return tuple(v.strip() if isinstance(v, str) else v for v in value)
        return value

    @property
    def label(self) -> str:
        """A short human label, for clarify buttons."""
        return self.title or self.name.replace("_", " ").capitalize()


ALLOWED_KEYS = tuple(IntentSpec.model_fields)


@dataclass(frozen=True)
class Intent:
    """A validated intent with its compiled answer and where it was defined."""

    spec: IntentSpec
    path: Path
    line: int
    template: AnswerTemplate | None = field(compare=False, repr=False)

    @property
    def name(self) -> str:
        """The intent's unique name."""
        return self.spec.name


@dataclass(frozen=True)
class IntentSet:
    """All intents of a folder, in file order, with a content hash that names this version."""

    intents: tuple[Intent, ...]
    version: str
    # the built-in small talk it uses, replaces or switched off (bot.content.small_talk)
    small_talk: SmallTalk | None = field(default=None, compare=False)
    # the folder's `off_topic_share` key (bot.content.off_topic); part of `version` when set
    off_topic: OffTopicShare | None = field(default=None, compare=False)

    @property
    def off_topic_share(self) -> float | None:
        """The share of traffic the folder says is off-topic, overriding BOT_OOS_RATE; None: not said."""
        return self.off_topic.share if self.off_topic is not None else None

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {i.name: i for i in self.intents})
        object.__setattr__(self, "_names", tuple(i.name for i in self.intents))  # read per decision

    def get(self, name: str) -> Intent | None:
        """The intent called `name`, or None."""
        by_name: dict[str, Intent] = object.__getattribute__(self, "_by_name")
        return by_name.get(name)

    @property
    def names(self) -> tuple[str, ...]:
        """Intent names in file order."""
        names: tuple[str, ...] = object.__getattribute__(self, "_names")
        return names

    def with_extra_examples(self, extra: dict[str, list[str]]) -> IntentSet:
        """A copy where intents gain examples (few-shot evaluation, reviewed messages); YAML untouched."""
        intents = []
        for intent in self.intents:
            added = [e for e in extra.get(intent.name, []) if e not in intent.spec.examples]
            if added:
                spec = intent.spec.model_copy(update={"examples": (*intent.spec.examples, *added)})
                intent = Intent(spec=spec, path=intent.path, line=intent.line, template=intent.template)
            intents.append(intent)
        return IntentSet(
            intents=tuple(intents),
            version=content_hash((i.spec for i in intents), self.off_topic_share),
            small_talk=self.small_talk,
            off_topic=self.off_topic,
        )


def content_hash(specs: Any, off_topic_share: float | None = None) -> str:
    """A short stable hash of intent specs, so logs can name the exact intent set that decided; a folder's
    `off_topic_share` changes its operating point, so it is part of the hash when set (and only then, so
    the versions of folders without the key stay what they were)."""
    payload = json.dumps([s.model_dump(mode="json") for s in specs], sort_keys=True, ensure_ascii=False)
    if off_topic_share is not None:
        payload += json.dumps({"off_topic_share": off_topic_share})
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def _line_of(node: Any, loc: tuple[int | str, ...], fallback: int) -> int:
    """1-based line of the YAML node at `loc` inside `node`, as close as the path allows."""
    line = fallback
    current = node
    for part in loc:
        if isinstance(current, CommentedMap) and part in current:
            line = current.lc.key(part)[0] + 1
            current = current[part]
        elif isinstance(current, CommentedSeq) and isinstance(part, int) and part < len(current):
            line = current.lc.item(part)[0] + 1
            current = current[part]
        else:
            break
    return line


def first_error(exc: ValidationError) -> dict[str, Any]:
    """The error to report: a misspelt key first, since it usually explains the rest."""
    errors: list[dict[str, Any]] = list(exc.errors())  # type: ignore[arg-type]
    return next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])


def _describe(error: dict[str, Any]) -> str:
    """One readable sentence for one pydantic error."""
    loc = [str(p) for p in error["loc"]]
    key = loc[0] if loc else "intent"
    where = ".".join(loc)
    kind = error["type"]
    if kind == "extra_forbidden":
        close = difflib.get_close_matches(key, ALLOWED_KEYS, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        return f"unknown key '{key}'{hint}; allowed: {', '.join(ALLOWED_KEYS)}"
    if kind == "missing":
        return f"missing required key '{key}'"
    if kind == "string_pattern_mismatch":
        return f"'{where}' must use only lowercase letters, digits and underscores, got {excerpt(error['input'])}"
    if kind == "string_too_short":
        return f"'{where}' must not be empty"
    if kind == "too_long":  # a list with too many items
        limit = error.get("ctx", {}).get("max_length")
        return (
            f"'{where}' has {error['ctx']['actual_length']:,} items; at most {limit:,} are allowed per intent"
        )
    if kind in ("tuple_type", "list_type"):  # YAML has lists, not tuples
        return f'\'{where}\' must be a list (like ["one", "two"]), got {excerpt(error["input"])}'
    if kind == "model_type":
        return f"each intent must be a mapping of keys, got {type(error['input']).__name__}"
    return f"'{where}': {error['msg'].lower()}, got {excerpt(error['input'])}"


@dataclass(frozen=True)
class _FileKeys:
    """A file's folder-level keys, each None when the file does not set it."""

    small_talk: SmallTalkSetting | None = None
    off_topic: OffTopicShare | None = None


def _load_file(path: Path) -> tuple[list[Intent], _FileKeys]:
    from bot.content.off_topic import OFF_TOPIC_KEY, read_share
    from bot.content.small_talk import SMALL_TALK_KEY, read_setting

    data = read_yaml(path)
    if data is None:
        return [], _FileKeys()
    if not isinstance(data, CommentedMap):
        raise IntentFileError(path, 1, "the file must be a mapping with the key 'intents'")
    unknown = [key for key in data if key not in ("intents", SMALL_TALK_KEY, OFF_TOPIC_KEY)]
    if unknown:
        line = data.lc.key(unknown[0])[0] + 1
        close = difflib.get_close_matches(str(unknown[0]), (SMALL_TALK_KEY, OFF_TOPIC_KEY), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise IntentFileError(
            path,
            line,
            f"unknown top-level key '{unknown[0]}'{hint}; allowed: intents, {SMALL_TALK_KEY}, {OFF_TOPIC_KEY}",
        )
    keys = _FileKeys(
        read_setting(path, data) if SMALL_TALK_KEY in data else None,
        read_share(path, data) if OFF_TOPIC_KEY in data else None,
    )
    if "intents" not in data and (keys.small_talk is not None or keys.off_topic is not None):
        return [], keys  # a file may hold only the folder's keys
    if not isinstance(data.get("intents"), CommentedSeq):
        raise IntentFileError(path, data.lc.line + 1, "the file needs a list under 'intents'")
    raw_intents = data["intents"]
    intents: list[Intent] = []
    for position, raw in enumerate(raw_intents):
        line = raw_intents.lc.item(position)[0] + 1
        try:
            spec = IntentSpec.model_validate(dict(raw) if isinstance(raw, CommentedMap) else raw)
        except ValidationError as exc:
            first = first_error(exc)
            raise IntentFileError(path, _line_of(raw, first["loc"], line), _describe(first)) from None
        template = None
        if spec.answer:
            try:
                template = compile_template(spec.answer)
            except TemplateError as exc:
                answer_line = _line_of(raw, ("answer",), line)
                raise IntentFileError(path, answer_line, f"answer of '{spec.name}': {exc.message}") from None
        intents.append(Intent(spec=spec, path=path, line=line, template=template))
    return intents, keys


def check_folder_size(intents: list[Intent]) -> None:
    """Raise `IntentFileError` at the first intent past the folder limits (MAX_INTENTS, MAX_EXAMPLES)."""
    if len(intents) > MAX_INTENTS:
        extra = intents[MAX_INTENTS]
        raise IntentFileError(
            extra.path,
            extra.line,
            f"the folder has {len(intents):,} intents, at most {MAX_INTENTS:,} are allowed ('{extra.name}' is "
            "the first past the limit): merge intents that share an answer",
        )
    total = 0
    for intent in intents:
        total += len(intent.spec.examples)
        if total > MAX_EXAMPLES:
            raise IntentFileError(
                intent.path,
                intent.line,
                f"'examples' of '{intent.name}' take the folder past {MAX_EXAMPLES:,} examples in all, the "
                f"most allowed (the folder has {sum(len(i.spec.examples) for i in intents):,}): keep the "
                "clearest few per intent",
            )


def intent_files(folder: Path) -> list[Path]:
    """The intent files of a folder, sorted, without reserved files such as calibration.yaml."""
    files = [*folder.glob("*.yaml"), *folder.glob("*.yml")]
    return sorted(f for f in files if f.name not in RESERVED_FILES)


def load_intents(folder: Path | str) -> IntentSet:
    """Load and validate every intent file of `folder`; raise `IntentFileError` on the first problem."""
    folder = Path(folder)
    if not folder.is_dir():
        raise IntentFileError(
            folder, None, "intents folder does not exist (set BOT_INTENTS_DIR or --intents)"
        )
    files = intent_files(folder)
    if not files:
        raise IntentFileError(folder, None, "no *.yaml intent files in this folder")
    from bot.content.small_talk import add_small_talk

    seen: dict[str, Intent] = {}
    ordered: list[Intent] = []
    keys = _FileKeys()
    for path in files:
        found, own = _load_file(path)
        keys = _FileKeys(
            _once(keys.small_talk, own.small_talk, "small_talk"),
            _once(keys.off_topic, own.off_topic, "off_topic_share"),
        )
        for intent in found:
            first = seen.get(intent.name)
            if first is not None:
                raise IntentFileError(
                    path,
                    intent.line,
                    f"duplicate intent name '{intent.name}'; first defined at {first.path}:{first.line}",
                )
            seen[intent.name] = intent
            ordered.append(intent)
    if not ordered:
        raise IntentFileError(folder, None, "the intent files define no intents")
    check_folder_size(ordered)
    ordered, used = add_small_talk(ordered, keys.small_talk)
    share = keys.off_topic.share if keys.off_topic is not None else None
    return IntentSet(
        intents=tuple(ordered),
        version=content_hash((i.spec for i in ordered), share),
        small_talk=used,
        off_topic=keys.off_topic,
    )


def _once(first: Any, again: Any, key: str) -> Any:
    """A folder key from the file that sets it; an `IntentFileError` where a second file sets it too."""
    if first is not None and again is not None:
        raise IntentFileError(
            again.path, again.line, f"'{key}' is set twice; first at {first.path}:{first.line} (keep one)"
        )
    return again if again is not None else first
