"""Answer templates: compiled and rendered in Jinja2's immutable sandbox.

Templates come from YAML that bot builders edit, so they are treated as untrusted: the sandbox blocks
unsafe calls at render time, and `compile_template` also rejects, at load time, any reference to an
underscore attribute (the `''.__class__.__mro__` family of escapes), so a bad template never goes live.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jinja2 import TemplateError as JinjaError
from jinja2 import TemplateSyntaxError, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from bot.errors import TemplateError

_ENV = ImmutableSandboxedEnvironment(autoescape=False, trim_blocks=True, lstrip_blocks=True)
_MAX_OUTPUT_CHARS = 4000


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


class AnswerTemplate:
    """A compiled, checked answer template."""

    def __init__(self, source: str) -> None:
        self.source = source
        try:
            tree = _ENV.parse(source)
        except TemplateSyntaxError as exc:
            raise TemplateError(f"template syntax error: {exc.message}", exc.lineno) from None
        unsafe = _unsafe_attribute(tree)
        if unsafe is not None:
            raise TemplateError(
                f"template reaches for private attribute '{unsafe}'; templates may only use "
                "message, intent, metadata and plain filters"
            )
        self._template = _ENV.from_string(tree)

    def render(self, *, message: str, intent: str, metadata: Mapping[str, Any] | None = None) -> str:
        """Render with the customer's message, the intent name and request metadata."""
        try:
            text = self._template.render(message=message, intent=intent, metadata=dict(metadata or {}))
        except SecurityError as exc:
            raise TemplateError(f"template blocked by the sandbox: {exc}") from None
        except (
            JinjaError,
            TypeError,
            ValueError,
            AttributeError,
            KeyError,
            IndexError,
            ArithmeticError,
        ) as exc:
            # metadata comes from the widget, so a template can meet data of a type it did not expect
            raise TemplateError(f"template failed: {exc.__class__.__name__}: {exc}") from None
        return text.strip()[:_MAX_OUTPUT_CHARS]


def compile_template(source: str) -> AnswerTemplate:
    """Compile a template or raise `TemplateError` saying what is wrong and on which template line."""
    return AnswerTemplate(source)
