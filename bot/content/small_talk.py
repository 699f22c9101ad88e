"""Built-in small talk: greeting, thanks, goodbye and asking for a person, for folders that lack them.

A new folder describes its business and forgets the words every chat hears: without these intents
"thanks" is a fallback (a second one in a row hands off to a person) and "bye" lands on whatever is
nearest. So `load_intents` adds the four below to every folder, as texts of the folder like any other
(routed, self-calibrated and self-trained on), except where the folder has its own:

- an intent of the same name replaces the built-in (the demo bank's `basics.yaml` replaces all four);
- the top-level key `small_talk` of one intent file maps a built-in to the folder's intent that does its
  job (`greeting: hello`), switches one off (`human_agent: false`), or switches all off
  (`small_talk: false`). docs/intents.md documents it.

It is a folder key, not a BOT_ setting, so the intent set stays the folder's alone: a stored version, a
shadow run or `bot diff` replays the same intents on any server.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml.comments import CommentedMap

from bot.content.answers import compile_template
from bot.content.intents import Intent, IntentSpec
from bot.content.yaml_io import excerpt
from bot.errors import IntentFileError

SMALL_TALK_KEY = "small_talk"
BUILT_IN_PATH = Path(__file__)  # what a built-in intent names as its file; `is_built_in` tests it
BUILT_IN_TAG = "built_in"
# Short messages like "thanks" score lower than full questions, so these accept at a lower confidence,
# as the demo bank's own small talk does (docs/configuration.md, "Defaults and why").
THRESHOLD = 0.55

BUILT_INS: tuple[IntentSpec, ...] = (
    IntentSpec(
        name="greeting",
        description="The customer only says hello or greets the assistant, without asking anything yet.",
        examples=("Hi", "Hello there", "Good morning", "Hey, is anyone there?"),
        answer="Hello! Tell me what you need and I'll answer it or find someone who can.",
        threshold=THRESHOLD,
        tags=("small_talk", BUILT_IN_TAG),
    ),
    IntentSpec(
        name="thanks",
        description="The customer only says thank you or that the help was useful, without a new question.",
        examples=("Thanks", "Thank you very much", "Cheers, that helped", "Great, thanks for your help"),
        answer="You're welcome! Is there anything else I can help with?",
        threshold=THRESHOLD,
        tags=("small_talk", BUILT_IN_TAG),
    ),
    IntentSpec(
        name="goodbye",
        description="The customer ends the conversation and says goodbye.",
        examples=("Bye", "Goodbye", "That's all for now, bye", "See you later"),
        answer="Goodbye, and thanks for getting in touch.",
        threshold=THRESHOLD,
        tags=("small_talk", BUILT_IN_TAG),
    ),
    IntentSpec(
        name="human_agent",
        description=(
            "The customer asks to talk to a real person, a human agent or a member of staff instead of the bot."
        ),
        examples=(
            "Can I talk to a real person?",
            "I want to speak to a human",
            "Put me through to someone from your team",
            "Is there an agent I can chat with?",
        ),
        handoff=True,  # no answer of its own: the handoff line (BOT_HANDOFF_MESSAGE) says what happens
        threshold=THRESHOLD,
        tags=("escalation", BUILT_IN_TAG),
    ),
)
BUILT_IN_NAMES = tuple(spec.name for spec in BUILT_INS)


@dataclass(frozen=True)
class SmallTalkSetting:
    """A folder's `small_talk` key: all off, or per built-in a replacing intent's name or False."""

    path: Path
    line: int
    enabled: bool = True
    per_built_in: dict[str, str | bool] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)  # each built-in's line under the key


@dataclass(frozen=True)
class SmallTalk:
    """Which built-ins a folder uses, which its own intents replace, and which it switched off."""

    used: tuple[str, ...]
    replaced: dict[str, str]  # built-in name -> the folder's intent doing its job
    off: tuple[str, ...]
    setting: str | None  # 'path:line' of the small_talk key, if the folder has one


def is_built_in(intent: Intent) -> bool:
    """Whether `intent` is one of the built-ins (not written in the folder)."""
    return intent.path == BUILT_IN_PATH


def read_setting(path: Path, data: CommentedMap) -> SmallTalkSetting:
    """Validate the `small_talk` key of one intent file (`path:line` errors a builder can act on)."""
    line = data.lc.key(SMALL_TALK_KEY)[0] + 1
    value: Any = data[SMALL_TALK_KEY]
    if isinstance(value, bool):
        return SmallTalkSetting(path, line, enabled=value)
    if not isinstance(value, CommentedMap):
        raise IntentFileError(
            path,
            line,
            f"'{SMALL_TALK_KEY}' must be true, false or a mapping like {{greeting: hello, human_agent: false}}, "
            f"got {excerpt(value)}",
        )
    per: dict[str, str | bool] = {}
    lines: dict[str, int] = {}
    for key, choice in value.items():
        key_line = value.lc.key(key)[0] + 1
        if key not in BUILT_IN_NAMES:
            close = difflib.get_close_matches(str(key), BUILT_IN_NAMES, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise IntentFileError(
                path,
                key_line,
                f"'{SMALL_TALK_KEY}': no built-in '{key}'{hint}; built-ins: {', '.join(BUILT_IN_NAMES)}",
            )
        if not isinstance(choice, bool | str) or choice == "":
            raise IntentFileError(
                path,
                key_line,
                f"'{SMALL_TALK_KEY}.{key}' must be false (off), true (on) or the name of the folder's intent that "
                f"replaces it, got {excerpt(choice)}",
            )
        per[str(key)] = choice
        lines[str(key)] = key_line
    return SmallTalkSetting(path, line, per_built_in=per, lines=lines)


def add_small_talk(
    intents: Sequence[Intent], setting: SmallTalkSetting | None
) -> tuple[list[Intent], SmallTalk]:
    """The folder's intents followed by the built-ins it neither replaces nor switched off."""
    names = {intent.name for intent in intents}
    where = f"{setting.path}:{setting.line}" if setting else None
    if setting is not None and not setting.enabled:
        return list(intents), SmallTalk(used=(), replaced={}, off=BUILT_IN_NAMES, setting=where)
    per = setting.per_built_in if setting else {}
    replaced: dict[str, str] = {}
    off: list[str] = []
    added: list[Intent] = []
    for position, spec in enumerate(BUILT_INS):
        choice = per.get(spec.name, True)
        if spec.name in names:
            replaced[spec.name] = spec.name
        elif choice is False:
            off.append(spec.name)
        elif isinstance(choice, str) and setting is not None:  # a name comes from the folder's setting
            if choice not in names:
                raise IntentFileError(
                    setting.path,
                    setting.lines.get(spec.name, setting.line),
                    f"'{SMALL_TALK_KEY}.{spec.name}' names '{choice}', which is no intent of this folder",
                )
            replaced[spec.name] = choice
        else:
            template = compile_template(spec.answer) if spec.answer else None
            added.append(Intent(spec=spec, path=BUILT_IN_PATH, line=position + 1, template=template))
    used = tuple(intent.name for intent in added)
    return [*intents, *added], SmallTalk(used=used, replaced=replaced, off=tuple(off), setting=where)


def describe(small_talk: SmallTalk) -> list[str]:
    """The lines `bot check` prints about small talk."""
    lines = []
    if small_talk.used:
        lines.append(
            f"small talk: built-in {', '.join(small_talk.used)} in use (the folder has no intents of these "
            f"names; replace one with an intent of the same name, or see '{SMALL_TALK_KEY}' in docs/intents.md)"
        )
    if small_talk.replaced:
        own = ", ".join(
            built_in if built_in == mine else f"{mine} (for {built_in})"
            for built_in, mine in small_talk.replaced.items()
        )
        lines.append(
            f"small talk: the folder's own {own} in place of the built-in{'s' if len(small_talk.replaced) > 1 else ''}"
        )
    if small_talk.off:
        lines.append(f"small talk: built-in {', '.join(small_talk.off)} switched off ({small_talk.setting})")
    return lines
