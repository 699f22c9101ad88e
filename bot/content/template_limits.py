"""A Jinja2 sandbox with a budget: an answer template cannot spin, recurse or allocate without bound.

Bot builders write answer templates, so a template is untrusted code that runs on the routing threads.
Jinja2's sandbox stops it reaching Python internals but not from doing too much: two nested loops over
`'x' * 100000` never end, `'x' * 10**11` or `'%.999999999f' % 1` allocate gigabytes, and a macro that
calls itself recurses until Python gives up. `BoundedSandbox` puts every way a template does work under
one budget per render (`Budget`, in `template_budget.py` with every check), charged where Jinja2 already lets an environment step in:

- every `{% for %}` iterates through `bounded_iter` (the loop is rewritten when the template compiles,
  `bound_tree`), one step per item, and so do recursive `loop(...)` calls;
- every call (macros, methods, `range`) goes through `call`: one step, a depth limit against recursion,
  and checks on the string methods that build text from a number (`center`, `ljust`, `replace`, ...);
- the operators that multiply size (`*`, `**`, `+`, `%`) go through `call_binop` and are checked
  *before* Python allocates the result; `~` is rewritten to `bounded_concat`;
- every filter is wrapped the same way (`'x' | center(10**9)` is refused before it runs);
- every printed value passes `finalize`, and every buffer Jinja2 joins (a macro body, a `{% set %}`
  block, the whole answer) passes `concat`, so output is bounded even when made of literal text.

Each value that crosses one of these points is measured (`weight`: characters plus items, deep, counted
only up to the limit) and charged `1 + weight // CHARS_PER_STEP` steps, so work and memory are bounded
together. A normal answer template spends a few dozen steps; the checks cost microseconds per reply.

Outside a render (no budget set) every checked operation refuses: that is what keeps Jinja2's constant
folding at load time from computing `{{ 'x' | center(100000000) }}`: the fold fails and the expression
is left for render time, where the budget applies.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from jinja2 import nodes
from jinja2.runtime import LoopContext
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Cycler, Joiner, Namespace
from jinja2.visitor import NodeTransformer

from bot.content.template_budget import (
    CHARS_PER_STEP,
    MAX_DEPTH,
    MAX_WEIGHT,
    LimitError,
    bounded_range,
    check,
    check_power,
    check_repeat,
    current_budget,
    too_big,
    weight,
)
from bot.content.template_filters import bounded_filter
from bot.content.template_methods import bounded_str_format, check_call, check_percent

# -- the environment ------------------------------------------------------------------------------


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """Jinja2's immutable sandbox with every loop, call, operator, filter and output charged to a budget."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, **options: Any) -> None:
        super().__init__(finalize=_finalize, **options)
        # no `lipsum` (an answer has no use for filler text, and it is a CPU sink)
        self.globals = {
            "range": bounded_range,
            "dict": dict,
            "cycler": Cycler,
            "joiner": Joiner,
            "namespace": Namespace,
        }
        self.filters = {name: bounded_filter(name, f) for name, f in self.filters.items()}
        # what a template may call besides the allowed methods (`check_call`): the globals, and the
        # helpers `bound_tree` puts in for loops and `~`
        self._own_callables = (
            *self.globals.values(),
            BoundedSandbox.bounded_iter,
            BoundedSandbox.bounded_concat,
        )

    # every buffer Jinja2 joins (the answer, a macro body, a {% set %} block) is bounded as it is read
    @staticmethod
    def concat(parts: Iterable[str]) -> str:
        """Join output parts, refusing once they pass the size limit (before joining them)."""
        collected: list[str] = []
        total = 0
        for part in parts:
            total += len(part)
            if total > MAX_WEIGHT:
                raise too_big("the template's output")
            collected.append(part)
        return "".join(collected)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        """`*`, `**`, `+` and `%`, refused when the result would be too big, then measured."""
        if operator == "*":
            check_repeat(left, right)
        elif operator == "**":
            check_power(left, right)
        elif operator == "+":
            if weight(left) + weight(right) > MAX_WEIGHT:
                raise too_big("'+'")
        elif operator == "%" and isinstance(left, str):
            check(right, "a % format argument")
            check_percent(left, right)
        result = self.binop_table[operator](left, right)
        check(result, f"the result of '{operator}'")
        return result

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """`text.format` and `text.format_map` as the sandbox gives them, counting what they build."""
        if super().wrap_str_format(value) is None:
            return None
        return bounded_str_format(self, value)

    def call(self, context: Any, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        """A call from a template: allowed by name, charged, depth-limited, its arguments and result
        measured, and for the methods that can build more than they are given, estimated first."""
        budget = current_budget()
        budget.charge(1)
        for argument in (*args, *kwargs.values()):
            check(argument, "a call argument")
        if not any(obj is own for own in self._own_callables):
            args = check_call(obj, args, kwargs)
        if isinstance(obj, LoopContext) and args:  # `loop(children)` in a recursive loop
            args = (bounded_iter(args[0]), *args[1:])
        budget.depth += 1
        try:
            if budget.depth > MAX_DEPTH:
                raise LimitError(f"calls nest more than {MAX_DEPTH} deep (a macro that calls itself?)")
            result = super().call(context, obj, *args, **kwargs)
        finally:
            budget.depth -= 1
        check(result, "a call's result")
        return result

    @staticmethod
    def bounded_iter(items: Iterable[Any]) -> Iterator[Any]:
        """What every `{% for %}` loops over: the items, one step each."""
        return bounded_iter(items)

    @staticmethod
    def bounded_concat(*parts: Any) -> str:
        """`a ~ b ~ c`, refused before joining when too long."""
        texts = [part if type(part) is str else str(part) for part in parts]
        if sum(len(t) for t in texts) > MAX_WEIGHT:
            raise too_big("'~'")
        result = "".join(texts)
        current_budget().charge(1 + len(result) // CHARS_PER_STEP)
        return result


def bounded_iter(items: Iterable[Any]) -> Iterator[Any]:
    """Yield `items`, charging one step each."""
    budget = current_budget()
    for item in items:
        budget.charge(1)
        yield item


def _finalize(value: Any) -> Any:
    """Every printed `{{ ... }}` value: measured and charged before it becomes text."""
    check(value, "a printed value")
    return value


class _BoundLoopsAndConcat(NodeTransformer):
    """Route `{% for %}` items through `bounded_iter` and `~` through `bounded_concat`."""

    def _call(self, name: str, args: list[Any], lineno: int) -> nodes.Call:
        call = nodes.Call(nodes.EnvironmentAttribute(name), args, [], None, None)
        call.set_lineno(lineno)
        return call

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = self._call("bounded_iter", [node.iter], node.lineno)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return self._call("bounded_concat", list(node.nodes), node.lineno)


def bound_tree(tree: nodes.Template) -> nodes.Template:
    """Rewrite a parsed template so its loops and `~` are charged (done once, when it compiles)."""
    result = _BoundLoopsAndConcat().visit(tree)
    assert isinstance(result, nodes.Template)
    return result
