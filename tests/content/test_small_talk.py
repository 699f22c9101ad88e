"""Built-in small talk (#27 item 5): a folder without greeting, thanks, goodbye or a way to a person gets
them, unless it has its own or switches them off, and `bot check` says which it uses."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bot.cli.intents import check
from bot.content.intents import load_intents
from bot.content.small_talk import BUILT_IN_NAMES, is_built_in
from bot.errors import IntentFileError
from tests.conftest import INTENTS, write
from tests.shop_support import SHOP, shop_engine

HELLO = "  - name: hello\n    description: The customer greets the shop.\n    answer: Hi!\n"


def shop_copy(tmp_path: Path, **files: str) -> Path:
    """The shop folder with extra files (name -> YAML text)."""
    folder = tmp_path / "shop"
    shutil.copytree(SHOP, folder)
    for name, text in files.items():
        write(folder / name, text)
    return folder


def built_ins(folder: Path) -> list[str]:
    return [i.name for i in load_intents(folder).intents if is_built_in(i)]


def test_a_shop_without_small_talk_routes_it_to_the_built_ins(bundled_encoder, cache_dir) -> None:
    engine = shop_engine(bundled_encoder, cache_dir)
    routed = {text: engine.route(text) for text in ("thanks", "bye", "hello", "can I talk to a person")}
    assert {text: (d.route, d.intent) for text, d in routed.items()} == {
        "thanks": ("answer", "thanks"),
        "bye": ("answer", "goodbye"),
        "hello": ("answer", "greeting"),
        "can I talk to a person": ("handoff", "human_agent"),  # asking for a person always hands off
    }
    assert "welcome" in routed["thanks"].answer and "Goodbye" in routed["bye"].answer
    # the shop's own questions still reach the shop's intents
    assert engine.route("Where is my order?").intent == "order_status"


def test_the_folder_s_own_intents_or_its_setting_replace_the_built_ins(tmp_path: Path) -> None:
    assert built_ins(SHOP) == list(BUILT_IN_NAMES)
    # the demo bank has all four in basics.yaml: it keeps them and gets none added
    demo = load_intents(INTENTS)
    assert not any(is_built_in(i) for i in demo.intents) and demo.get("thanks").path.name == "basics.yaml"
    thanks = (
        "intents:\n  - name: thanks\n    description: The customer thanks the shop.\n    answer: Any time!\n"
    )
    assert built_ins(shop_copy(tmp_path / "a", **{"mine.yaml": thanks})) == [
        "greeting",
        "goodbye",
        "human_agent",
    ]
    mapped = "small_talk:\n  greeting: hello\n  human_agent: false\nintents:\n" + HELLO
    folder = shop_copy(tmp_path / "b", **{"mine.yaml": mapped})
    assert built_ins(folder) == ["thanks", "goodbye"]
    small_talk = load_intents(folder).small_talk
    assert small_talk is not None and small_talk.replaced == {"greeting": "hello"}
    assert small_talk.off == ("human_agent",)
    assert built_ins(shop_copy(tmp_path / "c", **{"settings.yaml": "small_talk: false\n"})) == []


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (
            {"s.yaml": "small_talk:\n  thank: false\n"},
            r"s.yaml:2: 'small_talk': no built-in 'thank' \(did you mean 'thanks'\?\)",
        ),
        (
            {"s.yaml": "small_talk:\n  greeting: hello\n"},
            r"s.yaml:2: 'small_talk.greeting' names 'hello', which is no intent",
        ),
        ({"s.yaml": "small_talk: sometimes\n"}, r"s.yaml:1: 'small_talk' must be true, false or a mapping"),
        (
            {"s.yaml": "small_talk: false\n", "t.yaml": "small_talk: true\n"},
            r"t.yaml:1: 'small_talk' is set twice; first at .*s.yaml:1",
        ),
    ],
)
def test_a_wrong_small_talk_setting_says_where_and_why(
    tmp_path: Path, files: dict[str, str], message: str
) -> None:
    with pytest.raises(IntentFileError, match=message):
        load_intents(shop_copy(tmp_path, **files))


def test_bot_check_names_the_built_ins_in_use_replaced_and_off(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    check(intents=SHOP, syntax_only=True, pairs=0)
    assert "small talk: built-in greeting, thanks, goodbye, human_agent in use" in capsys.readouterr().out
    check(intents=INTENTS, syntax_only=True, pairs=0)
    assert (
        "the folder's own greeting, thanks, goodbye, human_agent in place of the built-ins"
        in capsys.readouterr().out
    )
    mapped = "small_talk:\n  greeting: hello\n  human_agent: false\nintents:\n" + HELLO
    check(intents=shop_copy(tmp_path, **{"mine.yaml": mapped}), syntax_only=True, pairs=0)
    shown = capsys.readouterr().out
    assert "built-in thanks, goodbye in use" in shown and "hello (for greeting)" in shown
    assert "built-in human_agent switched off" in shown and "mine.yaml:1" in shown
