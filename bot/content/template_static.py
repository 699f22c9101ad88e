"""What can be seen of a template's cost when it loads, before any customer reaches it.

Two checks on the parsed template, both run by `AnswerTemplate` when the intents folder loads (`bot
check`, `bot serve`, a reload), so a bad template never goes live:

- `refused_method`: a call to a method that is not on the allow-list (`.encode()`, `.fromkeys()`) is
  refused by name, wherever it is, even inside an `{% if metadata.x %}` no load-time render reaches;
- `check_constants`: every expression that does work and reads no input (no `message`, `intent`,
  `metadata`, loop variable or macro argument) is evaluated once, alone, under a fresh render budget,
  so `{% if metadata.go %}{{ ('a' * 49999).translate({97: 'x' * 49990}) }}{% endif %}` is refused at
  load by the same checks that would refuse it at render, without building anything big.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from jinja2 import nodes

from bot.content.template_budget import LimitError, end_budget, start_budget
from bot.content.template_methods import ALLOWED_NAMES, RefusedCall, allowed_list

# the node types that can do work (other expressions only read what these made)
_WORK = (nodes.Call, nodes.Filter, nodes.Test, nodes.Mul, nodes.Mod, nodes.Pow, nodes.Add, nodes.Concat)


def refused_method(tree: nodes.Template) -> str | None:
    """An error message for the first call to a method templates may not call, if any."""
    for call in tree.find_all(nodes.Call):
        callee = call.node
        name = None
        if isinstance(callee, nodes.Getattr):
            name = callee.attr
        elif isinstance(callee, nodes.Getitem) and isinstance(callee.arg, nodes.Const):
            name = callee.arg.value if isinstance(callee.arg.value, str) else None
        if name is not None and name not in ALLOWED_NAMES:
            return f"templates may not call .{name}() (line {call.lineno}); they may call {allowed_list()}"
    return None


def _closed(expr: nodes.Expr, globals_: frozenset[str]) -> bool:
    """Whether `expr` reads nothing but constants and the environment's globals (`range`, `dict`...)."""
    if isinstance(expr, nodes.Name):
        return False
    return all(name.name in globals_ for name in expr.find_all(nodes.Name))


def _does_work(expr: nodes.Expr) -> bool:
    return isinstance(expr, _WORK) or next(iter(expr.find_all(_WORK)), None) is not None


def _constant_work(node: nodes.Node, globals_: frozenset[str]) -> Iterator[nodes.Expr]:
    """The largest expressions under `node` that do work on constants only."""
    for child in node.iter_child_nodes():
        if isinstance(child, nodes.Expr) and _closed(child, globals_) and _does_work(child):
            yield child
        else:
            yield from _constant_work(child, globals_)


def _evaluate(env: Any, expr: nodes.Expr) -> None:
    """Print `expr` alone under a fresh budget; raise `LimitError` or `RefusedCall` if it goes over."""
    template = nodes.Template([nodes.Output([expr], lineno=expr.lineno)], lineno=expr.lineno)
    template.set_environment(env)
    try:
        compiled = env.from_string(template)
    except Exception:  # an expression that only compiles in its place (a `{% filter %}` block's filter)
        return
    token = start_budget()
    try:
        compiled.render()
    except (LimitError, RefusedCall):
        raise
    except RecursionError:
        raise LimitError("the template recursed too deep") from None
    except Exception:
        pass  # other errors may depend on where the expression stands; the render reports them
    finally:
        end_budget(token)


def check_constants(env: Any, tree: nodes.Template) -> None:
    """Evaluate each expression of `tree` that works on constants only; see the module docstring."""
    globals_ = frozenset(env.globals)
    for expr in _constant_work(tree, globals_):
        _evaluate(env, expr)
