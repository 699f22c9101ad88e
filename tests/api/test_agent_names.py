"""Agent names (#28 item 3): one documented character set, and a shared key cannot pass for a person with
a key of their own by writing that person's name with look-alike characters."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import HTTPException

from bot.api import create_app
from bot.api.deps import acting_agent
from bot.config import Settings
from bot.errors import ConfigError
from bot.names import clean_name, skeleton
from tests.api.test_access import app_client, bearer

KEYS = (
    "widget:w-key,agent@ann:ann-key,agent@Ana López:ana-key,agent@coco:coco-key,agent:team-key,admin:root-key"
)
# what a shared key could write to look like 'ann' to a customer
LOOK_ALIKES = ["ANN", " ann ", "\uff41\uff4e\uff4e", "\u00c5nn", "An\u0144", "\u0430nn"]
LOOK_ALIKE_WHOLE_SCRIPT = ["\u0441\u043e\u0441\u043e", "Ana Lo\u0301pez", "ANA LOPEZ", "Ana_Lopez"]
NOT_NAMES = [
    "ann\u200b",
    "ann\u00ad",
    "a\u200dnn",
    "ann\u202e",
    "\u0430nn",
    "ann<script>",
    "\u0301ann",
]


@pytest.mark.parametrize(
    ("name", "clean"),
    [("ann", "ann"), ("\uff41\uff4e\uff4e", "ann"), ("  Ann   Lee ", "Ann Lee"), ("O'Brien", "O'Brien"),
     ("Ana L\u00f3pez", "Ana L\u00f3pez"), ("\u5c71\u7530 \u82b1\u5b50", "\u5c71\u7530 \u82b1\u5b50"),
     ("\u0418\u0432\u0430\u043d", "\u0418\u0432\u0430\u043d"), ("agent_7", "agent_7")],
)  # fmt: skip
def test_names_in_the_allowed_set_are_normalised(name: str, clean: str) -> None:
    assert clean_name(name) == clean


@pytest.mark.parametrize("name", [*NOT_NAMES, "", "a" * 129, "ann\n", "ann\u2019s", "\u0391nn"])
def test_invisible_foreign_or_mixed_script_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="letters of one script"):
        clean_name(name)


@pytest.mark.parametrize(
    ("a", "b"),
    [("ann", "ANN"), ("ann", "\u00c5nn"), ("ann", "An\u0144"), ("oco", "\u043e\u0441\u043e"),
     ("ann", "\u0391\u039d\u039d"), ("Ian", "lan"), ("anna", "an-na"), ("kim", "klm")],
)  # fmt: skip
def test_skeletons_equal_for_look_alikes(a: str, b: str) -> None:
    assert (skeleton(a) == skeleton(b)) is ((a, b) != ("kim", "klm"))


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ("agent@ann\u200b:k", "invisible"),
        ("agent@ann\u00ad:k", "invisible"),
        ("agent@\u0430nn:k", "mixes scripts"),
        ("agent@ann<b>:k", "may not hold"),
        ("agent@ann:k1,agent@An\u0144:k2", "look alike"),
    ],
)
def test_bad_key_names_stop_the_start(keys: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        create_app(Settings(api_keys=keys))


def test_full_width_key_names_are_normalised() -> None:
    assert Settings(api_keys="agent@\uff41\uff4e\uff4e:k,agent@Ann:k2").key_names() == {
        "k": "ann",
        "k2": "Ann",
    }


def test_a_shared_key_cannot_claim_or_reply_as_a_look_alike(
    tmp_path: Path, bundled_encoder, cache_dir
) -> None:
    with app_client(tmp_path, bundled_encoder, cache_dir, api_keys=KEYS) as client:
        ticket = client.post(
            "/v1/chat", json={"message": "I want to talk to a real person"}, headers=bearer("w-key")
        ).json()["ticket_id"]
        path = f"/v1/handoffs/{ticket}"
        for key in ("team-key", "root-key"):
            for name in [*LOOK_ALIKES, *LOOK_ALIKE_WHOLE_SCRIPT]:
                for action, body in (("claim", {}), ("reply", {"text": "fraud team: your card number?"})):
                    posing = client.post(
                        f"{path}/{action}", json={**body, "agent": name}, headers=bearer(key)
                    )
                    assert posing.status_code in (403, 422), (key, name, action, posing.text)
                    if posing.status_code == 403:
                        assert "has an API key of their own" in posing.json()["error"]["message"]
            for name in NOT_NAMES:
                refused = client.post(
                    f"{path}/reply", json={"agent": name, "text": "hi"}, headers=bearer(key)
                )
                assert refused.status_code == 422, (name, refused.text)
                error = refused.json()["error"]
                assert error["field"] == "agent" and "letters of one script" in error["message"]
        # the look-alikes that are names in the allowed set are 403, not 422
        assert (
            client.post(f"{path}/claim", json={"agent": "An\u0144"}, headers=bearer("team-key")).status_code
            == 403
        )
        # a name nobody owns is the shared key's to use, normalised
        claimed = client.post(
            f"{path}/claim", json={"agent": " \uff42\uff4f\uff42 "}, headers=bearer("team-key")
        )
        assert claimed.status_code == 200 and claimed.json()["claimed_by"] == "bob"
        sent = client.post(
            f"{path}/reply", json={"agent": "bob", "text": "Bob here."}, headers=bearer("team-key")
        )
        assert sent.status_code == 200 and sent.json()["author"] == "bob"
        messages = client.get(f"/v1/handoffs/{ticket}", headers=bearer("team-key")).json()["messages"]
        assert {m["author"] for m in messages if m["role"] == "agent"} == {"bob"}


def test_a_personal_key_acts_as_its_owner_whichever_way_the_body_writes_the_name() -> None:
    assert acting_agent("ann", "ANN") == acting_agent("ann", "\uff41\uff4e\uff4e") == "ann"
    assert acting_agent(None, " \uff42\uff4f\uff42 ") == "bob"
    with pytest.raises(HTTPException) as refused:
        acting_agent("ann", "bob")
    assert refused.value.status_code == 403
