"""`tone.yaml`: the plain-language descriptions of an angry and of a calm message that a folder routes with.

Anger is detected zero-shot, like intents: a message far enough from the calm phrases towards the angry
ones escalates to a person (`BOT_ANGER_THRESHOLD`, `bot.routing.tone`). What "calm" means depends on the
business (a bank's customers ask about cards, a home assistant's users about lights), so a folder may
describe its own tone; a folder without `tone.yaml` uses the generic phrases below. Calm and angry
phrases work best written in pairs on the same topics, so that only the tone tells them apart.
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

# Written in pairs, a calm message and an angry one on the same topic (`bot.routing.tone` explains why):
# banking, shopping, services, escalation, and talk to the assistant itself (thanks, jokes, "say that
# again"), which a customer service bot hears too and which must not read as anger.
GENERIC_PAIRS: tuple[tuple[str, str], ...] = (
    (
        "When will my new card arrive?",
        "Where on earth is my card? I ordered it weeks ago and you keep fobbing me off!",
    ),
    (
        "I see two payments for the same thing, can you check?",
        "You've taken the money twice AGAIN. Fix it now!",
    ),
    (
        "My transfer hasn't reached the other account yet.",
        "My money has vanished into thin air and nobody here can tell me where it is. Disgraceful.",
    ),
    (
        "What is this fee on my statement?",
        "Who said you could take this fee? It's daylight robbery and I want it back.",
    ),
    (
        "I can't log in to the app this morning.",
        "Your useless app has locked me out yet again, I'm sick of it!",
    ),
    (
        "I'd like to close my account, please.",
        "Close my account today, you're the worst company I've ever had the misfortune to use.",
    ),
    (
        "Why was my card declined?",
        "My card got declined at the till in front of everyone, I've never been so humiliated!",
    ),
    ("How is the exchange rate worked out?", "Your exchange rate is a total rip-off and you know it."),
    (
        "My parcel is late, where is it?",
        "A week late and still no parcel. Stop lying to me about the delivery!",
    ),
    (
        "The item came damaged, can I get a replacement?",
        "It turned up broken and your courier couldn't care less. Absolutely appalling.",
    ),
    ("How long does a refund take?", "I've waited a month for my refund. A MONTH. Give me my money back!"),
    ("These shoes don't fit, how do I swap them?", "Wrong size for the third time. Are you even trying?"),
    (
        "Part of my order is missing.",
        "Half my order is missing again, do you ever check anything before you send it?",
    ),
    (
        "Can I return something I bought in store?",
        "Your staff refused my return and were rude about it. Shameful.",
    ),
    (
        "The engineer didn't come today, can we rebook?",
        "Your engineer didn't turn up AGAIN, I wasted a whole day off work!",
    ),
    ("I think my bill is wrong.", "You've overcharged me yet again, this is a scam and I'm reporting you."),
    (
        "I've been waiting a while for someone to reply.",
        "I've been on hold for an hour and cut off twice. Pathetic.",
    ),
    (
        "I'd like to cancel my subscription.",
        "Cancel it. You've been nothing but trouble and I'm done with you.",
    ),
    (
        "My internet is slow tonight.",
        "My internet has been dead for a week and you keep telling me it's fixed. It is NOT.",
    ),
    (
        "Can my booking be changed?",
        "You cancelled my booking without a word and ruined my holiday. I'm furious.",
    ),
    ("How do I make a complaint?", "I want to complain, your service is an absolute disgrace."),
    ("Can I speak to a person, please?", "Get me a real person right now, this bot is useless!"),
    ("Could a manager look at this?", "I demand to speak to your manager this instant."),
    ("Where can I read your complaints process?", "I'm taking this to the ombudsman and the papers."),
    ("Could someone call me back?", "Nobody ever calls back, nobody ever helps, nobody cares."),
    ("Is this going to be fixed soon?", "If this isn't fixed today I'm going to my solicitor."),
    ("Thanks for your help.", "Thanks for nothing, you've made everything worse."),
    ("Great, that's exactly what I needed.", "Great, just great. You've messed it up again."),
    ("Well done, that was quick.", "Well done, you've managed to get it wrong three times in a row."),
    ("You did a good job there.", "You're hopeless, you can't do anything right."),
    ("Sorry, could you say that again?", "You're not listening to a single word I say!"),
    ("No, that's not what I meant.", "No! Wrong AGAIN. Do you ever get anything right?"),
    ("Please stop, that's enough for now.", "Stop it, you're completely useless!"),
    ("I don't mind, either is fine.", "I don't care any more, I'm finished with you people."),
    ("Hello, are you there?", "Hello?! Is anyone actually going to help me or not?"),
    ("Tell me something funny.", "Is this some kind of joke? Because I'm not laughing."),
    ("OK, goodbye.", "Forget it, I'm never using you again."),
    ("What can you help me with?", "What's the point of you if you can't help with anything?"),
    ("You've been really helpful today, thank you.", "You've been no help at all today."),
    ("Never mind, it doesn't matter now.", "Don't bother, you never fix anything anyway."),
    ("My payment didn't go through, what should I try?", "My payment failed AGAIN, this is a joke."),
)
GENERIC_CALM = tuple(calm for calm, _ in GENERIC_PAIRS)
GENERIC_ANGRY = tuple(angry for _, angry in GENERIC_PAIRS)

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
