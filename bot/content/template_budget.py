"""What an answer template may spend, and the checks that charge it: one `Budget` per render.

A value is measured (`weight`: characters plus items, deep, counted only up to the limit) and charged
`1 + weight // CHARS_PER_STEP` steps; formats, the operators that multiply size, the string methods
that build text from a number and the filters are checked before Python allocates their result.
`bot.content.template_limits` is the sandbox that calls these checks at every point a template does work.
"""

from __future__ import annotations

import functools
import re
import string
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from jinja2.utils import _PassArg

MAX_STEPS = 20_000  # units of work per render: a loop item, a call, an item handled, 64 characters built
MAX_WEIGHT = 50_000  # characters (or items) any one value may hold, counted deep
MAX_DEPTH = 20  # nested calls: macro recursion stops here, far before Python's own limit
MAX_RANGE = 10_000  # items `range()` may produce
MAX_WIDTH = 1_000  # a format width or precision (`'%.3f'`, `'{:>10}'`), an indent, a tab size
MAX_INT_BITS = 4_096  # `**` and `*` on integers: beyond this the arithmetic itself is the cost
CHARS_PER_STEP = 64


class LimitError(Exception):
    """A template went over one of the limits above (converted to `TemplateError` by `answers.py`)."""


@dataclass
class Budget:
    """What one render may still spend."""

    steps: int = MAX_STEPS
    depth: int = 0

    def charge(self, units: int) -> None:
        """Spend `units` steps, or raise once the render has spent them all."""
        self.steps -= units
        if self.steps < 0:
            raise LimitError(
                f"the template does more than {MAX_STEPS:,} steps of work (loop items, calls, text built)"
            )


_BUDGET: ContextVar[Budget | None] = ContextVar("template_budget", default=None)


def start_budget() -> Any:
    """Give the current render a fresh budget; returns the token for `end_budget`."""
    return _BUDGET.set(Budget())


def end_budget(token: Any) -> None:
    """Drop the budget `start_budget` set."""
    _BUDGET.reset(token)


def current_budget() -> Budget:
    budget = _BUDGET.get()
    if budget is None:  # compile-time constant folding: leave the work to render time
        raise LimitError("template work outside a render")
    return budget


def measure(value: Any, limit: int = MAX_WEIGHT) -> tuple[int, int]:
    """(characters plus items, items) of `value`, nested containers included, counted to just past `limit`.

    Containers may share items (`[a, a, a]` with `a` itself a big list), so the walk stops as soon as the
    count passes `limit`: it never costs more than `limit` visits, however much the value would expand.
    """
    if type(value) is str:
        return len(value), 0
    total = items = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item)
        elif isinstance(item, range):
            total += len(item)  # lazy: its numbers are charged where they are used, not for existing
        elif isinstance(item, list | tuple | set | frozenset | dict):
            total += len(item)
            items += len(item)
            if total > limit:
                return total, items
            if isinstance(item, dict):
                stack.extend(item.keys())
                stack.extend(item.values())
            else:
                stack.extend(item)
        else:
            total += 1
        if total > limit:
            return total, items
    return total, items


def weight(value: Any) -> int:
    """Characters plus items of `value`, deep, counted to just past the limit (see `measure`)."""
    return measure(value)[0]


def too_big(what: str) -> LimitError:
    return LimitError(f"{what} would hold more than {MAX_WEIGHT:,} characters or items")


