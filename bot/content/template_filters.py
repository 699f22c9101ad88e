"""Jinja2's built-in filters, each wrapped so its result is bounded before it is built.

Every filter's input and arguments are measured and charged (`check`), and its result is measured
after. That is enough for the filters whose result is never much bigger than their input (`upper`,
`escape`, `list`, `sort`...: at most a few times, and the input is at most `MAX_WEIGHT`). For the ones
whose result grows with an argument (`center(10**9)`, `join('x' * 40000)`, `format`, `indent`,
`wordwrap`, `replace`, `urlize(target=...)`, `tojson(indent=...)`, `pprint`, `batch`, `slice`) the size
is worked out from the inputs first (`_filter_checks`) and the call refused when it is over the limit.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from jinja2.utils import _PassArg

from bot.content.template_budget import MAX_WEIGHT, check, check_width, measure, too_big
from bot.content.template_methods import check_percent, estimate_join, estimate_replace, materialise


def _depth(value: Any) -> int:
    """How deeply containers nest in `value` (the input is already measured, so this walk is bounded)."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            item = [*item.keys(), *item.values()]
        if isinstance(item, list | tuple | set | frozenset):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in item)
    return deepest


def _check_layout(name: str, value: Any, indent: Any) -> None:
    """`tojson(indent=...)` and `pprint` put each item on a line indented by its depth: that part of
    the result is worked out first (the rest is a few characters per character of input)."""
    chars = len(indent) if isinstance(indent, str) else indent if isinstance(indent, int) else 1
    check_width(chars, f"{name} indent", 8)
    size, items = measure(value)
    if (items + size // 60 + 1) * _depth(value) * max(chars, 1) > MAX_WEIGHT:
        raise too_big(name)


def _check_wordwrap(value: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    width = args[0] if args else kwargs.get("width", 79)
    wrap = args[2] if len(args) > 2 else kwargs.get("wrapstring") or "\n"
    if not isinstance(width, int) or not isinstance(wrap, str):
        return
    # a line and the word after it are longer than `width`, so there are at most 2n/width breaks
    breaks = 2 * len(value) // max(width, 1) + value.count("\n") + 2
    if len(value) + breaks * len(wrap) > MAX_WEIGHT:
        raise too_big("wordwrap")


def _check_indent(value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    width = args[0] if args else kwargs.get("width", 4)
    width_chars = len(width) if isinstance(width, str) else width
    check_width(width_chars, "indent width")
    lines = value.count("\n") + 1 if isinstance(value, str) else 0
    if isinstance(width_chars, int) and len(str(value)) + lines * max(width_chars, 0) > MAX_WEIGHT:
        raise too_big("indent")


def _check_urlize(value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Each word may become a link carrying `target` and `rel`, with the URL escaped twice over."""
    text = str(value)
    extra = sum(len(a) for a in (*args, *kwargs.values()) if isinstance(a, str))
    if 10 * len(text) + (len(text.split()) + 1) * (extra + 80) > MAX_WEIGHT:
        raise too_big("urlize")


def _check_join(value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    items = list(value) if isinstance(value, str) else materialise(value)
    estimate_join(args[0] if args else kwargs.get("d", ""), items)
    return value if isinstance(value, str) else items


def _filter_checks(name: str, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Checks for the built-in filters whose result can be far bigger than their input."""
    first = args[0] if args else None
    if name == "center":
        check_width(first if args else kwargs.get("width"), "center width", MAX_WEIGHT)
    elif name == "indent":
        _check_indent(value, args, kwargs)
    elif name == "wordwrap" and isinstance(value, str):
        _check_wordwrap(value, args, kwargs)
    elif name == "replace" and isinstance(value, str) and len(args) >= 2:
        estimate_replace(value, args[0], args[1], args[2] if len(args) > 2 else kwargs.get("count", -1))
    elif name == "format":
        if args and kwargs:
            raise TypeError("can't handle positional and keyword arguments at the same time")
        check_percent(str(value), kwargs or args)
    elif name == "batch":
        check_width(first if args else kwargs.get("linecount"), "batch size", MAX_WEIGHT)
    elif name == "slice":
        check_width(first if args else kwargs.get("slices"), "slice count")
    elif name == "urlize":
        _check_urlize(value, args, kwargs)
    elif name == "pprint" or (name == "tojson" and (args or kwargs.get("indent") is not None)):
        _check_layout(name, value, first if args else kwargs.get("indent"))


# filters that handle text at C speed; any other filter given text walks it one character at a time
_TEXT_FILTERS = frozenset(
    {
        "abs", "capitalize", "center", "count", "d", "default", "e", "escape", "filesizeformat", "first",
        "float", "forceescape", "format", "indent", "int", "join", "last", "length", "lower", "replace",
        "round", "safe", "string", "striptags", "title", "trim", "truncate", "upper", "urlencode",
        "wordcount",
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
        rest = tuple(args[passes + 1 :])
        check(value, f"the input of '{name}'", per_char=name not in _TEXT_FILTERS)
        for argument in (*rest, *kwargs.values()):
            check(argument, f"an argument of '{name}'")
        if name == "join":
            value = _check_join(value, rest, kwargs)
        _filter_checks(name, value, rest, kwargs)
        result = func(*args[:passes], value, *rest, **kwargs)
        check(result, f"the result of '{name}'")
        return result

    return bounded
