"""The folder key `off_topic_share` (#31 item 3): validated, versioned, written by `--set-share`, and the
share the folder's self-calibration plans for."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bot.config import Settings
from bot.content.intents import load_intents
from bot.content.off_topic import set_folder_share, with_share
from bot.errors import IntentFileError
from bot.routing.engine import Engine
from tests.api_support import DEMO_INTENTS
from tests.conftest import write

FOLDER = "intents:\n" + "".join(
    f"  - name: topic_{i}\n    description: Questions about topic {i}.\n    examples: [first {i}, second {i}]\n"
    for i in range(3)
)


@pytest.mark.parametrize("value", ["1", "1.5", "-0.1", "lots", "true", "[0.1]"])
def test_a_share_outside_0_to_1_is_an_error_at_its_line(tmp_path: Path, value: str) -> None:
    write(tmp_path / "a.yaml", f"# the bank\noff_topic_share: {value}\n{FOLDER}")
    with pytest.raises(IntentFileError) as raised:
        load_intents(tmp_path)
    assert str(raised.value).startswith(
        f"{tmp_path / 'a.yaml'}:2: 'off_topic_share' must be a number from 0 up to"
    )


def test_the_key_is_read_and_part_of_the_version(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", FOLDER)
    before = load_intents(tmp_path)
    assert before.off_topic_share is None
    write(tmp_path / "b.yaml", "off_topic_share: 0.15\n")  # a file may hold only the folder's keys
    after = load_intents(tmp_path)
    assert after.off_topic_share == 0.15
    assert after.version != before.version
    assert after.with_extra_examples({"topic_0": ["third 0"]}).off_topic_share == 0.15


def test_set_twice_names_both_places(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", "off_topic_share: 0.1\n" + FOLDER)
    write(tmp_path / "b.yaml", "off_topic_share: 0.2\n")
    with pytest.raises(
        IntentFileError, match=r"b\.yaml:1: 'off_topic_share' is set twice; first at .*a\.yaml:1"
    ):
        load_intents(tmp_path)


def test_writing_keeps_the_rest_of_the_file(tmp_path: Path) -> None:
    text = "# our bank\n---\nintents:  # all of them\n  - name: a\n"
    assert with_share(text, 0.15) == (
        "# our bank\n---\noff_topic_share: 0.15  # share of messages no intent covers (bot check --data LOGS "
        "estimates it)\nintents:  # all of them\n  - name: a\n"
    )
    again = with_share("small_talk: false\noff_topic_share: 0.1  # measured in May\n", 0.2)
    assert again == "small_talk: false\noff_topic_share: 0.2  # measured in May\n"


def test_set_folder_share_writes_beside_small_talk(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", FOLDER)
    write(tmp_path / "b.yaml", FOLDER.replace("topic_", "other_") + "small_talk: false\n")
    assert set_folder_share(tmp_path, 0.12) == tmp_path / "b.yaml"
    assert load_intents(tmp_path).off_topic_share == 0.12
    assert set_folder_share(tmp_path, 0.2) == tmp_path / "b.yaml"  # replaced where it is
    assert load_intents(tmp_path).off_topic_share == 0.2


def test_the_folder_share_is_what_self_calibration_plans_for(
    tmp_path: Path, bundled_encoder, cache_dir: Path
) -> None:
    folder = tmp_path / "intents"
    shutil.copytree(DEMO_INTENTS, folder)
    (folder / "calibration.yaml").unlink(missing_ok=True)
    settings = Settings(intents_dir=folder, cache_dir=cache_dir, self_train=False, oos_rate=0.03)
    engine = Engine(settings, encoder=bundled_encoder)
    engine.load()
    assert engine.state.calibration is not None and engine.state.calibration.oos_rate == 0.03
    set_folder_share(folder, 0.25)
    engine.load()
    assert engine.state.calibration is not None and engine.state.calibration.oos_rate == 0.25
