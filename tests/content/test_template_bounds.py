"""Answer templates run under a budget: no template can spin, recurse or allocate without bound.

The unit tests use the template class directly; the end-to-end tests put one hostile template into a
running app and check that the other customers' replies in the same routing batch are untouched.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import bot
from bot.api import create_app
from bot.config import Settings
from bot.content.answers import TemplateLimitError, compile_template
from bot.content.intents import load_intents
from bot.content.template_budget import MAX_STEPS
from bot.errors import IntentFileError, TemplateError
from bot.routing.engine import Engine
from tests.api_support import INTENTS, make_intents
from tests.conftest import write

# Each is refused when the folder loads, because it goes over a limit even with an empty message.
# (Cases whose old behaviour was to allocate gigabytes are left out or made smaller: this suite must be
# safe to run against the old code too.)
REFUSED_AT_LOAD = [
    ("{{ 'x' * 10**11 }}", "repeating a value would hold more than 50,000 characters"),
    ("{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}", "calls nest more than 20 deep"),
    (  # 2**18 calls, never deeper than 18
        "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(18) }}",
        f"more than {MAX_STEPS:,} steps of work",
    ),
    (
        "{% for a in range(300) %}{% for b in range(300) %}{% endfor %}{% endfor %}",
        f"more than {MAX_STEPS:,} steps of work",
    ),
    (  # doubling a string 60 times through a namespace: no operator the sandbox sees, only `~`
        "{% set ns = namespace(s='x') %}{% for i in range(60) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
        "'~' would hold more than 50,000 characters",
    ),
    ("{{ '{:>999999}'.format(1) }}", "format width 999,999 is over the limit of 1,000"),
    ("{{ 'ab' | replace('', 'x' * 40000) }}", "replace() would hold more than 50,000"),
    ("{{ 7 ** 100000 }}", "a number of more than 4,096 bits"),
    (  # nested list literals share items: 10**4 strings of 1,000 characters when printed
        "{% set a = ['x' * 1000] %}{% set b = [a, a, a, a, a, a, a, a, a, a] %}"
        "{% set c = [b, b, b, b, b, b, b, b, b, b] %}{% set d = [c, c, c, c, c, c, c, c, c, c] %}{{ d }}",
        "would hold more than 50,000 characters or items",
    ),
    ("{{ range(10) | batch(1000000, 'x') | list }}", "batch size 1,000,000 is over the limit"),
    ("{{ message.ljust(10**7) }}", "ljust() width 10,000,000 is over the limit of 50,000"),
]


@pytest.mark.parametrize(("source", "reason"), REFUSED_AT_LOAD)
def test_a_template_over_the_limits_is_a_load_error(tmp_path: Path, source: str, reason: str) -> None:
    path = write(
        tmp_path / "cards.yaml",
        f"intents:\n  - name: card_arrival\n    description: Where is my card.\n    answer: {source!r}\n",
    )
    with pytest.raises(IntentFileError) as caught:
        load_intents(tmp_path)
    message = str(caught.value)
    assert message.startswith(f"{path}:4: answer of 'card_arrival': template exceeds a limit: "), message
    assert reason in message


def test_lipsum_is_not_offered() -> None:  # filler text has no place in an answer, and it is a CPU sink
    with pytest.raises(TemplateError, match="unknown name 'lipsum'"):
        compile_template("{{ lipsum(1000) }}")


# These load (with an empty message and no metadata they are harmless) and go over a limit with real ones.
@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("{{ message * 10**10 }}", "repeating a value would hold more than 50,000"),
        ("{% macro f(n) %}{{ f(n) }}{% endmacro %}{% if message %}{{ f(1) }}{% endif %}", "calls nest"),
        (
            "{% for a in message %}{% for b in message %}{% for c in message %}{% endfor %}{% endfor %}"
            "{% endfor %}",
            "steps of work",
        ),
        (
            "{% if metadata.digits %}{{ ('%.' ~ metadata.digits ~ 'f') % 1 }}{% endif %}",
            "format width 999,999,999 is over the limit",
        ),
    ],
)
def test_a_template_over_the_limits_at_render_fails_that_render_only(source: str, reason: str) -> None:
    template = compile_template(source)
    with pytest.raises(TemplateLimitError, match="template exceeds a limit") as caught:
        template.render(message="x" * 40, intent="i", metadata={"digits": 999_999_999})
    assert reason in str(caught.value)
    # the budget is per render: the same template serves the next customer
    assert template.render(message="", intent="i") == ""


def test_printf_width_from_a_constant_stops_the_load_not_the_process(tmp_path: Path) -> None:
    """`{{ '%.999999999f' % 1 }}` used to hang `bot check` in constant folding, then crash it."""
    folder = tmp_path / "intents"
    path = write(
        folder / "cards.yaml",
        "intents:\n  - name: card_arrival\n    description: Where is my card.\n"
        "    answer: \"{{ '%.999999999f' % 1 }}\"\n",
    )
    result = subprocess.run(
        [sys.executable, "-c", "from bot.cli import main; main()", "check", "--syntax-only"],
        capture_output=True,
        text=True,
        env={"BOT_INTENTS_DIR": str(folder), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"},
        timeout=120,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.startswith(f"error: {path}:4: answer of 'card_arrival': template exceeds a limit")
    assert "Traceback" not in result.stderr


def test_constant_folding_at_load_is_bounded() -> None:
    """Jinja2 folds constant expressions when a template compiles; a folded `center(10**8)` cost 400 MB."""
    tracemalloc.start()
    try:
        with pytest.raises(TemplateLimitError, match="center width 100,000,000"):
            compile_template("{{ 'x' | center(100000000) }}")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20_000_000


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{% for w in message.split() %}{{ w | capitalize }} {% endfor %}", "Where Is My Card?"),
        ("{{ '%.2f' % 3.14159 }} {{ '{:>6}'.format('ok') }}", "3.14     ok"),
        ("{% macro hi(n) %}Hi {{ n }}{% endmacro %}{{ hi(intent | replace('_', ' ')) }}", "Hi card arrival"),
        ("{{ range(1, 4) | join(', ') }} {{ [1, 2] * 2 }} {{ 2 ** 10 }}", "1, 2, 3 [1, 2, 1, 2] 1024"),
        ("{{ (message ~ '!') | truncate(9, True, '...', 0) }} {{ 'x' * 3 }}", "where ... xxx"),
        (
            "{% for item in metadata.orders if item %}{{ loop.index }}. {{ item.id }}\n{% endfor %}",
            "1. A1\n2. B2",
        ),
    ],
)
def test_ordinary_templates_render_as_before(source: str, expected: str) -> None:
    metadata = {"orders": [{"id": "A1"}, {"id": "B2"}]}
    assert compile_template(source).render(
        message="where is my card?", intent="card_arrival", metadata=metadata
    ) == (expected)


def test_message_and_metadata_are_filled_in_as_typed() -> None:
    """The rule (docs/api.md, docs/security.md): an answer is plain text, so neither the customer's
    message nor metadata is HTML-escaped; the widget shows answers with textContent, never as HTML."""
    template = compile_template(
        "You wrote {{ message }}. Hi {{ metadata.first_name | default('there') }}"
        "{% if metadata.tags %}, about {{ metadata.tags[0] }}{% endif %}"
    )
    answer = template.render(
        message="<b>card</b> & co",
        intent="i",
        metadata={"first_name": "<img src=x onerror=alert(1)>", "tags": ["<b>card</b>"]},
    )
    assert answer == "You wrote <b>card</b> & co. Hi <img src=x onerror=alert(1)>, about <b>card</b>"
    widget = (Path(bot.__file__).parent / "web" / "widget" / "widget.js").read_text(encoding="utf-8")
    assert "innerHTML" not in widget and "insertAdjacentHTML" not in widget and "outerHTML" not in widget
    assert 'el("div", { class: "bubble", text: message.text })' in widget  # bubbles are textContent
    api = (Path(bot.__file__).parent.parent / "docs" / "api.md").read_text(encoding="utf-8")
    assert "neither the message nor metadata is escaped" in api


# -- every way of building a big value (issue #28, item 1) ------------------------------------------
# Each builds 10 to 40 MB in one step under the old code (small enough to run there, and fail), where the
# size was only measured once the value existed; now each is refused from its inputs, before it exists.
BUILDERS = [
    ("('a' * 5000).translate({97: 'x' * 5000})", "translate() would hold more than 50,000"),
    ("('a' * 5000)['translate']({97: 'x' * 5000})", "translate() would hold more than 50,000"),
    ("('{0}' * 5000).format('x' * 5000)", "format() would hold more than 50,000"),
    ("('{a}' * 5000).format_map({'a': 'x' * 5000})", "format() would hold more than 50,000"),
    ("('%(a)s' * 5000) % {'a': 'x' * 5000}", "a % format would hold more than 50,000"),
    ("('%(a)s' * 5000) | format(a='x' * 5000)", "a % format would hold more than 50,000"),
    ("('\\t' * 40000).expandtabs(1000)", "expandtabs() would hold more than 50,000"),
    ("('a' * 5000) | join('x' * 5000)", "join() would hold more than 50,000"),
    ("range(5000) | join('x' * 5000, attribute='real')", "join() would hold more than 50,000"),
    ("('a.com ' * 500) | urlize(target='x' * 40000)", "urlize would hold more than 50,000"),
    ("range(2000) | list | tojson(indent=5000)", "tojson indent 5,000 is over the limit of 8"),
    ("[namespace(s='x' * 40000)] * 1000", "repeating a value would hold more than 50,000"),
    ("[dict(a='x' * 40000).items()] * 1000", "repeating a value would hold more than 50,000"),
    ("([7 ** 1300] * 4000) | join", "repeating a value would hold more than 50,000"),
    ("'x'.encode()", "templates may not call .encode()"),
    ("dict.fromkeys(range(9000), 'x')", "templates may not call .fromkeys()"),
]
GATED = "{%% if metadata.go %%}{{ %s }}{%% endif %%}ok"


def _refused_cheaply(source: str) -> str:
    """The error compiling `source` raises; it must come in well under a second, having allocated < 2 MB."""
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(TemplateError) as caught:
            compile_template(source)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - started < 0.5
    assert peak < 2_000_000, f"{peak:,} bytes"
    return str(caught.value)


@pytest.mark.parametrize(("expression", "reason"), BUILDERS)
def test_a_value_too_big_to_build_is_refused_at_load_before_it_exists(expression: str, reason: str) -> None:
    assert reason in _refused_cheaply(f"{{{{ {expression} }}}}")
    # behind a metadata gate no load-time render reaches it: it is refused because its inputs are constants
    assert reason in _refused_cheaply(GATED % expression)


def test_the_issue_repros_are_refused_at_load() -> None:
    translate = "{% if metadata.go %}{{ ('a'*49999).translate({97: 'x'*49990}) }}{% endif %}ok"
    assert "translate() would hold more than 50,000" in _refused_cheaply(translate)
    assert "format() would hold more than 50,000" in _refused_cheaply(
        GATED % "('{0}'*16666).format('x'*49999)"
    )


# inputs that only the customer's metadata supplies: these load, and the render that meets them fails alone
AT_RENDER = [
    ("(metadata.a * metadata.n).translate({97: metadata.b * metadata.n})", "translate() would hold"),
    ("('{0}' * metadata.n).format(metadata.b * metadata.n)", "format() would hold"),
    ("('{x}' * metadata.n).format_map({'x': metadata.b * metadata.n})", "format() would hold"),
    ("('%(x)s' * metadata.n) % {'x': metadata.b * metadata.n}", "a % format would hold"),
    ("('%s' * 2) | format(metadata.b * metadata.n, metadata.b * 49000)", "a % format would hold"),
    ("(metadata.b * metadata.n).replace(metadata.b, metadata.a * metadata.n)", "replace() would hold"),
    ("(metadata.t * 40000).expandtabs(metadata.w)", "expandtabs() would hold"),
    ("(metadata.b * metadata.n).join(metadata.a * metadata.n)", "join() would hold"),
    ("(metadata.a * metadata.n) | join(metadata.b * metadata.n)", "join() would hold"),
    ("[metadata.n] | tojson(indent=metadata.w)", "tojson indent 1,000 is over the limit"),
    ("(metadata.b | attr(metadata.m))(metadata.a)", "templates may not call str.encode()"),
]
RENDER_METADATA = {"go": True, "a": "a", "b": "x", "t": "\t", "n": 5000, "w": 1000, "m": "encode"}


@pytest.mark.parametrize(("expression", "reason"), AT_RENDER)
def test_a_value_too_big_to_build_fails_the_render_that_meets_it(expression: str, reason: str) -> None:
    template = compile_template(GATED % expression)  # loads: every input is the customer's
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(TemplateError) as caught:
            template.render(message="hi", intent="i", metadata=RENDER_METADATA)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - started < 0.5
    assert peak < 2_000_000, f"{peak:,} bytes"
    assert reason in str(caught.value)
    assert template.render(message="hi", intent="i", metadata={}) == "ok"  # the next customer is served


@pytest.mark.parametrize(
    "source",
    [
        "{{ message.upper() }} {{ message.split() | length }} {{ message.replace('a', 'o') }}",
        "{{ '{:>6}|{}'.format('ok', intent) }} {{ '{x}'.format_map({'x': 1}) }} {{ '%s/%d' % ('a', 2) }}",
        "{% for k, v in metadata.items() %}{{ k }}={{ v }}{{ loop.cycle(',', ';') }}{% endfor %}",
        "{{ metadata.get('plan', 'basic') }} {{ ('a\tb').expandtabs(4) }} {{ 'abc'.translate({97: 'A'}) }}",
        "{% set c = cycler('x', 'y') %}{{ c.next() }}{{ c.next() }} {{ 'ab' | join('-') }} {{ 7 | string }}",
    ],
)
def test_the_allowed_methods_still_work(source: str) -> None:
    assert compile_template(source).render(message="a card", intent="i", metadata={"plan": "pro"})


# -- end to end: one hostile template, many customers -------------------------------------------------

HOSTILE = "{% macro f(n) %}{{ f(n) }}{% endmacro %}{% if message %}{{ f(1) }}{% endif %}"


@pytest.fixture()
def hostile_app(tmp_path: Path, bundled_encoder, cache_dir: Path) -> Iterator[TestClient]:
    """The small API intent set where `exchange_rate`'s answer recurses whenever a customer writes."""
    folder = make_intents(tmp_path / "intents")
    write(
        folder / "bank.yaml", INTENTS.replace('answer: "We use the interbank rate."', f"answer: {HOSTILE!r}")
    )
    config = Settings(
        intents_dir=folder,
        cache_dir=cache_dir,
        database_url=f"sqlite:///{tmp_path / 'bot.db'}",
        api_keys="analyst:n-key,admin:root-key,widget:w-key",
        batch_wait_ms=100.0,  # long enough that concurrent requests share a routing batch
        rate_limit_per_ip="",
        rate_limit_per_key="",
    )
    engine = Engine(config, encoder=bundled_encoder)
    engine.load()
    with TestClient(create_app(config, engine=engine)) as client:
        yield client


