"""The methods an answer template may call, and how big each one's result can be before it is built.

A template reaches Python methods through values (`message.upper()`, `metadata.get('plan')`), and a
method builds its whole result before anything can measure it: `('a' * 49999).translate({97: 'x' *
49990})` is 2.5 GB in one call. So a template may call only the methods listed in `ALLOWED`, by the kind
of value they belong to; anything else (`encode`, `dict.fromkeys`, `maketrans`, a method of an object
that is not template data) is refused by name, at load when the template spells it out and at render
otherwise. For each allowed method the result is either never much bigger than its inputs (at most
three times: `'ß'.upper()` is `'SS'`), or its size is worked out from the inputs first and the call is
refused when that is over `MAX_WEIGHT` (`estimate_method`). `str.format` and `format_map` go through a
formatter that counts every field as it formats it, and `%` formats one field at a time first
(`check_percent`), so neither ever holds more than the limit plus one field.
"""

from __future__ import annotations

import re
import types
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from jinja2.runtime import LoopContext, Macro, Undefined
from jinja2.sandbox import SandboxedEscapeFormatter, SandboxedFormatter
from jinja2.utils import Cycler, Joiner
from markupsafe import Markup

from bot.content.template_budget import (
    CHARS_PER_STEP,
    MAX_WEIGHT,
    LimitError,
    check,
    check_brace_format,
    check_percent_format,
    check_width,
    current_budget,
    too_big,
    weight,
)

_STR_METHODS = frozenset(
    {
        "capitalize", "casefold", "center", "count", "endswith", "expandtabs", "find", "format",
        "format_map", "index", "isalnum", "isalpha", "isascii", "isdecimal", "isdigit", "isidentifier",
        "islower", "isnumeric", "isprintable", "isspace", "istitle", "isupper", "join", "ljust", "lower",
        "lstrip", "partition", "removeprefix", "removesuffix", "replace", "rfind", "rindex", "rjust",
        "rpartition", "rsplit", "rstrip", "split", "splitlines", "startswith", "strip", "swapcase", "title",
        "translate", "upper", "zfill",
    }
)  # fmt: skip

# what a template may call, by the kind of value the method belongs to (the first kind that matches)
ALLOWED: dict[type, frozenset[str]] = {
    Markup: _STR_METHODS | {"striptags", "unescape"},
    str: _STR_METHODS,
    bool: frozenset(),
    int: frozenset({"bit_length"}),
    float: frozenset({"is_integer"}),
    list: frozenset({"count", "index", "copy"}),
    tuple: frozenset({"count", "index"}),
    dict: frozenset({"get", "items", "keys", "values", "copy"}),
    LoopContext: frozenset({"cycle", "changed"}),  # `loop.cycle('odd', 'even')`
    Cycler: frozenset({"next", "reset"}),
}
ALLOWED_NAMES = frozenset().union(*ALLOWED.values())


class RefusedCall(Exception):
    """A template called something it may not (converted to `TemplateError` by `answers.py`)."""


def allowed_list() -> str:
    """The allowed methods, for an error message."""
    kinds = ("str", "list", "tuple", "dict", "int", "float")
    parts = [f"{kind}: {', '.join(sorted(ALLOWED[_KINDS[kind]]))}" for kind in kinds]
    return "; ".join(parts) + "; loop.cycle, loop.changed"


_KINDS = {kind.__name__: kind for kind in ALLOWED}


def refused(name: str, receiver: Any) -> RefusedCall:
    kind = next((k.__name__ for k in ALLOWED if isinstance(receiver, k)), type(receiver).__name__)
    return RefusedCall(f"templates may not call {kind}.{name}(); they may call {allowed_list()}")


