"""Answer templates: compiled and rendered in Jinja2's immutable sandbox.

Templates come from YAML that bot builders edit, so they are treated as untrusted: the sandbox blocks
unsafe calls at render time, and `compile_template` also rejects, at load time, any reference to an
underscore attribute (the `''.__class__.__mro__` family of escapes), so a bad template never goes live.

A template that would fail, or read badly, in front of a customer is refused at load too: an unknown
filter or test, a name other than `message`, `intent` and `metadata` ("Refunds reach you in  days"),
and a `metadata.field` printed without a guard (`{% if metadata.field %}`) or a `default(...)`: widgets
send metadata when they have it, so every field is optional.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jinja2 import TemplateSyntaxError, meta, nodes
from jinja2.exceptions import SecurityError

from bot.content.suggest import did_you_mean
from bot.content.template_budget import LimitError, end_budget, start_budget
from bot.content.template_limits import BoundedSandbox, bound_tree
from bot.content.template_methods import RefusedCall
from bot.content.template_static import check_constants, refused_method
from bot.errors import TemplateError

_ENV = BoundedSandbox(autoescape=False, trim_blocks=True, lstrip_blocks=True)
_MAX_OUTPUT_CHARS = 4000
NAMES = ("message", "intent", "metadata")  # what a template sees (`AnswerTemplate.render`)
_DEFAULT_FILTERS = frozenset({"default", "d"})


def _unsafe_attribute(tree: nodes.Template) -> str | None:
    """The first `_private` attribute or item a template reaches for, if any."""
    for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Filter)):
        if isinstance(node, nodes.Getattr) and node.attr.startswith("_"):
            return node.attr
        if (
            isinstance(node, nodes.Filter)
            and node.name == "attr"
            and node.args
            and isinstance(node.args[0], nodes.Const)
            and str(node.args[0].value).startswith("_")
        ):
            return str(node.args[0].value)
        if (
            isinstance(node, nodes.Getitem)
            and isinstance(node.arg, nodes.Const)
            and isinstance(node.arg.value, str)
            and node.arg.value.startswith("_")
        ):
            return node.arg.value
    return None


def _unknown_filters_and_tests(tree: nodes.Template) -> list[str]:
    """Every filter and test the environment does not have, described once each, with near names."""
    found: dict[str, None] = {}
    for node in tree.find_all((nodes.Filter, nodes.Test)):
        if isinstance(node, nodes.Filter) and node.name not in _ENV.filters:
            found[f"unknown filter '{node.name}'{did_you_mean(node.name, _ENV.filters)}"] = None
        if isinstance(node, nodes.Test) and node.name not in _ENV.tests:
            found[f"unknown test '{node.name}'{did_you_mean(node.name, _ENV.tests)}"] = None
    return [f"{problem}; see Jinja2's built-in filters and tests" for problem in found]


def _metadata_field(node: nodes.Node) -> str | None:
    """`x` when `node` is `metadata.x` or `metadata['x']`."""
    if isinstance(node, nodes.Getattr) and isinstance(node.node, nodes.Name) and node.node.name == "metadata":
        return node.attr
    if (
        isinstance(node, nodes.Getitem)
        and isinstance(node.node, nodes.Name)
        and node.node.name == "metadata"
        and isinstance(node.arg, nodes.Const)
    ):
        return str(node.arg.value)
    return None


def _tested_fields(test: nodes.Node) -> frozenset[str]:
    """The metadata fields an `{% if %}` test (or an inline `if`) looks at."""
    found = (test, *test.find_all((nodes.Getattr, nodes.Getitem)))
    return frozenset(f for n in found if (f := _metadata_field(n)))


def _printed_unguarded(expr: nodes.Node, guarded: frozenset[str]) -> tuple[str, int] | None:
    """A `metadata.field` that this printed expression shows as it is, when nothing guards it."""
    while isinstance(expr, nodes.Filter):
        if expr.name in _DEFAULT_FILTERS:
            return None  # `metadata.x | default('there')` is written to be optional
        if expr.node is None:
            return None
        expr = expr.node
    if isinstance(expr, nodes.CondExpr):  # `metadata.x if metadata.x else 'there'`
        tested = _tested_fields(expr.test)
        for child, scope in ((expr.expr1, guarded | tested), (expr.expr2, guarded)):
            if child is not None and (found := _printed_unguarded(child, scope)) is not None:
                return found
        return None
    if isinstance(expr, nodes.Concat):
        for child in expr.nodes:
            if (found := _printed_unguarded(child, guarded)) is not None:
                return found
        return None
    field = _metadata_field(expr)
    return (field, expr.lineno) if field is not None and field not in guarded else None


def _unguarded_metadata(node: nodes.Node, guarded: frozenset[str] = frozenset()) -> tuple[str, int] | None:
    """The first `metadata.field` printed outside an `{% if %}` that tests it and without `default()`."""
    if isinstance(node, nodes.If):
        tested = _tested_fields(node.test)
        for child in node.body:
            if (found := _unguarded_metadata(child, guarded | tested)) is not None:
                return found
        for child in (*node.elif_, *node.else_):
            if (found := _unguarded_metadata(child, guarded)) is not None:
                return found
        return None
    if isinstance(node, nodes.Output):
        for expr in node.nodes:
            if (found := _printed_unguarded(expr, guarded)) is not None:
                return found
        return None
    for child in node.iter_child_nodes():
        if isinstance(child, nodes.Stmt) and (found := _unguarded_metadata(child, guarded)) is not None:
            return found
    return None


def _any(value: Any, *args: Any, **kwargs: Any) -> Any:
    """A stand-in for a filter or test the template names but the environment lacks (never called)."""
    return value


def _undeclared_names(source: str, tree: nodes.Template) -> set[str]:
    """The names a template reads without setting them. Jinja2's walk stops at the first unknown filter
    or test, so then the source is walked again under an environment that has them all (they are
    reported on their own): one unknown filter does not hide an unknown name."""
    try:
        return meta.find_undeclared_variables(tree)
    except TemplateSyntaxError:
        lenient = _ENV.overlay()
        lenient.filters = {**_ENV.filters, **{n.name: _any for n in tree.find_all(nodes.Filter)}}
        lenient.tests = {**_ENV.tests, **{n.name: _any for n in tree.find_all(nodes.Test)}}
        return meta.find_undeclared_variables(lenient.parse(source))


def _static_problems(source: str, tree: nodes.Template) -> list[TemplateError]:
    """Every mistake a reader fixes without running the template, all at once (`bot check` lists each):
    unknown filters and tests, unknown names, and the first metadata field printed without a guard."""
    problems = [TemplateError(problem) for problem in _unknown_filters_and_tests(tree)]
    for name in sorted(_undeclared_names(source, tree) - set(NAMES)):
        problems.append(
            TemplateError(
                f"unknown name '{name}'{did_you_mean(name, NAMES)}; templates may use {', '.join(NAMES)}"
            )
        )
    unguarded = _unguarded_metadata(tree)
    if unguarded is not None:
        field, line = unguarded
        problems.append(
            TemplateError(
                f"metadata.{field} may be missing: write {{% if metadata.{field} %}}...{{% endif %}} or "
                f"{{{{ metadata.{field} | default('...') }}}}",
                line,
            )
        )
    return problems


class TemplateProblems(TemplateError):
    """Several mistakes in one template: the message has them all, `problems` one error each."""

    def __init__(self, problems: list[TemplateError]) -> None:
        self.problems = tuple(problems)
        super().__init__("; and ".join(p.message for p in problems), problems[0].line)


class AnswerTemplate:
    """A compiled, checked answer template."""

    def __init__(self, source: str) -> None:
        self.source = source
        try:
            tree = _ENV.parse(source)
        except TemplateSyntaxError as exc:
            raise TemplateError(f"template syntax error: {exc.message}", exc.lineno) from None
        except Exception as exc:  # e.g. a 5,000-digit number: Python refuses to read it
            raise TemplateError(f"template syntax error: {_describe(exc)}") from None
        unsafe = _unsafe_attribute(tree)
        if unsafe is not None:
            raise TemplateError(
                f"template reaches for private attribute '{unsafe}'; templates may only use "
                "message, intent, metadata and plain filters"
            )
        problems = _static_problems(source, tree)
        if problems:
            raise TemplateProblems(problems)
        refusal = refused_method(tree)
        if refusal is not None:
            raise TemplateRefusedError(refusal)
        try:
            # loops and `~` are rewritten to be charged to the render budget (template_limits.py)
            tree = bound_tree(tree)
            self._template = _ENV.from_string(tree)
        except TemplateSyntaxError as exc:  # anything else the compiler refuses
            raise TemplateError(f"template error: {exc.message}", exc.lineno) from None
        self._check_at_load(tree)

    def _check_at_load(self, tree: nodes.Template) -> None:
        """Refuse a template that goes over a limit on its constants alone (behind an `{% if %}` too),
        or with no input at all: it would fail every customer who reaches it."""
        try:
            check_constants(_ENV, tree)
        except LimitError as exc:
            raise _limit_error(str(exc)) from None
        except RefusedCall as exc:
            raise TemplateRefusedError(str(exc)) from None
        try:
            self.render(message="", intent="intent", metadata={})
        except (TemplateLimitError, TemplateRefusedError):
            raise
        except TemplateError:
            pass  # other failures with an empty message and no metadata may not happen with real ones

    def render(self, *, message: str, intent: str, metadata: Mapping[str, Any] | None = None) -> str:
        """Render with the customer's message, the intent name and request metadata, all as typed.

        Nothing is HTML-escaped: the answer is plain text (docs/api.md), and the widget and the bot's
        pages show it with `textContent`, so `<` and `&` in a name read as the customer wrote them.

        Any failure, including going over the render budget, is a `TemplateError`: the caller answers
        that one customer another way (the engine hands off), and the other replies of a batch are
        untouched.
        """
        token = start_budget()
        try:
            text = self._template.render(message=message, intent=intent, metadata=metadata or {})
        except LimitError as exc:
            raise _limit_error(str(exc)) from None
        except RefusedCall as exc:
            raise TemplateRefusedError(str(exc)) from None
        except RecursionError:
            raise _limit_error("the template recursed too deep") from None
        except MemoryError:
            raise _limit_error("the template ran out of memory") from None
        except SecurityError as exc:
            raise TemplateError(f"template blocked by the sandbox: {_describe(exc)}") from None
        except Exception as exc:
            # metadata comes from the widget, so a template can meet data of a type it did not expect
            raise TemplateError(f"template failed: {exc.__class__.__name__}: {_describe(exc)}") from None
        finally:
            end_budget(token)
        return text.strip()[:_MAX_OUTPUT_CHARS]


def _describe(exc: BaseException) -> str:
    """An exception's message, cut short: it may quote the template's or the customer's data."""
    text = str(exc)
    return text if len(text) <= 200 else text[:197] + "..."


class TemplateLimitError(TemplateError):
    """A template that went over its render budget (time, memory or recursion)."""


class TemplateRefusedError(TemplateError):
    """A template that calls something templates may not call (a method not on the allow-list)."""


def _limit_error(reason: str) -> TemplateLimitError:
    return TemplateLimitError(f"template exceeds a limit: {reason}")


def compile_template(source: str) -> AnswerTemplate:
    """Compile a template or raise `TemplateError` saying what is wrong and on which template line."""
    return AnswerTemplate(source)