INNOCENT = ["Where is my new card?", "How long does card delivery take?", "I lost my card"]


def test_a_hostile_template_fails_only_its_own_decision_in_batch_routing(hostile_app: TestClient) -> None:
    response = hostile_app.post(
        "/v1/route",
        json={"messages": [INNOCENT[0], "Which exchange rate do you use for foreign currency?", INNOCENT[1]]},
        headers={"Authorization": "Bearer n-key"},
    )
    assert response.status_code == 200, response.text
    first, hostile, last = response.json()["decisions"]
    assert (first["intent"], first["route"]) == ("card_arrival", "answer")
    assert first["answer"].startswith("Cards arrive in 3-5 working days")
    assert last["answer"] == "Delivery takes 3-5 working days."
    assert hostile["intent"] == "exchange_rate" and hostile["route"] == "handoff"
    assert "template exceeds a limit: calls nest more than 20 deep" in hostile["reason"]


def test_innocent_chats_in_the_same_batch_as_a_hostile_template_succeed(
    hostile_app: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    widget = {"Authorization": "Bearer w-key"}
    texts = [*INNOCENT * 3, "Which exchange rate do you use for foreign currency?"]
    replies: dict[int, dict[str, object]] = {}
    start = threading.Barrier(len(texts))

    def chat(position: int, text: str) -> None:
        start.wait()
        response = hostile_app.post("/v1/chat", json={"message": text}, headers=widget)
        replies[position] = {"status": response.status_code, **response.json()}

    with caplog.at_level("WARNING", logger="bot.routing.engine"):
        threads = [threading.Thread(target=chat, args=item) for item in enumerate(texts)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    assert sorted(replies) == list(range(len(texts)))
    assert all(reply["status"] == 200 for reply in replies.values()), replies
    hostile = replies[len(texts) - 1]
    assert hostile["route"] == "handoff" and hostile["intent"] == "exchange_rate"
    assert hostile["answer"] == Settings().handoff_message  # the customer reads a safe line
    assert [replies[i]["intent"] for i in range(len(INNOCENT))] == [
        "card_arrival",
        "card_delivery_estimate",
        "lost_or_stolen_card",
    ]
    assert any("answer template of 'exchange_rate' failed" in r.getMessage() for r in caplog.records)
    # the messages were routed together: without the fix, the hostile reply failed this whole batch
    assert hostile_app.get("/healthz").json()["queues"]["routing"]["largest_batch"] > 1
