"""What an answer template may spend, and the checks that charge it: one `Budget` per render.

A value is measured (`weight`: characters plus items, deep, counted only up to the limit) and charged
`1 + weight // CHARS_PER_STEP` steps; formats, the operators that multiply size, the string methods
that build text from a number and the filters are checked before Python allocates their result.
`bot.content.template_limits` is the sandbox that calls these checks at every point a template does work.
"""

from __future__ import annotations

import re
import string
from collections.abc import ItemsView, Iterable, KeysView, ValuesView
from contextvars import ContextVar
from dataclasses import dataclass
from itertools import chain
from typing import Any

from jinja2.runtime import Undefined
from jinja2.utils import Cycler, Joiner, Namespace

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


def _parts(item: Any) -> tuple[int, Iterable[Any] | None]:
    """(own weight, the values inside it to measure too) of one value, as `str()` would show it."""
    if isinstance(item, str):
        return len(item), None
    if isinstance(item, bool | float) or item is None:
        return 1, None
    if isinstance(item, int):
        return 1 + item.bit_length() // 3, None  # about one digit per 3.3 bits
    if isinstance(item, range):
        return len(item), None  # lazy: its numbers are charged where they are used, not for existing
    if isinstance(item, dict):
        return len(item), chain(item.keys(), item.values())
    if isinstance(item, list | tuple | set | frozenset | KeysView | ValuesView | ItemsView):
        return len(item), item
    if isinstance(item, Namespace):  # `namespace(...)` prints its attributes
        return 1, [item._Namespace__attrs]
    if isinstance(item, Cycler):
        return 1, item.items
    if isinstance(item, Joiner):
        return 1, [item.sep]
    if isinstance(item, Undefined):
        return 1, None
    return 64, None  # anything else prints as its repr: `<built-in method upper of str object at 0x...>`


def measure(value: Any, limit: int = MAX_WEIGHT) -> tuple[int, int]:
    """(characters plus items, items) of `value`, nested containers included, counted to just past `limit`.

    A value counts what `str()` makes of it: a number its digits, a namespace or a dict view what is
    in it. Containers may share items (`[a, a, a]` with `a` itself a big list), so the walk stops as
    soon as the count passes `limit`: it never costs more than `limit` visits, however much the value
    would expand.
    """
    if type(value) is str:
        return len(value), 0
    total = items = 0
    stack = [value]
    while stack:
        own, inside = _parts(stack.pop())
        total += own
        if inside is not None:
            items += own
            if total > limit:
                return total, items
            stack.extend(inside)
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


def check_width(number: Any, what: str, limit: int = MAX_WIDTH) -> None:
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
                check_width(int(number), "format width")


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
            check_width(int(number), "format width")


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


def bounded_range(*args: int) -> range:
    """`range` for templates: at most `MAX_RANGE` items."""
    numbers = range(*args)
    if len(numbers) > MAX_RANGE:
        raise LimitError(f"range() of {len(numbers):,} items is over the limit of {MAX_RANGE:,}")
    return numbers  # its items are charged where they are used: each loop item, each filter input