def check_call(obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """Refuse a call to anything but an allowed method, a macro or `loop(...)`, and a `str` method
    whose result would be over the limit; returns the arguments to call with.

    (The environment's globals and its own helpers are let through before this, by identity.)
    """
    if isinstance(obj, Undefined | Macro | LoopContext | Joiner | _BoundedFormat):
        return args  # an undefined name raises its own error when called; a format counts as it goes
    if not isinstance(obj, types.MethodType | types.BuiltinMethodType):
        raise RefusedCall(f"templates may not call a {type(obj).__name__}; they may call {allowed_list()}")
    receiver, name = obj.__self__, obj.__name__
    kind = next((k for k in ALLOWED if isinstance(receiver, k)), None)
    if kind is None or name not in ALLOWED[kind]:
        raise refused(name, receiver)
    if isinstance(receiver, str):
        check(receiver, f"the text {name}() is called on")
        return estimate_method(receiver, name, args, kwargs)
    return args


# -- results worked out before they exist ---------------------------------------------------------


def _translate(text: str, args: tuple[Any, ...]) -> None:
    table = args[0] if args else None
    if not isinstance(table, Mapping):
        raise LimitError("translate() takes a dict of character codes: write {97: 'b'}")
    size = 0
    for char, times in Counter(text).items():
        mapped = table.get(ord(char), char)
        size += times * (len(mapped) if isinstance(mapped, str) else 1)
        if size > MAX_WEIGHT:
            raise too_big("translate()")


def _expandtabs(text: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    size = args[0] if args else kwargs.get("tabsize", 8)
    check_width(size, "tab size")
    if isinstance(size, int) and len(text) + text.count("\t") * max(size, 0) > MAX_WEIGHT:
        raise too_big("expandtabs()")


def estimate_replace(text: str, old: Any, new: Any, count: Any = -1) -> None:
    if not isinstance(old, str) or not isinstance(new, str):
        return
    hits = text.count(old) if old else len(text) + 1
    if isinstance(count, int) and count >= 0:
        hits = min(hits, count)
    if len(text) + hits * max(len(new) - len(old), 0) > MAX_WEIGHT:
        raise too_big("replace()")


def estimate_join(separator: Any, items: list[Any]) -> None:
    """`separator.join(items)`: separators plus items (a number counts its digits), before joining."""
    gaps = len(separator) if isinstance(separator, str) else weight(separator)
    if gaps * max(len(items) - 1, 0) + weight(items) > MAX_WEIGHT:
        raise too_big("join()")


def materialise(items: Any) -> list[Any]:
    """An iterable as a list, refusing one longer than the limit before it is all read."""
    if isinstance(items, list):
        return items
    collected: list[Any] = []
    for item in items:
        collected.append(item)
        if len(collected) > MAX_WEIGHT:
            raise too_big("a sequence")
    return collected


def estimate_method(text: str, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """Refuse a `str` method whose result would be over the limit, before it runs; returns the args
    (an iterator given to `join` is read into a list, once)."""
    first = args[0] if args else None
    if name in ("center", "ljust", "rjust", "zfill"):
        check_width(first if args else kwargs.get("width"), f"{name}() width", MAX_WEIGHT)
    elif name == "expandtabs":
        _expandtabs(text, args, kwargs)
    elif name == "translate":
        _translate(text, args)
    elif name == "replace" and len(args) >= 2:
        estimate_replace(text, args[0], args[1], args[2] if len(args) > 2 else kwargs.get("count", -1))
    elif name == "join" and args:
        items = materialise(first)
        estimate_join(text, items)
        return (items, *args[1:])
    return args


# -- formats: each field counted as it is made -----------------------------------------------------


class _Counting:
    """A formatter mixin that adds up the fields it formats and stops once they pass the limit."""

    total = 0

    def format_field(self, value: Any, format_spec: str) -> Any:
        text = super().format_field(value, format_spec)  # type: ignore[misc]
        self.total += len(text)
        if self.total > MAX_WEIGHT:
            raise too_big("format()")
        return text


class _CountingFormatter(_Counting, SandboxedFormatter):
    pass


class _CountingEscapeFormatter(_Counting, SandboxedEscapeFormatter):
    pass


class _BoundedFormat:
    """What a template gets for `text.format` / `text.format_map`: the sandbox's format, bounded."""

    def __init__(self, env: Any, method: Any) -> None:
        self.env = env
        self.receiver: str = method.__self__
        self.__name__ = method.__name__

    def __call__(self, *args: Any, **kwargs: Any) -> str:
        receiver = self.receiver
        check_brace_format(receiver)
        current_budget().charge(1 + len(receiver) // CHARS_PER_STEP)
        formatter: SandboxedFormatter
        if isinstance(receiver, Markup):
            formatter = _CountingEscapeFormatter(self.env, escape=receiver.escape)
        else:
            formatter = _CountingFormatter(self.env)
        values: Any = kwargs
        if self.__name__ == "format_map":
            if kwargs or len(args) != 1:
                raise TypeError("format_map() takes exactly one argument")
            values = args[0]
            return type(receiver)(formatter.vformat(receiver, (), values))
        return type(receiver)(formatter.vformat(receiver, args, values))


def bounded_str_format(env: Any, method: Any) -> Callable[..., str]:
    """`text.format` or `text.format_map` for a template (see `_BoundedFormat`)."""
    return _BoundedFormat(env, method)


_PERCENT_FIELD = re.compile(r"%(\([^)]*\))?([#0\- +]*(?:\*|\d+)?(?:\.(?:\*|\d+))?[hlL]?)([a-zA-Z%])?")


def check_percent(template: str, values: Any) -> None:
    """`template % values`: each field formatted alone and added up first, refused past the limit.

    A field that cannot be formatted alone (a missing key, too few values) stops the count: Python then
    raises its own error having formatted no more than what was counted.
    """
    check_percent_format(template)
    current_budget().charge(1 + len(template) // CHARS_PER_STEP)
    positional = iter(values if isinstance(values, tuple) else (values,))
    total = len(template)
    for match in _PERCENT_FIELD.finditer(template):
        key, spec, conversion = match.groups()
        if conversion in (None, "%"):
            continue
        try:
            value = values[key[1:-1]] if key else next(positional)
            total += len(f"%{spec}{conversion}" % (value,))
        except Exception:
            return
        if total > MAX_WEIGHT:
            raise too_big("a % format")
