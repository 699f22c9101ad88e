"""YAML files are bounded (size, alias expansion) and their errors are short, located and in plain words."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from bot.api import create_app
from bot.config import Settings, get_settings
from bot.content.intents import load_intents
from bot.content.knowledge import load_knowledge
from bot.content.yaml_io import ALIAS_BUDGET, read_yaml
from bot.errors import IntentFileError, KnowledgeFileError
from bot.routing.engine import Engine
from tests.api_support import make_intents
from tests.conftest import write

GOOD = """\
intents:
  - name: card_arrival
    description: The customer wants to know when their new card arrives.
    examples: &card_words ["Where is my card?", "my card has not come"]
  - name: card_delivery
    description: How long delivery of a card takes.
    examples: *card_words
"""


def alias_bomb(levels: int) -> str:
    """A few hundred bytes whose aliases expand to 9**levels strings (the 'billion laughs' shape)."""
    anchors = '&a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'
    previous = "a"
    for name in "bcdefghij"[: levels - 1]:
        anchors += f", &{name} [" + ",".join([f"*{previous}"] * 9) + "]"
        previous = name
    # the expanded value lands in `title`, which must be a string: today's error printed all of it
    return f"intents:\n  - examples: [{anchors}]\n    title: *{previous}\n    name: x\n    description: d\n"


def test_an_alias_bomb_is_refused_while_composing_with_a_short_error(tmp_path: Path) -> None:
    text = alias_bomb(6)  # 9**6 = 531,441 strings from under 300 bytes
    assert len(text) < 300
    path = write(tmp_path / "bomb.yaml", text)
    with pytest.raises(IntentFileError) as caught:
        load_intents(tmp_path)
    message = str(caught.value)
    assert message.startswith(f"{path}:2: aliases expand to more than {ALIAS_BUDGET:,} values"), message[:300]
    assert len(message) < 400


def test_a_self_referencing_alias_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "loop.yaml", "intents: &all\n  - name: x\n    description: d\n    tags: [*all]\n")
    with pytest.raises(IntentFileError, match="refers to the block that contains it") as caught:
        load_intents(tmp_path)
    assert str(caught.value).startswith(f"{path}:4: ")


def test_ordinary_aliases_still_load(tmp_path: Path) -> None:
    write(tmp_path / "cards.yaml", GOOD)
    intents = load_intents(tmp_path)
    assert intents.get("card_delivery").spec.examples == ("Where is my card?", "my card has not come")  # type: ignore[union-attr]


def test_a_file_over_the_size_limit_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    path = write(tmp_path / "big.yaml", GOOD + "# padding\n" * 200)
    with pytest.raises(IntentFileError) as caught:
        read_yaml(path, max_bytes=1024)
    assert str(caught.value) == (
        f"{path}: file is larger than 1,024 bytes (BOT_MAX_YAML_BYTES); split it into several files"
    )
    assert read_yaml(path, max_bytes=10_000)["intents"][0]["name"] == "card_arrival"


def test_the_size_limit_is_a_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "cards.yaml", GOOD + "# padding\n" * 200)
    faq = write(tmp_path / "knowledge" / "faq.yaml", "entries:\n" + "# padding\n" * 200)
    monkeypatch.setenv("BOT_MAX_YAML_BYTES", "1024")
    get_settings.cache_clear()
    try:
        with pytest.raises(IntentFileError, match="larger than 1,024 bytes"):
            load_intents(tmp_path)
        with pytest.raises(KnowledgeFileError, match="larger than 1,024 bytes") as caught:
            load_knowledge(tmp_path / "knowledge")
        assert str(caught.value).startswith(f"{faq}: ")
    finally:
        get_settings.cache_clear()
    assert Settings.model_fields["max_yaml_bytes"].default == 1_000_000  # far above any real intents file


def test_errors_quote_only_an_excerpt_of_bad_input(tmp_path: Path) -> None:
    long_text = "card " * 20_000  # 100 kB where 2,000 characters are allowed
    write(tmp_path / "cards.yaml", f'intents:\n  - name: card_arrival\n    description: "{long_text}"\n')
    with pytest.raises(IntentFileError) as caught:
        load_intents(tmp_path)
    message = str(caught.value)
    assert "'description': string should have at most 2000 characters, got 'card card" in message
    assert len(message) < 300


@pytest.mark.parametrize(
    ("text", "line", "expected"),
    [
        (  # a key indented deeper than its siblings
            "intents:\n  - name: a\n    description: d\n     examples: [x]\n",
            4,
            "YAML syntax error: bad indentation: this line starts at column 6, deeper than the key above it "
            "(line 3, column 5)",
        ),
        (  # a key dedented out of its intent
            "intents:\n  - name: a\n    description: d\n  examples: [x]\n",
            4,
            "YAML syntax error: bad indentation: this line starts at column 3, but the line above (line 3) "
            "starts its key at column 5",
        ),
        (  # one space short
            "intents:\n  - name: a\n   description: d\n",
            3,
            "YAML syntax error: bad indentation: this line starts at column 4, but the line above (line 2) "
            "starts its key at column 5",
        ),
        (  # list items that do not line up
            "intents:\n  - name: a\n    description: d\n    examples:\n    - x\n   - y\n",
            6,
            "YAML syntax error: bad indentation: this list item starts at column 4, but the item above "
            "(line 5) at column 5",
        ),
        ("intents:\n\t- name: a\n", 2, "YAML syntax error: a tab character is used for indentation"),
        (
            "intents:\n  - name: a\n    description: Note: d\n",
            3,
            "YAML syntax error: a value contains ': ' (colon and space); put that value in quotes",
        ),
        (
            "intents:\n  - name: a\n    description: d\n    description: e\n",
            4,
            "YAML syntax error: duplicate key 'description' in the same block",
        ),
    ],
)
def test_syntax_errors_are_in_plain_words(tmp_path: Path, text: str, line: int, expected: str) -> None:
    path = write(tmp_path / "cards.yaml", text)
    with pytest.raises(IntentFileError) as caught:
        load_intents(tmp_path)
    message = str(caught.value)
    assert message.startswith(f"{path}:{line}: {expected}"), message
    for parser_words in ("<block end>", "<block mapping start>", "cannot start any token", "with value"):
        assert parser_words not in message


def test_bot_check_reports_an_alias_bomb_in_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "intents"
    write(folder / "bomb.yaml", alias_bomb(7))  # 4.8 million strings: a MemoryError on the old loader
    result = subprocess.run(
        [sys.executable, "-c", "from bot.cli import main; main()", "check", "--syntax-only"],
        capture_output=True,
        text=True,
        env={"BOT_INTENTS_DIR": str(folder), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"},
        timeout=120,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.startswith(f"error: {folder / 'bomb.yaml'}:2: aliases expand to more than")
    assert len(result.stderr) < 500 and "Traceback" not in result.stderr


@pytest.fixture()
def admin_client(tmp_path: Path, bundled_encoder, cache_dir: Path) -> Iterator[TestClient]:
    config = Settings(
        intents_dir=make_intents(tmp_path / "intents"),
        cache_dir=cache_dir,
        database_url=f"sqlite:///{tmp_path / 'bot.db'}",
        api_keys="admin:root-key",
    )
    engine = Engine(config, encoder=bundled_encoder)
    engine.load()
    with TestClient(create_app(config, engine=engine)) as client:
        yield client


def test_reload_refuses_an_alias_bomb_with_a_short_422(admin_client: TestClient) -> None:
    admin = {"Authorization": "Bearer root-key"}
    folder = Path(admin_client.app.state.runtime.engine.intents_dir)  # type: ignore[attr-defined]
    before = admin_client.get("/v1/intents", headers=admin).json()["version"]
    write(folder / "bomb.yaml", alias_bomb(7))
    refused = admin_client.post("/v1/admin/reload", headers=admin)
    assert refused.status_code == 422
    assert len(refused.content) < 1000
    assert refused.json()["error"]["message"].startswith(f"{folder / 'bomb.yaml'}:2: aliases expand")
    assert admin_client.get("/v1/intents", headers=admin).json()["version"] == before


def test_an_atomic_rewrite_keeps_the_file_readable_by_others(tmp_path: Path) -> None:
    """A command that rewrites an intent file (`--set-share`, a review export) must not leave it 0600: a
    server running as another user would stop reading the folder."""
    import stat

    from bot.content.yaml_io import atomic_write

    path = tmp_path / "shop.yaml"
    path.write_text("intents: []\n")
    path.chmod(0o644)
    atomic_write(path, "intents: []\nsmall_talk: false\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert path.read_text() == "intents: []\nsmall_talk: false\n"
    assert [p.name for p in tmp_path.iterdir()] == ["shop.yaml"]  # no temporary left behind
