"""Drafting a new intent's name and description from a cluster's most central messages (#27 item 10).

No language model: the central message is turned from the customer's words into a line about them by a
few rules of English word order ("can I buy bitcoin in the app" -> "Customers asking whether they can buy
bitcoin in the app"; "what are your opening hours" -> "Customers asking what our opening hours are"),
with the pronouns turned round (I -> they, you -> we: a description speaks for the business, like the
shipped intents' "which exchange rate we use"). A message no rule fits is quoted. The name is the central
message's key phrase: the stretch of it between the first and last word that sets the cluster apart
(frequent in it, rarer in the other unrouted messages), e.g. "buy_bitcoin" or "insurance_for_dog".
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

_APOSTROPHES = "'\u2019"  # a typed one and a phone keyboard's curly one
_WORD = re.compile(rf"[A-Za-z0-9]+(?:[{_APOSTROPHES}][A-Za-z]+)?")
_GREETINGS = {"hi", "hello", "hey", "please", "so", "ok", "okay", "um", "and", "but", "also"}
_TRAILING = {"please", "thanks", "thank", "pls", "plz"}
_SWAP = {
    "i": "they", "me": "them", "my": "their", "mine": "theirs", "myself": "themselves",
    "i'm": "they're", "i've": "they've", "i'd": "they'd", "i'll": "they'll", "im": "they're",
    "you": "we", "your": "our", "yours": "ours", "yourself": "ourselves", "yourselves": "ourselves",
    "you're": "we're", "you've": "we've", "you'll": "we'll", "you'd": "we'd", "u": "we", "ur": "our",
}  # fmt: skip
_AFTER_THEY = {"am": "are", "was": "were", "is": "are", "has": "have", "does": "do", "doesn't": "don't"}
_AFTER_WE = {"was": "were", "is": "are", "has": "have", "does": "do", "doesn't": "don't"}
_BE = {"am", "is", "are", "was", "were", "isn't", "aren't", "wasn't", "weren't"}
_DO = {"do", "does", "don't", "doesn't"}
_MODAL = {"can", "could", "will", "would", "should", "may", "might", "must", "shall", "has", "have", "had"}
_MODAL |= {"can't", "won't", "wouldn't", "couldn't", "shouldn't", "hasn't", "haven't"}
_WH = {"how", "what", "when", "where", "why", "which", "who", "whom", "whose"}
_DETERMINERS = {"my", "your", "the", "a", "an", "our", "this", "that", "these", "those", "his", "her", "its"}
_PRONOUNS = {"i", "you", "we", "it", "they", "he", "she", "u"}
_REQUESTS = {"update", "change", "cancel", "close", "send", "tell", "help", "show", "give", "stop", "block"}
_REQUESTS |= {"freeze", "unblock", "unfreeze", "reset", "remove", "add", "delete", "order", "explain"}
# words that say little about what a cluster is for: left out of a name
_GENERIC = {
    "want", "need", "like", "get", "know", "tell", "help", "use", "make", "able", "possible", "way",
    "offer", "offers", "have", "has", "support", "provide", "let", "allow", "give", "bank", "app",
    "account", "please", "thanks", "hello", "just", "really", "still", "yet", "also", "already",
}  # fmt: skip
_KEEP_IN_NAME = {"for", "to", "in", "on", "from", "with", "without", "abroad", "online", "not", "no"}
MAX_NAME_WORDS = 4
MAX_DESCRIBED_WORDS = 16  # a longer sentence is hard to read in a description: a less central one is used
CENTRAL = 5  # how many of the most central messages a draft is made from
_SENTENCE_END = re.compile(r"(?<=[.?!])\s+")


@dataclass(frozen=True)
class Draft:
    """A drafted intent: its name and description."""

    name: str
    description: str


def _tokens(text: str) -> list[str]:
    """The words of `text` in order, apostrophes kept inside a word ("hasn't", "I'm")."""
    return [t.replace("\u2019", "'") for t in _WORD.findall(text)]


def _core(tokens: list[str]) -> list[str]:
    """`tokens` without greetings in front and thanks at the end."""
    while tokens and tokens[0].lower() in _GREETINGS:
        tokens = tokens[1:]
    while tokens and tokens[-1].lower() in _TRAILING:
        tokens = tokens[:-1]
    return tokens


def _swap(words: Sequence[str]) -> list[str]:
    """The customer's pronouns turned round: I -> they, my -> their, you -> we (us after a verb or a
    preposition: "a mortgage with you" -> "with us"), and the verb after agreeing ("I was" -> "they were")."""
    out: list[str] = []
    for at, word in enumerate(words):
        low = word.lower()
        following = words[at + 1].lower() if at + 1 < len(words) else ""
        before = words[at - 1].lower() if at else ""
        subject = len(words) == 1 or following in _BE | _DO | _MODAL or following.endswith("ed")
        subject = subject or before in _BE | _DO | _MODAL
        if low in {"you", "u"} and not subject:
            out.append("us")
        elif out and out[-1] == "they" and low in _AFTER_THEY:
            out.append(_AFTER_THEY[low])
        elif out and out[-1] == "we" and low in _AFTER_WE:
            out.append(_AFTER_WE[low])
        elif low in _SWAP:
            out.append(_SWAP[low])
        else:
            out.append(word)  # as written: "Larkspur", "PIN" (`reported` lowercases the first word)
    return out


def _third_person(verb: str) -> str:
    """`verb` after he/she/it: let -> lets, charge -> charges, carry -> carries, have -> has."""
    low = verb.lower()
    if low == "have":
        return "has"
    if low in {"can", "will", "must", "should", "may"}:
        return low
    if re.search(r"(s|sh|ch|x|z|o)$", low):
        return low + "es"
    if re.search(r"[^aeiou]y$", low):
        return low[:-1] + "ies"
    return low + "s"


def _agree(subject: str, aux: str) -> str:
    """`aux` after `subject` once the pronouns are turned round: "am I" -> "they are", "was I" -> "they were"."""
    if subject in {"they", "we"}:
        plural = {"am": "are", "is": "are", "was": "were", "isn't": "aren't", "wasn't": "weren't"}
        return {**plural, "has": "have", "hasn't": "haven't"}.get(aux, aux)
    return aux


def _subject(words: list[str]) -> int:
    """How many of `words` make the subject after an inverted verb: a pronoun, or a determiner and its noun
    (one more word when it is a noun compound like "the exchange rate" before a participle)."""
    if not words:
        return 0
    if words[0].lower() in _PRONOUNS:
        return 1
    if words[0].lower() in _DETERMINERS and len(words) > 1:
        return 2
    return 1


def _verb_follows(words: list[str]) -> bool:
    """Whether `words` (what follows a subject after "is/was") starts like a predicate: a participle, a
    preposition or an adverb, rather than the rest of a longer subject ("the exchange rate for euros")."""
    if not words:
        return False
    first = words[0].lower()
    preps = {
        "in",
        "on",
        "at",
        "still",
        "not",
        "being",
        "going",
        "coming",
        "available",
        "open",
        "here",
        "there",
    }
    return first in preps or first.endswith(("ed", "en", "ing")) or first in {"free", "safe", "late", "lost"}


def reported(message: str) -> tuple[str, str] | None:
    """(lead, clause) of a message in reported speech: ("asking", "whether they can buy bitcoin in the
    app"), ("asking", "how to apply for a home loan"), ("saying", "their card hasn't arrived yet"),
    ("who", "want to close their account"); None when no rule fits."""
    words = _core(_tokens(message))
    if len(words) < 2:
        return None
    if not (words[0].isupper() and len(words[0]) > 1):  # a sentence's capital, not an acronym's
        words[0] = words[0].lower()
    low = [w.lower() for w in words]
    first, rest = low[0], words[1:]
    if low[:4] == ["is", "it", "possible", "to"]:
        return "asking", "whether they can " + " ".join(_swap(words[4:]))
    if first in _WH or low[:2] in (["how", "long"], ["how", "much"], ["how", "many"]):
        return _wh_question(words)
    if first in _DO | _MODAL | _BE:
        return _yes_no(words)
    if first in {"i", "i'd", "i'm", "i've", "im", "we", "our"} or first in _DETERMINERS:
        return _statement(words)
    if first in _REQUESTS or message.strip().lower().startswith("please"):
        return "asking us to", " ".join(_swap([first, *rest]))
    return None  # a fragment ("crypto trading available?"): a more central message, or a quote, says it


def _yes_no(words: list[str]) -> tuple[str, str] | None:
    """Is/can/do ... ? -> whether ..."""
    aux, after = words[0].lower(), words[1:]
    if aux in _BE and after and after[0].lower() == "there":
        return "asking", "whether there " + " ".join([aux, *_swap(after[1:])])
    take = _subject(after)
    subject, predicate = after[:take], after[take:]
    if not predicate:
        return None
    swapped = _swap(subject)
    if aux in _DO:
        verb = predicate[0]
        if aux.startswith("does") and swapped[0] not in {"they", "we"}:
            verb = _third_person(verb)
        negation = ["don't"] if aux.endswith("n't") else []
        return "asking", "whether " + " ".join([*swapped, *negation, verb.lower(), *_swap(predicate[1:])])
    return "asking", "whether " + " ".join([*swapped, _agree(swapped[0], aux), *_swap(predicate)])


def _wh_question(words: list[str]) -> tuple[str, str] | None:
    """How/what/where ... ? -> how to ..., what our opening hours are, where their card is."""
    low = [w.lower() for w in words]
    at = next((i for i, w in enumerate(low) if i > 0 and (w in _DO or w in _MODAL or w in _BE)), None)
    if at is None:  # "what happens to my money", "who owns the bank": already in statement order
        return "asking", " ".join(_swap(words))
    wh, aux, after = _swap(words[:at]), low[at], words[at + 1 :]
    if not after:
        return None
    if wh[0] == "how" and len(wh) == 1 and aux in {"do", "can", "could", "should"} and low[at + 1] == "i":
        return "asking", "how to " + " ".join(_swap(after[1:]))
    take = _subject(after)
    if aux in _BE and not _verb_follows(after[take:]):
        take = len(after)  # "what is the exchange rate for euros" -> "what the exchange rate for euros is"
    subject, predicate = _swap(after[:take]), after[take:]
    if aux in _DO:
        if not predicate or aux in {"don't", "doesn't"}:
            return None
        verb = predicate[0].lower()
        if aux == "does" and subject[0] not in {"they", "we"}:
            verb = _third_person(verb)
        return "asking", " ".join([*wh, *subject, verb, *_swap(predicate[1:])])
    return "asking", " ".join([*wh, *subject, _agree(subject[0], aux), *_swap(predicate)])


def _statement(words: list[str]) -> tuple[str, str] | None:
    """I want/need/would like to ... -> who want to ...; anything else the customer says -> saying ..."""
    low = [w.lower() for w in words]
    if low[0] == "i" and len(low) > 2 and low[1] in {"want", "need", "wish"}:
        return "who", " ".join([low[1], *_swap(words[2:])])
    if low[:3] == ["i", "would", "like"] or low[:2] == ["i'd", "like"]:
        return "who", "would like " + " ".join(_swap(words[3 if low[0] == "i" else 2 :]))
    return "saying", " ".join(_swap(words))


def sentences(message: str) -> list[str]:
    """The sentences of a message ("What do I do? The ATM took my card." is two)."""
    return [part for part in _SENTENCE_END.split(message.strip()) if len(_tokens(part)) >= 2] or [message]


def describe(messages: Sequence[str], telling: Collection[str] = ()) -> str:
    """A description of what the customers of a cluster want, from its most central messages (first): the
    first sentence of them that reads as a request or a report, is short enough to read at a glance and
    holds a `telling` word of the cluster ("What do I do?" says nothing of an ATM that kept a card)."""
    found = [
        (sentence, said)
        for message in messages[:CENTRAL]
        for sentence in sentences(message)
        if len(_tokens(sentence)) <= MAX_DESCRIBED_WORDS and (said := reported(sentence)) is not None
    ]
    says = [said for sentence, said in found if {t.lower() for t in _tokens(sentence)} & set(telling)]
    clauses = says or [said for _, said in found]
    if not clauses:
        quoted = " or ".join(f"“{_clip(sentences(m)[0])}”" for m in messages[:2])
        return f"Customers writing things like {quoted}."
    (lead, clause), others = clauses[0], clauses[1:]
    text = f"Customers {lead} {clause}"
    # a second central message, said the same way and not the same words again, widens the description
    same = [c for other_lead, c in others if other_lead == lead and _content(c) - _content(clause)]
    if same:
        text += f", or {same[0]}"
    return text.rstrip("?.! ") + "."


def _clip(text: str) -> str:
    words = text.strip().rstrip("?.!").split()
    return " ".join(words[:MAX_DESCRIBED_WORDS]) + ("…" if len(words) > MAX_DESCRIBED_WORDS else "")


def _content(text: str) -> set[str]:
    return {w for w in (t.lower() for t in _tokens(text)) if w not in ENGLISH_STOP_WORDS and len(w) > 2}


def _distinctive(members: Sequence[str], background: Sequence[str]) -> dict[str, float]:
    """Each word of the cluster: its share of the cluster's messages times how rare it is among all
    unrouted messages; only words at least two messages share (one message's own words name nothing)."""

    def words(text: str) -> set[str]:
        return {t.lower() for t in _tokens(text)}

    inside = Counter(w for m in members for w in words(m))
    outside = Counter(w for m in background for w in words(m))
    needed = 2 if len(members) > 2 else 1
    return {
        w: (n / len(members)) * math.log((len(background) + 1) / (outside[w] + 1))
        for w, n in inside.items()
        if n >= needed
    }


def key_phrase(message: str, members: Sequence[str], background: Sequence[str]) -> list[str]:
    """The words of `message` that name the cluster, in its own order: from its first to its last
    distinctive word (determiners and pronouns dropped), or those words alone when the stretch is long."""
    scores = _distinctive(members, background)

    def telling(word: str) -> bool:
        plain = word not in ENGLISH_STOP_WORDS and word not in _GENERIC and "'" not in word
        return plain and len(word) > 2 and scores.get(word, 0) > 0

    def phrase(sentence: str) -> tuple[float, list[str]]:
        words = [w.lower() for w in _core(_tokens(sentence))]
        marked = [i for i, w in enumerate(words) if telling(w)]
        if not marked:
            return 0.0, []
        best = sorted(marked, key=lambda i: -scores[words[i]])[:3]
        start, end = min(best), max(best)
        # a preposition stays where it joins two telling words ("insurance for my dog"), not elsewhere
        stretch = [
            w
            for i, w in enumerate(words[start : end + 1], start)
            if telling(w) or (w in _KEEP_IN_NAME and _next_telling(words, i, telling))
        ]
        if len(stretch) > MAX_NAME_WORDS:
            stretch = [words[i] for i in sorted(best)]
        return sum(scores[words[i]] for i in best), [re.sub(r"[^a-z0-9]", "", w) for w in stretch]

    # the sentence of the message that says most about the cluster
    return max((phrase(sentence) for sentence in sentences(message)), key=lambda found: found[0])[1]


def _next_telling(words: list[str], at: int, telling: Callable[[str], bool]) -> bool:
    """Whether the next word after `at` that is not a determiner or a pronoun is a telling one."""
    rest = [w for w in words[at + 1 :] if w not in _DETERMINERS and w not in _SWAP]
    return bool(rest) and telling(rest[0])


def draft(members: Sequence[str], background: Sequence[str], fallback: Sequence[str]) -> Draft:
    """Name and description for a cluster whose `members` are ordered most central first; `background`:
    every unrouted message; `fallback`: keywords to name it by when its central message has none."""
    phrase: list[str] = []
    for message in members[:CENTRAL]:  # the most central message that has a telling phrase
        phrase = key_phrase(message, members, background)
        if phrase:
            break
    name = "_".join(w for w in (phrase or list(fallback)[:3]) if w)[:60].strip("_") or "new_intent"
    telling = [
        w for w in _distinctive(members, background) if w not in ENGLISH_STOP_WORDS and w not in _GENERIC
    ]
    return Draft(name=name, description=describe(members, telling))