def check(value: Any, what: str = "a value", per_char: bool = False) -> None:
    """Refuse `value` if it is too big; charge the render one step per item (Python handles items one
    by one) and one per 64 characters, or one per character when `per_char` (a filter that walks text
    character by character in Python, like `sort` or `unique`)."""
    size, items = measure(value)
    if size > MAX_WEIGHT:
        raise too_big(what)
    chars = size - items
    current_budget().charge(1 + items + (chars if per_char else chars // CHARS_PER_STEP))


def _check_width(number: Any, what: str, limit: int = MAX_WIDTH) -> None:
    if isinstance(number, int) and number > limit:
        raise LimitError(f"{what} {number:,} is over the limit of {limit:,}")


# -- formats -------------------------------------------------------------------------------------

_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?")
_DIGITS = re.compile(r"\d+")


def check_percent_format(template: str) -> None:
    """Refuse `'%.999999999f'`-style widths before `%` formats with them."""
    for width, precision in _PERCENT_SPEC.findall(template):
        for number in (width, precision):
            if number == "*":
                raise LimitError("'*' widths in % formats are not supported; write the width out")
            if number:
                _check_width(int(number), "format width")


def check_brace_format(template: str) -> None:
    """Refuse `'{:>999999999}'`-style widths (and nested `{}` widths) before `str.format` runs."""
    try:
        fields = list(string.Formatter().parse(template))
    except ValueError:
        return  # str.format raises the same error itself, with its own message
    for _, _, spec, _ in fields:
        if not spec:
            continue
        if "{" in spec:
            raise LimitError("nested '{}' widths in formats are not supported; write the width out")
        for number in _DIGITS.findall(spec):
            _check_width(int(number), "format width")


# -- operators, methods and filters that build big values from small ones ------------------------


def check_repeat(left: Any, right: Any) -> None:
    """`seq * n` or `n * seq`: the result's size is known before it is built."""
    sequence, count = (left, right) if isinstance(right, int) else (right, left)
    if isinstance(count, int) and isinstance(sequence, str | list | tuple):
        if count > 0 and weight(sequence) * count > MAX_WEIGHT:
            raise too_big("repeating a value")
    elif (
        isinstance(left, int)
        and isinstance(right, int)
        and left.bit_length() + right.bit_length() > MAX_INT_BITS
    ):
        raise LimitError(f"a number of more than {MAX_INT_BITS:,} bits")


def check_power(base: Any, exponent: Any) -> None:
    if (
        isinstance(base, int)
        and isinstance(exponent, int)
        and exponent > 0
        and abs(base) > 1
        and base.bit_length() * exponent > MAX_INT_BITS
    ):
        raise LimitError(f"a number of more than {MAX_INT_BITS:,} bits")


def _estimate_replace(text: str, old: Any, new: Any, count: Any = -1) -> None:
    if not isinstance(old, str) or not isinstance(new, str):
        return
    hits = text.count(old) if old else len(text) + 1
    if isinstance(count, int) and count >= 0:
        hits = min(hits, count)
    if len(text) + hits * max(len(new) - len(old), 0) > MAX_WEIGHT:
        raise too_big("replace()")


def _estimate_join(separator: str, items: list[Any]) -> None:
    if len(separator) * max(len(items) - 1, 0) + weight(items) > MAX_WEIGHT:
        raise too_big("join()")


def _materialise(items: Any) -> list[Any]:
    """An iterable as a list, refusing one longer than the limit before it is all read."""
    if isinstance(items, list):
        return items
    collected: list[Any] = []
    for item in items:
        collected.append(item)
        if len(collected) > MAX_WEIGHT:
            raise too_big("a sequence")
    return collected


def check_str_method(text: str, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """Checks for the `str` methods whose result can be far bigger than the string; returns the args."""
    first = args[0] if args else None
    if name in ("center", "ljust", "rjust", "zfill"):
        _check_width(first, f"{name}() width", MAX_WEIGHT)
    elif name == "expandtabs":
        _check_width(first if args else kwargs.get("tabsize"), "tab size")
    elif name == "replace" and len(args) >= 2:
        _estimate_replace(text, args[0], args[1], args[2] if len(args) > 2 else kwargs.get("count", -1))
    elif name == "join" and args:
        items = _materialise(first)
        _estimate_join(text, items)
        return (items, *args[1:])
    return args


def _filter_checks(name: str, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """Checks for the built-in filters whose result can be far bigger than their input; returns the args."""
    first = args[0] if args else None
    if name == "center":
        _check_width(first if args else kwargs.get("width"), "center width", MAX_WEIGHT)
    elif name == "indent":
        width = first if args else kwargs.get("width", 4)
        width_chars = len(width) if isinstance(width, str) else width
        _check_width(width_chars, "indent width")
        lines = value.count("\n") + 1 if isinstance(value, str) else 0
        if isinstance(width_chars, int) and len(str(value)) + lines * max(width_chars, 0) > MAX_WEIGHT:
            raise too_big("indent")
    elif name == "wordwrap" and isinstance(value, str):
        width = first if args else kwargs.get("width", 79)
        wrap = args[2] if len(args) > 2 else kwargs.get("wrapstring") or "\n"
        breaks = len(value) // max(width, 1) + 1 if isinstance(width, int) else 0
        if isinstance(wrap, str) and len(value) + breaks * len(wrap) > MAX_WEIGHT:
            raise too_big("wordwrap")
    elif name == "replace" and isinstance(value, str) and len(args) >= 2:
        _estimate_replace(value, args[0], args[1], args[2] if len(args) > 2 else kwargs.get("count", -1))
    elif name == "format" and isinstance(value, str):
        check_percent_format(value)
    elif name == "batch":
        _check_width(first if args else kwargs.get("linecount"), "batch size", MAX_WEIGHT)
    elif name == "slice":
        _check_width(first if args else kwargs.get("slices"), "slice count")
    elif name == "truncate":
        pass  # never longer than its input plus the ellipsis
    return args


# filters that handle text at C speed; any other filter given text walks it one character at a time
_TEXT_FILTERS = frozenset(
    {
        "abs", "capitalize", "center", "count", "d", "default", "e", "escape", "filesizeformat", "first",
        "float", "forceescape", "format", "indent", "int", "last", "length", "lower", "replace", "round",
        "safe", "string", "striptags", "title", "trim", "truncate", "upper", "urlencode", "wordcount",
    }
)  # fmt: skip


def bounded_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """`func` with its inputs measured, size checks by name, and its result measured."""
    passes = 1 if _PassArg.from_obj(func) is not None else 0  # context/environment come first

    @functools.wraps(func)  # keeps jinja_pass_arg, so Jinja2 still passes the environment
    def bounded(*args: Any, **kwargs: Any) -> Any:
        if len(args) <= passes:
            return func(*args, **kwargs)
        value = args[passes]
        if name == "join" and not isinstance(value, str):
            value = _materialise(value)
            separator = args[passes + 1] if len(args) > passes + 1 else kwargs.get("d", "")
            if isinstance(separator, str) and kwargs.get("attribute") is None and len(args) <= passes + 2:
                _estimate_join(separator, value)
        check(value, f"the input of '{name}'", per_char=name not in _TEXT_FILTERS)
        rest = _filter_checks(name, value, tuple(args[passes + 1 :]), kwargs)
        for argument in (*rest, *kwargs.values()):
            check(argument, f"an argument of '{name}'")
        result = func(*args[:passes], value, *rest, **kwargs)
        check(result, f"the result of '{name}'")
        return result

    return bounded


def bounded_range(*args: int) -> range:
    """`range` for templates: at most `MAX_RANGE` items."""
    numbers = range(*args)
    if len(numbers) > MAX_RANGE:
        raise LimitError(f"range() of {len(numbers):,} items is over the limit of {MAX_RANGE:,}")
    return numbers  # its items are charged where they are used: each loop item, each filter input
