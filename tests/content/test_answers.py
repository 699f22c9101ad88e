"""Answer templates render with message/intent/metadata and cannot reach Python internals."""

from __future__ import annotations

import pytest

from bot.content.answers import compile_template
from bot.errors import TemplateError


def test_renders_metadata_with_graceful_defaults() -> None:
    template = compile_template("{% if metadata.first_name %}Hi {{ metadata.first_name }}! {% endif %}Done.")
    assert template.render(message="m", intent="i") == "Done."
    assert template.render(message="m", intent="i", metadata={"first_name": "Ann"}) == "Hi Ann! Done."


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ message.__class__ }}",
        "{{ metadata['__class__'] }}",
        "{{ message|attr('__class__') }}",
        "{{ cycler.__init__.__globals__ }}",
    ],
)
def test_escapes_are_rejected_at_load_time(source: str) -> None:
    with pytest.raises(TemplateError, match="private attribute"):
        compile_template(source)


def test_sandbox_blocks_what_static_checks_cannot_see() -> None:
    # The attribute name is only known at render time; the sandbox hands back nothing there.
    template = compile_template("[{{ message|attr(metadata.name) }}]")
    assert template.render(message="m", intent="i", metadata={"name": "__class__"}) == "[]"
    # `metadata.pop('x')` is refused at load (not an allowed method); named at render, the sandbox stops it
    calls = compile_template("{{ (metadata | attr(metadata.name))('x') }}")
    with pytest.raises(TemplateError, match="sandbox"):
        calls.render(message="m", intent="i", metadata={"name": "pop", "x": 1})


def test_syntax_error_names_the_template_line() -> None:
    with pytest.raises(TemplateError) as caught:
        compile_template("line one\n{% if %}")
    assert caught.value.line == 2 and "syntax error" in caught.value.message


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("Refunds reach you in {{ days | shout }} days", "unknown filter 'shout'"),
        (
            "Refunds reach you in {{ days }} days",
            "unknown name 'days'; templates may use message, intent, metadata",
        ),
        ("{% if message is shiny %}!{% endif %}", "unknown test 'shiny'"),
        ("Hi {{ metadata.first_name }}!", "metadata.first_name may be missing"),
        ("Hi {{ metadata['first_name'] | title }}!", "metadata.first_name may be missing"),
        ("{{ 'Hi ' ~ metadata.name }}", "metadata.name may be missing"),
        (
            "{% if metadata.a %}{{ metadata.a }}{% else %}{{ metadata.b }}{% endif %}",
            "metadata.b may be missing",
        ),
    ],
)
def test_a_template_that_would_fail_or_read_badly_is_refused_at_load(source: str, problem: str) -> None:
    with pytest.raises(TemplateError, match=problem.replace("[", r"\[")):
        compile_template(source)


@pytest.mark.parametrize(
    "source",
    [
        "{% if metadata.first_name %}Hi {{ metadata.first_name }}!{% else %}Hi!{% endif %}",
        "Hi {{ metadata.first_name | default('there') }}!",
        "Hi {{ metadata.first_name if metadata.first_name else 'there' }}!",
        "{% if metadata.plan and metadata.name %}{{ metadata.name }} on {{ metadata.plan }}{% endif %}",
        "{% set days = 5 %}Refunds reach you in {{ days }} days ({{ intent }}: {{ message | length }})",
        "{% for tag in metadata.tags %}{{ tag }} {% endfor %}",
    ],
)
def test_optional_metadata_written_as_optional_loads_and_renders(source: str) -> None:
    template = compile_template(source)
    assert "  " not in template.render(message="m", intent="i", metadata={})
