"""Activating a stored version whose file names leave the folder is refused, and writes nothing outside
the cache (#28 item 2; the store and checkout side is tests/store/test_version_files.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.api.test_versions import client_for
from tests.api_support import make_intents, temporary_database
from tests.store.test_version_files import BANK, raw_version


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with temporary_database(request.param, tmp_path) as url:
        yield url


def test_activate_refuses_a_stored_name_outside_the_folder(
    tmp_path: Path, database_url: str, bundled_encoder, cache_dir: Path
) -> None:
    folder = make_intents(tmp_path / "intents")
    cache = tmp_path / "a" / "b" / "cache"  # materialised versions go to cache/versions/<hash>/
    client: TestClient
    with client_for(folder, database_url, bundled_encoder, cache) as client:
        live = client.get("/healthz").json()["intents_version"]
        bad = raw_version(
            database_url,
            {
                "bank.yaml": BANK,
                "../../escaped.yaml": "x",
                "knowledge/../../../escaped.md": "x",
                str(tmp_path / "absolute.yaml"): "x",
            },
        )
        refused = client.post(f"/v1/admin/versions/{bad}/activate")
        assert refused.status_code == 422, refused.text
        assert (
            "escaped" in refused.json()["error"]["message"]
            or "absolute" in refused.json()["error"]["message"]
        )
        assert client.get("/healthz").json()["intents_version"] == live  # nothing changed
    assert not list(tmp_path.rglob("escaped*")) and not (tmp_path / "absolute.yaml").exists()
